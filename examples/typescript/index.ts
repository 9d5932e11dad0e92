import * as pulumi from "@pulumi/pulumi";
// The only line that differs from a program on the official provider ("@pulumi/pulumiservice").
import * as pulumiservice from "@pulumi-webhooks/pulumiservice";

const config = new pulumi.Config();
const receiverUrl = config.require("receiverUrl");
const slackWebhookUrl = config.require("slackWebhookUrl");
// Set with `pulumi config set --secret webhookSecret <value>`.
const webhookSecret = config.requireSecret("webhookSecret");
const organizationName = pulumi.getOrganization();

// Organization-wide: stack lifecycle and failures anywhere in the organization, signed.
const orgHook = new pulumiservice.Webhook("orgHook", {
    organizationName,
    displayName: "Organization events",
    payloadUrl: receiverUrl,
    active: true,
    secret: webhookSecret,
    filters: [
        pulumiservice.WebhookFilters.StackCreated,
        pulumiservice.WebhookFilters.StackDeleted,
        pulumiservice.WebhookFilters.UpdateFailed,
        pulumiservice.WebhookFilters.DeploymentFailed,
    ],
});

// Attached to this stack: every stack and deployment event of it, by group.
const stackHook = new pulumiservice.Webhook("stackHook", {
    organizationName,
    projectName: pulumi.getProject(),
    stackName: pulumi.getStack(),
    displayName: "Updates and deployments of this stack",
    payloadUrl: receiverUrl,
    active: true,
    secret: webhookSecret,
    groups: [pulumiservice.WebhookGroup.Stacks, pulumiservice.WebhookGroup.Deployments],
});

// Failed updates and destroys, posted as Slack messages.
const slackHook = new pulumiservice.Webhook("slackHook", {
    organizationName,
    displayName: "Failures to Slack",
    payloadUrl: slackWebhookUrl,
    active: true,
    format: pulumiservice.WebhookFormat.Slack,
    filters: [pulumiservice.WebhookFilters.UpdateFailed, pulumiservice.WebhookFilters.DestroyFailed],
});

export const orgHookId = orgHook.id;
export const stackHookId = stackHook.id;
export const slackHookId = slackHook.id;
