using System.Collections.Generic;
using Pulumi;
// The only line that differs from a program on the official provider (Pulumi.PulumiService).
using PulumiWebhooks.PulumiService;

return await Deployment.RunAsync(() =>
{
    var config = new Config();
    var receiverUrl = config.Require("receiverUrl");
    var slackWebhookUrl = config.Require("slackWebhookUrl");
    // Set with `pulumi config set --secret webhookSecret <value>`.
    var webhookSecret = config.RequireSecret("webhookSecret");
    var organizationName = Deployment.Instance.OrganizationName;

    // Organization-wide: stack lifecycle and failures anywhere in the organization, signed.
    var orgHook = new Webhook("orgHook", new WebhookArgs
    {
        OrganizationName = organizationName,
        DisplayName = "Organization events",
        PayloadUrl = receiverUrl,
        Active = true,
        Secret = webhookSecret,
        Filters =
        {
            WebhookFilters.StackCreated,
            WebhookFilters.StackDeleted,
            WebhookFilters.UpdateFailed,
            WebhookFilters.DeploymentFailed,
        },
    });

    // Attached to this stack: every stack and deployment event of it, by group.
    var stackHook = new Webhook("stackHook", new WebhookArgs
    {
        OrganizationName = organizationName,
        ProjectName = Deployment.Instance.ProjectName,
        StackName = Deployment.Instance.StackName,
        DisplayName = "Updates and deployments of this stack",
        PayloadUrl = receiverUrl,
        Active = true,
        Secret = webhookSecret,
        Groups = { WebhookGroup.Stacks, WebhookGroup.Deployments },
    });

    // Failed updates and destroys, posted as Slack messages.
    var slackHook = new Webhook("slackHook", new WebhookArgs
    {
        OrganizationName = organizationName,
        DisplayName = "Failures to Slack",
        PayloadUrl = slackWebhookUrl,
        Active = true,
        Format = WebhookFormat.Slack,
        Filters = { WebhookFilters.UpdateFailed, WebhookFilters.DestroyFailed },
    });

    return new Dictionary<string, object?>
    {
        ["orgHookId"] = orgHook.Id,
        ["stackHookId"] = stackHook.Id,
        ["slackHookId"] = slackHook.Id,
    };
});
