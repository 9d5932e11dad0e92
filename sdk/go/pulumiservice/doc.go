// Manage webhooks with the resource of the Pulumi Service provider, served by pulumi-webhooks, a self-hosted replacement for Pulumi Cloud webhooks.
package pulumiservice
