// Command webhooks-example-go is a Pulumi program that manages three webhooks with the
// self-hosted pulumiservice provider. The resources are declared in program.go.
package main

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

func main() {
	pulumi.Run(program)
}
