// Package cli is the pulumi-webhooks command line: `serve` runs the REST API and the delivery
// workers; `token`, `emit`, `hooks`, `deliveries`, `redeliver` and `ping` work on the store
// directly (the file can be shared with a running server); `verify` checks a delivery's
// signature; `key rotate` re-seals webhook secrets under a new key and `key reset` recovers
// from a lost one; `version` prints the build's version.
//
// Each command binds its flags into an options struct and calls one function. Every flag that
// has an environment variable says so in its help; a flag given on the command line wins over
// its variable.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Version is this build's version, set by the linker:
//
//	go build -ldflags "-X github.com/pulumi-webhooks/pulumi-webhooks/provider/cli.Version=1.2.3" ./provider/cmd/pulumi-webhooks
var Version = "dev"

// EnvPrefix starts every environment variable the commands read.
const EnvPrefix = "PULUMI_WEBHOOKS_"

// Opts wires the command line to its environment; tests replace every field.
type Opts struct {
	// Version is printed by `version` and sent in the User-Agent of deliveries; Version (the
	// package variable) when empty.
	Version string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	// Getenv reads environment variables; os.Getenv when nil.
	Getenv func(string) string
}

func (o Opts) withDefaults() Opts {
	if o.Version == "" {
		o.Version = Version
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	return o
}

// NewRoot returns the root command with every subcommand.
func NewRoot(o Opts) *cobra.Command {
	o = o.withDefaults()
	root := &cobra.Command{
		Use:   "pulumi-webhooks",
		Short: "Self-hosted Pulumi Cloud webhooks: REST API, delivery workers and tools",
		Long: `pulumi-webhooks runs the Pulumi Cloud webhook REST API and delivers signed webhook
requests from a local SQLite store, the same store the pulumiservice provider uses in
embedded mode. Its other commands manage API tokens, fire events, inspect hooks and
deliveries, and check signatures.`,
		Version:       o.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd, o.Getenv)
		},
	}
	root.SetIn(o.Stdin)
	root.SetOut(o.Stdout)
	root.SetErr(o.Stderr)
	root.AddCommand(
		newServeCmd(o),
		newTokenCmd(o),
		newEmitCmd(o),
		newPulumiCmd(o),
		newHooksCmd(o),
		newDeploymentsCmd(o),
		newStoreCmd(o),
		newDeliveriesCmd(o),
		newRedeliverCmd(o),
		newPingCmd(o),
		newVerifyCmd(o),
		newKeyCmd(o),
		newVersionCmd(o),
	)
	return root
}

// Main runs the command line with args and returns the process exit code.
func Main(ctx context.Context, o Opts, args []string) int {
	o = o.withDefaults()
	root := NewRoot(o)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(o.Stderr, "Error: "+ee.msg)
			}
			return ee.code
		}
		fmt.Fprintln(o.Stderr, "Error: "+err.Error())
		return 1
	}
	return 0
}

// exitError ends the program with a given code, e.g. a failed ping or verification.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
