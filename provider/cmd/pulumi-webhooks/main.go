// Command pulumi-webhooks runs the self-hosted Pulumi Cloud webhook server and its tools; see
// the cli package. Its version is cli.Version, set with -ldflags -X (see the Makefile).
package main

import (
	"context"
	"os"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.Opts{}, os.Args[1:]))
}
