"""Three webhooks on the self-hosted pulumiservice provider."""

import pulumi

# The only line that differs from a program on the official provider (pulumi_pulumiservice).
import pulumi_webhooks_pulumiservice as pulumiservice

config = pulumi.Config()
receiver_url = config.require("receiverUrl")
slack_webhook_url = config.require("slackWebhookUrl")
# Set with `pulumi config set --secret webhookSecret <value>`.
webhook_secret = config.require_secret("webhookSecret")
organization_name = pulumi.get_organization()

# Organization-wide: stack lifecycle and failures anywhere in the organization, signed.
org_hook = pulumiservice.Webhook(
    "orgHook",
    organization_name=organization_name,
    display_name="Organization events",
    payload_url=receiver_url,
    active=True,
    secret=webhook_secret,
    filters=[
        pulumiservice.WebhookFilters.STACK_CREATED,
        pulumiservice.WebhookFilters.STACK_DELETED,
        pulumiservice.WebhookFilters.UPDATE_FAILED,
        pulumiservice.WebhookFilters.DEPLOYMENT_FAILED,
    ],
)

# Attached to this stack: every stack and deployment event of it, by group.
stack_hook = pulumiservice.Webhook(
    "stackHook",
    organization_name=organization_name,
    project_name=pulumi.get_project(),
    stack_name=pulumi.get_stack(),
    display_name="Updates and deployments of this stack",
    payload_url=receiver_url,
    active=True,
    secret=webhook_secret,
    groups=[pulumiservice.WebhookGroup.STACKS, pulumiservice.WebhookGroup.DEPLOYMENTS],
)

# Failed updates and destroys, posted as Slack messages.
slack_hook = pulumiservice.Webhook(
    "slackHook",
    organization_name=organization_name,
    display_name="Failures to Slack",
    payload_url=slack_webhook_url,
    active=True,
    format=pulumiservice.WebhookFormat.SLACK,
    filters=[pulumiservice.WebhookFilters.UPDATE_FAILED, pulumiservice.WebhookFilters.DESTROY_FAILED],
)

pulumi.export("orgHookId", org_hook.id)
pulumi.export("stackHookId", stack_hook.id)
pulumi.export("slackHookId", slack_hook.id)
