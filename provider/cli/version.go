package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func newVersionCmd(o Opts) *cobra.Command {
	var out outputOpts
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of pulumi-webhooks",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if out.json {
				return printJSON(o.Stdout, map[string]string{"version": o.Version, "go": runtime.Version()})
			}
			fmt.Fprintf(o.Stdout, "pulumi-webhooks %s (%s)\n", o.Version, runtime.Version())
			return nil
		},
	}
	out.addFlags(cmd)
	return cmd
}
