package resource

import (
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// WebhookProperties are the properties WebhookArgs and WebhookState share. format is kept apart
// because it is optional as an input (it defaults to raw) and always present as an output.
type WebhookProperties struct {
	Active           bool             `pulumi:"active"`
	DisplayName      string           `pulumi:"displayName"`
	PayloadURL       string           `pulumi:"payloadUrl"`
	OrganizationName string           `pulumi:"organizationName" provider:"replaceOnChanges"`
	ProjectName      *string          `pulumi:"projectName,optional" provider:"replaceOnChanges"`
	StackName        *string          `pulumi:"stackName,optional" provider:"replaceOnChanges"`
	EnvironmentName  *string          `pulumi:"environmentName,optional" provider:"replaceOnChanges"`
	Secret           *string          `pulumi:"secret,optional" provider:"secret"`
	Filters          []WebhookFilters `pulumi:"filters,optional"`
	Groups           []WebhookGroup   `pulumi:"groups,optional"`
}

// WebhookArgs are the inputs of a Webhook.
type WebhookArgs struct {
	WebhookProperties
	Format *WebhookFormat `pulumi:"format,optional"`
}

// WebhookState is what Pulumi records about a Webhook: its inputs as the store holds them, the
// format always filled, and the name the store gave the hook.
type WebhookState struct {
	WebhookProperties
	Format WebhookFormat `pulumi:"format"`
	Name   string        `pulumi:"name"`
}

// Property descriptions, shared by the input and output of the same name.
const (
	descActive = "Whether the webhook receives deliveries. An inactive webhook keeps its settings but " +
		"is skipped when events are matched. The service may deactivate a webhook on its own, for " +
		"example when its endpoint answers 410 Gone; a refresh shows that."
	descDisplayName = "A human-readable name for the webhook, shown in listings. It must not be blank."
	descPayloadURL  = "Where deliveries go. For the `raw`, `slack` and `ms_teams` formats this is an " +
		"absolute `http://` or `https://` URL. For `pulumi_deployments` it names the stack to deploy as " +
		"`project/stack`, in the webhook's organization."
	descOrganizationName = "The organization that owns the webhook. Changing it replaces the webhook."
	descProjectName      = "The project of the stack or environment the webhook is attached to. Leave it " +
		"unset for an organization webhook; set it together with `stackName` or `environmentName` " +
		"otherwise. Changing it replaces the webhook."
	descStackName = "The stack the webhook is attached to. Set it (with `projectName`) for a stack " +
		"webhook, which only hears about that stack. Changing it replaces the webhook."
	descEnvironmentName = "The ESC environment the webhook is attached to. Set it (with `projectName`) " +
		"for an environment webhook, which only hears about that environment. Changing it replaces " +
		"the webhook."
	descSecret = "A shared secret. When set, every delivery carries a `Pulumi-Webhook-Signature` header: " +
		"the hex HMAC-SHA256 of the request body keyed with this secret, so the receiver can check " +
		"where the request came from. The service never returns the secret: after an import, add it " +
		"to your program again (see the resource documentation)."
	descFormat = "How deliveries are rendered: `raw` (the default) sends the event as JSON, `slack` and " +
		"`ms_teams` send messages for those services' incoming webhooks, and `pulumi_deployments` " +
		"starts a deployment of the stack named by `payloadUrl` instead of sending a request."
	descFilters = "The events the webhook subscribes to, one by one. Events must be able to reach the " +
		"webhook's scope: stack and environment creation and deletion only reach organization " +
		"webhooks, environment events never reach stack webhooks, and stack and deployment events " +
		"never reach environment webhooks. When neither `filters` nor `groups` is given, the webhook " +
		"subscribes to the default groups of its scope."
	descGroups = "Families of events the webhook subscribes to at once, in addition to `filters`. When " +
		"neither is given, an organization webhook gets `deployments`, `environments` and `stacks`, " +
		"a stack webhook `deployments` and `stacks`, and an environment webhook `environments`."
	descName = "The webhook's name within its scope, chosen by the service when the webhook is " +
		"created. It is the last segment of the resource ID."
)

// Annotate describes the shared properties.
func (p *WebhookProperties) Annotate(a infer.Annotator) {
	a.Describe(&p.Active, descActive)
	a.Describe(&p.DisplayName, descDisplayName)
	a.Describe(&p.PayloadURL, descPayloadURL)
	a.Describe(&p.OrganizationName, descOrganizationName)
	a.Describe(&p.ProjectName, descProjectName)
	a.Describe(&p.StackName, descStackName)
	a.Describe(&p.EnvironmentName, descEnvironmentName)
	a.Describe(&p.Secret, descSecret)
	a.Describe(&p.Filters, descFilters)
	a.Describe(&p.Groups, descGroups)
}

// Annotate describes the inputs and sets the format default.
func (w *WebhookArgs) Annotate(a infer.Annotator) {
	a.Describe(&w.Format, descFormat)
	a.SetDefault(&w.Format, string(webhook.FormatDefault))
}

// Annotate describes the outputs.
func (w *WebhookState) Annotate(a infer.Annotator) {
	a.Describe(&w.Format, descFormat)
	a.SetDefault(&w.Format, string(webhook.FormatDefault))
	a.Describe(&w.Name, descName)
}

// WebhookFormat is the schema enum of payload formats.
type WebhookFormat string

// Values lists the formats in the reference schema's order. raw and slack have no member name
// there, so none is given here either.
func (WebhookFormat) Values() []infer.EnumValue[WebhookFormat] {
	return []infer.EnumValue[WebhookFormat]{
		{Value: WebhookFormat(webhook.FormatRaw),
			Description: "The event itself as a JSON document; the default."},
		{Value: WebhookFormat(webhook.FormatSlack),
			Description: "A message for a Slack incoming webhook."},
		{Name: "PulumiDeployments", Value: WebhookFormat(webhook.FormatPulumiDeployments),
			Description: "No HTTP request: the event starts a deployment of the stack named by payloadUrl."},
		{Name: "MicrosoftTeams", Value: WebhookFormat(webhook.FormatMicrosoftTeams),
			Description: "A message for a Microsoft Teams incoming webhook."},
	}
}

// Annotate places the enum at pulumiservice:index:WebhookFormat.
func (f *WebhookFormat) Annotate(a infer.Annotator) {
	a.SetToken("index", "WebhookFormat")
	a.Describe(f, "How a webhook's deliveries are rendered.")
}

// WebhookGroup is the schema enum of filter groups.
type WebhookGroup string

// Values lists the groups in the reference schema's order.
func (WebhookGroup) Values() []infer.EnumValue[WebhookGroup] {
	return []infer.EnumValue[WebhookGroup]{
		{Name: "Stacks", Value: WebhookGroup(webhook.GroupStacks),
			Description: "Stack lifecycle events: creation, deletion, previews and updates of every kind."},
		{Name: "Deployments", Value: WebhookGroup(webhook.GroupDeployments),
			Description: "Deployment runs, drift detection and drift remediation."},
		{Name: "Environments", Value: WebhookGroup(webhook.GroupEnvironments),
			Description: "ESC environment events: revisions, tags, imports and rotations."},
	}
}

// Annotate places the enum at pulumiservice:index:WebhookGroup.
func (g *WebhookGroup) Annotate(a infer.Annotator) {
	a.SetToken("index", "WebhookGroup")
	a.Describe(g, "A family of events a webhook can subscribe to at once.")
}

// WebhookFilters is the schema enum of single events (the reference names it in the plural).
type WebhookFilters string

// Values lists every subscribable event in the reference schema's order.
func (WebhookFilters) Values() []infer.EnumValue[WebhookFilters] {
	fs := webhook.Filters()
	out := make([]infer.EnumValue[WebhookFilters], len(fs))
	for i, f := range fs {
		out[i] = infer.EnumValue[WebhookFilters]{Name: f.EnumName(), Value: WebhookFilters(f), Description: filterDescription(f)}
	}
	return out
}

// Annotate places the enum at pulumiservice:index:WebhookFilters.
func (f *WebhookFilters) Annotate(a infer.Annotator) {
	a.SetToken("index", "WebhookFilters")
	a.Describe(f, "One event a webhook can subscribe to.")
}

// filterDescription says when an event fires, in our own words.
func filterDescription(f webhook.Filter) string {
	d := filterDescriptions[f]
	if f.OrgOnly() {
		d += " Reaches organization webhooks only."
	}
	return d
}

var filterDescriptions = map[webhook.Filter]string{
	webhook.StackCreated:                  "A stack was created.",
	webhook.StackDeleted:                  "A stack was deleted.",
	webhook.UpdateSucceeded:               "An update (`pulumi up`) of a stack completed.",
	webhook.UpdateFailed:                  "An update (`pulumi up`) of a stack ended in an error.",
	webhook.PreviewSucceeded:              "A preview of a stack completed.",
	webhook.PreviewFailed:                 "A preview of a stack ended in an error.",
	webhook.DestroySucceeded:              "A destroy of a stack completed.",
	webhook.DestroyFailed:                 "A destroy of a stack ended in an error.",
	webhook.RefreshSucceeded:              "A refresh of a stack completed.",
	webhook.RefreshFailed:                 "A refresh of a stack ended in an error.",
	webhook.DeploymentQueued:              "A deployment was queued.",
	webhook.DeploymentStarted:             "A queued deployment began to run.",
	webhook.DeploymentSucceeded:           "A deployment completed.",
	webhook.DeploymentFailed:              "A deployment ended in an error.",
	webhook.DriftDetected:                 "A drift detection run found drift.",
	webhook.DriftDetectionSucceeded:       "A drift detection run completed, whether or not it found drift.",
	webhook.DriftDetectionFailed:          "A drift detection run ended in an error.",
	webhook.DriftRemediationSucceeded:     "A drift remediation run completed.",
	webhook.DriftRemediationFailed:        "A drift remediation run ended in an error.",
	webhook.EnvironmentCreated:            "An environment was created.",
	webhook.EnvironmentDeleted:            "An environment was deleted.",
	webhook.EnvironmentRevisionCreated:    "An environment got a new revision.",
	webhook.EnvironmentRevisionRetracted:  "A revision of an environment was retracted.",
	webhook.EnvironmentRevisionTagCreated: "A tag was put on an environment revision.",
	webhook.EnvironmentRevisionTagDeleted: "A tag was taken off an environment revision.",
	webhook.EnvironmentRevisionTagUpdated: "A revision tag was moved to another revision.",
	webhook.EnvironmentTagCreated:         "A tag was added to an environment.",
	webhook.EnvironmentTagDeleted:         "A tag was removed from an environment.",
	webhook.EnvironmentTagUpdated:         "An environment tag got a new value.",
	webhook.ImportedEnvironmentChanged:    "An environment that this environment imports changed.",
	webhook.EnvironmentRotationSucceeded:  "A secret rotation of an environment completed.",
	webhook.EnvironmentRotationFailed:     "A secret rotation of an environment ended in an error.",
}
