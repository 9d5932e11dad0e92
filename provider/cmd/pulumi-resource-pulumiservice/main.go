// Command pulumi-resource-pulumiservice is the pulumiservice provider plugin. The Pulumi engine
// starts it; `pulumi-resource-pulumiservice -schema` prints the provider's schema instead.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/resource"
)

func main() {
	ctx := context.Background()
	var err error
	if len(os.Args) == 2 && os.Args[1] == "-schema" {
		err = resource.WriteSchema(ctx, os.Stdout, resource.Version)
	} else {
		err = resource.Provider().Run(ctx, resource.Name, resource.Version)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-%s: %v\n", resource.Name, err)
		os.Exit(1)
	}
}
