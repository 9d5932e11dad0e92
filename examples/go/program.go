package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	// The only line that differs from a program on the official provider
	// (github.com/pulumi/pulumi-pulumiservice/sdk/go/pulumiservice).
	"github.com/pulumi-webhooks/pulumi-webhooks/sdk/go/pulumiservice"
)

// program declares an organization webhook with filters, a stack webhook with groups and a
// Slack webhook, signed with a secret from the stack's configuration.
func program(ctx *pulumi.Context) error {
	cfg := config.New(ctx, "")
	receiverURL := cfg.Require("receiverUrl")
	slackWebhookURL := cfg.Require("slackWebhookUrl")
	// Set with `pulumi config set --secret webhookSecret <value>`.
	webhookSecret := cfg.RequireSecret("webhookSecret")
	org := pulumi.String(ctx.Organization())

	// Organization-wide: stack lifecycle and failures anywhere in the organization, signed.
	orgHook, err := pulumiservice.NewWebhook(ctx, "orgHook", &pulumiservice.WebhookArgs{
		OrganizationName: org,
		DisplayName:      pulumi.String("Organization events"),
		PayloadUrl:       pulumi.String(receiverURL),
		Active:           pulumi.Bool(true),
		Secret:           webhookSecret,
		Filters: pulumiservice.WebhookFiltersArray{
			pulumiservice.WebhookFiltersStackCreated,
			pulumiservice.WebhookFiltersStackDeleted,
			pulumiservice.WebhookFiltersUpdateFailed,
			pulumiservice.WebhookFiltersDeploymentFailed,
		},
	})
	if err != nil {
		return err
	}

	// Attached to this stack: every stack and deployment event of it, by group.
	stackHook, err := pulumiservice.NewWebhook(ctx, "stackHook", &pulumiservice.WebhookArgs{
		OrganizationName: org,
		ProjectName:      pulumi.String(ctx.Project()),
		StackName:        pulumi.String(ctx.Stack()),
		DisplayName:      pulumi.String("Updates and deployments of this stack"),
		PayloadUrl:       pulumi.String(receiverURL),
		Active:           pulumi.Bool(true),
		Secret:           webhookSecret,
		Groups: pulumiservice.WebhookGroupArray{
			pulumiservice.WebhookGroupStacks,
			pulumiservice.WebhookGroupDeployments,
		},
	})
	if err != nil {
		return err
	}

	// Failed updates and destroys, posted as Slack messages.
	slackHook, err := pulumiservice.NewWebhook(ctx, "slackHook", &pulumiservice.WebhookArgs{
		OrganizationName: org,
		DisplayName:      pulumi.String("Failures to Slack"),
		PayloadUrl:       pulumi.String(slackWebhookURL),
		Active:           pulumi.Bool(true),
		Format:           pulumiservice.WebhookFormatSlack,
		Filters: pulumiservice.WebhookFiltersArray{
			pulumiservice.WebhookFiltersUpdateFailed,
			pulumiservice.WebhookFiltersDestroyFailed,
		},
	})
	if err != nil {
		return err
	}

	ctx.Export("orgHookId", orgHook.ID())
	ctx.Export("stackHookId", stackHook.ID())
	ctx.Export("slackHookId", slackHook.ID())
	return nil
}
