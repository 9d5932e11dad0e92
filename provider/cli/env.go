package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const envAnnotation = "pulumi-webhooks/env"

// withEnv makes flag name of fs also read environment variable env (when the flag is not
// given) and says so in its help.
func withEnv(fs *pflag.FlagSet, name, env string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("cli: withEnv: no flag " + name) // a programming error, caught by every test
	}
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[envAnnotation] = []string{env}
	f.Usage += " (env " + env + ")"
}

// applyEnv sets every flag of cmd that was not given on the command line from its
// environment variable, when that is set.
func applyEnv(cmd *cobra.Command, getenv func(string) string) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		envs := f.Annotations[envAnnotation]
		if err != nil || f.Changed || len(envs) == 0 {
			return
		}
		v := getenv(envs[0])
		if v == "" {
			return
		}
		if e := cmd.Flags().Set(f.Name, v); e != nil {
			// The flag's own error quotes the value; none of the variables carries a secret
			// that could fail to parse (strings always parse).
			err = fmt.Errorf("environment variable %s (for --%s): %w", envs[0], f.Name, e)
		}
	})
	return err
}
