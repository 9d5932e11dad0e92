package resource

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/property"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/client"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Webhook is the controller of pulumiservice:index:Webhook.
type Webhook struct{}

var (
	_ infer.CustomResource[WebhookArgs, WebhookState]       = (*Webhook)(nil)
	_ infer.CustomCheck[WebhookArgs]                        = (*Webhook)(nil)
	_ infer.CustomDiff[WebhookArgs, WebhookState]           = (*Webhook)(nil)
	_ infer.CustomRead[WebhookArgs, WebhookState]           = (*Webhook)(nil)
	_ infer.CustomUpdate[WebhookArgs, WebhookState]         = (*Webhook)(nil)
	_ infer.CustomDelete[WebhookState]                      = (*Webhook)(nil)
	_ infer.ExplicitDependencies[WebhookArgs, WebhookState] = (*Webhook)(nil)
	_ infer.Annotated                                       = (*Webhook)(nil)
)

//go:embed webhook.md
var webhookDoc string

// Annotate places the resource at pulumiservice:index:Webhook and gives its documentation.
func (w *Webhook) Annotate(a infer.Annotator) {
	a.SetToken("index", "Webhook")
	a.Describe(w, webhookDoc)
}

// The properties that locate a webhook: changing any of them replaces it.
var scopeProperties = []string{"organizationName", "projectName", "stackName", "environmentName"}

func replaceOnChange(property string) bool { return slices.Contains(scopeProperties, property) }

// WireDependencies says that the name only changes with the scope (so an in-place update keeps
// it known during previews) and that the secret output is always secret.
func (*Webhook) WireDependencies(f infer.FieldSelector, args *WebhookArgs, state *WebhookState) {
	f.OutputField(&state.Name).DependsOn(
		f.InputField(&args.OrganizationName), f.InputField(&args.ProjectName),
		f.InputField(&args.StackName), f.InputField(&args.EnvironmentName))
	f.OutputField(&state.Secret).AlwaysSecret()
}

// Check validates the inputs with every rule of webhook.Spec.Validate, reporting each failure on
// the property it concerns together with the fix, warns about what webhook.Spec.Advise finds
// (accepted, as Pulumi Cloud accepts it, but probably a mistake), fills the format default, and
// subscribes a webhook that names neither filters nor groups to the default groups of its
// scope. Rules that depend on values still unknown during a preview are left for the run that
// knows them.
func (*Webhook) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[WebhookArgs], error) {
	args, failures, err := infer.DefaultCheck[WebhookArgs](ctx, req.NewInputs)
	if err != nil {
		return infer.CheckResponse[WebhookArgs]{Inputs: args}, err
	}
	reported := map[string]bool{}
	for i, f := range failures {
		failures[i] = explainDecodeFailure(req.NewInputs, f)
		reported[f.Property] = true
	}
	unknown := unknownInputs(req.NewInputs)
	failures = append(failures, validationFailures(args, unknown, reported)...)
	for _, w := range validationWarnings(args, unknown, reported) {
		p.GetLogger(ctx).Warning(w)
	}
	fillDefaultGroups(&args, unknown)
	return infer.CheckResponse[WebhookArgs]{Inputs: args, Failures: failures}, nil
}

// requiredFixes says what to give for each required input.
var requiredFixes = map[string]string{
	"active":           "set it to true to receive deliveries, or false to keep the webhook inactive",
	"displayName":      "give the webhook a human-readable name",
	"payloadUrl":       "give the URL that receives deliveries (or project/stack for pulumi_deployments)",
	"organizationName": "name the organization that owns the webhook",
}

// inputTypes names the type of each input, for messages about values of the wrong type.
var inputTypes = map[string]string{
	"active":           "a boolean (true or false)",
	"displayName":      "a string",
	"payloadUrl":       "a string",
	"organizationName": "a string",
	"projectName":      "a string",
	"stackName":        "a string",
	"environmentName":  "a string",
	"secret":           "a string",
	"format":           "one of the strings " + quoted(webhook.Formats()),
	"filters":          "a list of filter names such as \"update_succeeded\"",
	"groups":           "a list of group names: " + quoted(webhook.Groups()),
}

// explainDecodeFailure rewrites the decoder's messages, which speak of Go types, into ones that
// name the property and what to give.
func explainDecodeFailure(inputs property.Map, f p.CheckFailure) p.CheckFailure {
	v, present := inputs.GetOk(f.Property)
	if fix, required := requiredFixes[f.Property]; required && (!present || v.IsNull()) {
		return p.CheckFailure{Property: f.Property, Reason: f.Property + " is required: " + fix}
	}
	if want, known := inputTypes[f.Property]; known && present {
		return p.CheckFailure{Property: f.Property, Reason: f.Property + " must be " + want}
	}
	return f
}

func quoted[T ~string](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", string(v))
	}
	return strings.Join(q, ", ")
}

// unknownInputs returns the top-level inputs whose value is not known yet (a preview of a value
// computed by another resource).
func unknownInputs(inputs property.Map) map[string]bool {
	out := map[string]bool{}
	for k, v := range inputs.All {
		if v.HasComputed() {
			out[k] = true
		}
	}
	return out
}

// validationFailures runs webhook.Spec.Validate and reports each FieldError on its property
// ("filters[2]" on "filters"), skipping what is already reported or not known yet.
func validationFailures(args WebhookArgs, unknown, reported map[string]bool) []p.CheckFailure {
	var fes webhook.FieldErrors
	if err := args.spec("").Validate(); err == nil || !errors.As(err, &fes) {
		return nil
	}
	var out []p.CheckFailure
	for _, fe := range fes {
		if prop := fieldProperty(fe.Field); !skipRule(prop, unknown, reported) {
			out = append(out, p.CheckFailure{Property: prop, Reason: fieldReason(fe)})
		}
	}
	return out
}

// validationWarnings runs webhook.Spec.Advise: what Pulumi Cloud accepts (and so does Check)
// but is probably a mistake, such as a filter that never fires for the webhook's scope or one
// listed twice. Each is a message naming the field, why and the fix; at most
// webhook.FieldErrorsMax of them, the rest counted.
func validationWarnings(args WebhookArgs, unknown, reported map[string]bool) []string {
	var kept webhook.FieldErrors
	for _, fe := range args.spec("").Advise() {
		if !skipRule(fieldProperty(fe.Field), unknown, reported) {
			kept = append(kept, fe)
		}
	}
	shown, more := kept.Reported()
	out := make([]string, 0, len(shown)+1)
	for _, fe := range shown {
		out = append(out, fieldReason(fe)+" (accepted; it has no effect)")
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("and %d more such entries in filters and groups", more))
	}
	return out
}

// skipRule reports whether a rule about prop cannot be judged yet: prop is already reported,
// or it or what decides it is not known yet.
func skipRule(prop string, unknown, reported map[string]bool) bool {
	scopeUnknown := slices.ContainsFunc(scopeProperties, func(k string) bool { return unknown[k] })
	switch {
	case reported[prop] || unknown[prop]:
		return true
	case scopeUnknown && (replaceOnChange(prop) || prop == "filters" || prop == "format"):
		return true // the scope decides which filters and formats are allowed
	case unknown["format"] && prop == "payloadUrl":
		return true // the format decides what a payload URL looks like
	}
	return false
}

// fieldProperty returns the input a spec field belongs to: "filters" for "filters[2]".
func fieldProperty(field string) string {
	if i := strings.IndexByte(field, '['); i >= 0 {
		return field[:i]
	}
	return field
}

// fieldReason renders a FieldError as a sentence that starts with the field.
func fieldReason(fe webhook.FieldError) string {
	sep := ": "
	if strings.HasPrefix(fe.Message, "is ") || strings.HasPrefix(fe.Message, "cannot ") || strings.HasPrefix(fe.Message, `"`) {
		sep = " "
	}
	return fe.Field + sep + fe.Message
}

// fillDefaultGroups subscribes a webhook that names neither filters nor groups to its scope's
// default groups. A scope property that is still unknown counts as set.
func fillDefaultGroups(args *WebhookArgs, unknown map[string]bool) {
	if len(args.Filters) > 0 || len(args.Groups) > 0 || unknown["filters"] || unknown["groups"] {
		return
	}
	kind := args.scope().Kind()
	switch {
	case unknown["stackName"]:
		kind = webhook.ScopeStack
	case unknown["environmentName"] && kind != webhook.ScopeStack:
		kind = webhook.ScopeEnvironment
	}
	args.Groups = fromGroups(webhook.DefaultGroups(kind))
}

// Create stores the webhook; during a preview it only predicts the outputs and leaves the store
// untouched (the name stays unknown).
func (*Webhook) Create(ctx context.Context, req infer.CreateRequest[WebhookArgs]) (infer.CreateResponse[WebhookState], error) {
	if req.DryRun {
		return infer.CreateResponse[WebhookState]{Output: stateFromArgs(req.Inputs, "")}, nil
	}
	c, err := clientFrom(ctx)
	if err != nil {
		return infer.CreateResponse[WebhookState]{}, err
	}
	spec := req.Inputs.spec("")
	h, err := c.Create(ctx, spec)
	if err != nil {
		return infer.CreateResponse[WebhookState]{}, diagnose("create", "in "+spec.Scope.String(), err)
	}
	return infer.CreateResponse[WebhookState]{
		ID:     FormatID(h.Ref()),
		Output: stateFromHook(h, req.Inputs.Secret),
	}, nil
}

// Diff compares the recorded state with the new inputs property by property: a change of scope
// replaces the webhook, anything else updates it in place. The secret is compared like any other
// property; Pulumi shows its change without its value.
func (*Webhook) Diff(_ context.Context, req infer.DiffRequest[WebhookArgs, WebhookState]) (infer.DiffResponse, error) {
	olds, news := req.State, req.Inputs
	newFormat := news.Format
	if newFormat == nil {
		f := WebhookFormat(webhook.FormatDefault)
		newFormat = &f
	}
	d := map[string]p.PropertyDiff{}
	diffString := func(key string, old, new string) {
		if kind, changed := changeKind(old != "", new != "", old != new); changed {
			if replaceOnChange(key) {
				kind = asReplace(kind)
			}
			d[key] = p.PropertyDiff{Kind: kind, InputDiff: true}
		}
	}
	diffString("organizationName", olds.OrganizationName, news.OrganizationName)
	diffString("projectName", deref(olds.ProjectName), deref(news.ProjectName))
	diffString("stackName", deref(olds.StackName), deref(news.StackName))
	diffString("environmentName", deref(olds.EnvironmentName), deref(news.EnvironmentName))
	diffString("displayName", olds.DisplayName, news.DisplayName)
	diffString("payloadUrl", olds.PayloadURL, news.PayloadURL)
	diffString("secret", deref(olds.Secret), deref(news.Secret))
	diffString("format", string(olds.Format), string(*newFormat))
	if olds.Active != news.Active {
		d["active"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if kind, changed := changeKind(len(olds.Filters) > 0, len(news.Filters) > 0, !sameSet(olds.Filters, news.Filters)); changed {
		d["filters"] = p.PropertyDiff{Kind: kind, InputDiff: true}
	}
	if kind, changed := changeKind(len(olds.Groups) > 0, len(news.Groups) > 0, !sameSet(olds.Groups, news.Groups)); changed {
		d["groups"] = p.PropertyDiff{Kind: kind, InputDiff: true}
	}
	return infer.DiffResponse{HasChanges: len(d) > 0, DetailedDiff: d}, nil
}

// changeKind classifies a change of a property that was (hadOld) and is (hasNew) set.
func changeKind(hadOld, hasNew, differ bool) (p.DiffKind, bool) {
	switch {
	case !differ:
		return "", false
	case !hadOld:
		return p.Add, true
	case !hasNew:
		return p.Delete, true
	default:
		return p.Update, true
	}
}

func asReplace(k p.DiffKind) p.DiffKind {
	switch k {
	case p.Add:
		return p.AddReplace
	case p.Delete:
		return p.DeleteReplace
	default:
		return p.UpdateReplace
	}
}

// sameSet compares two lists without regard to order, counting repeats (which Check accepts
// and the store keeps as given).
func sameSet[T ~string](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	as, bs := slices.Clone(a), slices.Clone(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(as, bs)
}

// Update changes the webhook in place. The secret is sent only when it differs from the
// recorded one, so a webhook imported without its secret keeps it. During a preview nothing is
// sent and the outputs are predicted from the inputs.
func (*Webhook) Update(ctx context.Context, req infer.UpdateRequest[WebhookArgs, WebhookState]) (infer.UpdateResponse[WebhookState], error) {
	ref, err := ParseID(req.ID)
	if err != nil {
		return infer.UpdateResponse[WebhookState]{}, err
	}
	if scope := req.Inputs.scope(); scope != ref.Scope {
		return infer.UpdateResponse[WebhookState]{}, fmt.Errorf("cannot update webhook %s in place: its scope would change to %s, which needs a replacement", req.ID, scope)
	}
	if req.DryRun {
		return infer.UpdateResponse[WebhookState]{Output: stateFromArgs(req.Inputs, ref.Name)}, nil
	}
	c, err := clientFrom(ctx)
	if err != nil {
		return infer.UpdateResponse[WebhookState]{}, err
	}
	var secret *string
	if deref(req.State.Secret) != deref(req.Inputs.Secret) {
		s := deref(req.Inputs.Secret)
		secret = &s
	}
	h, err := c.Update(ctx, ref, req.Inputs.spec(ref.Name), secret)
	if err != nil {
		return infer.UpdateResponse[WebhookState]{}, diagnose("update", req.ID, err)
	}
	return infer.UpdateResponse[WebhookState]{Output: stateFromHook(h, req.Inputs.Secret)}, nil
}

// Read serves refresh, import and get. Every property comes from the store, so a change made
// outside Pulumi shows as drift, and a webhook deleted outside Pulumi disappears from the state.
// The secret cannot be read back: refresh keeps the recorded one while the store confirms it
// (client.SecretChecker), and reports drift otherwise; import leaves it unset.
func (*Webhook) Read(ctx context.Context, req infer.ReadRequest[WebhookArgs, WebhookState]) (infer.ReadResponse[WebhookArgs, WebhookState], error) {
	importing := req.State.Name == "" && req.State.OrganizationName == ""
	op := "read"
	if importing {
		op = "import"
	}
	ref, err := ParseID(req.ID)
	if err != nil {
		return infer.ReadResponse[WebhookArgs, WebhookState]{}, fmt.Errorf("cannot %s: %w", op, err)
	}
	c, err := clientFrom(ctx)
	if err != nil {
		return infer.ReadResponse[WebhookArgs, WebhookState]{}, err
	}
	h, err := c.Get(ctx, ref)
	if errors.Is(err, store.ErrNotFound) && !importing {
		return infer.ReadResponse[WebhookArgs, WebhookState]{}, nil // gone: Pulumi drops it
	}
	if err != nil {
		err = diagnose(op, req.ID, err)
		if hint := webhook.HookIDHint(ref.Scope, ref.Name); hint != "" && errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("%w; %s", err, hint)
		}
		return infer.ReadResponse[WebhookArgs, WebhookState]{}, err
	}
	var secret *string
	if !importing {
		if secret, err = refreshedSecret(ctx, c, req.State.Secret, h); err != nil {
			return infer.ReadResponse[WebhookArgs, WebhookState]{}, diagnose(op, req.ID, err)
		}
	}
	state := stateFromHook(h, secret)
	return infer.ReadResponse[WebhookArgs, WebhookState]{
		ID:     FormatID(h.Ref()),
		Inputs: argsFromState(state),
		State:  state,
	}, nil
}

// refreshedSecret returns the secret to record after a refresh. The store keeps a keyed digest
// of the secret that only it can compute, so the client asks it whether the recorded secret is
// still the hook's (client.SecretChecker). While it is, nothing changes. When the secret was
// removed outside Pulumi, the result is unset. When it was set or rotated outside Pulumi, the
// result is the store's digest: a value that differs from the program's secret, so the next
// update writes the program's secret back, and that stays the same on later refreshes. It is
// recorded as a secret like the real one. A client that cannot check keeps the recorded secret
// while the hook has one.
func refreshedSecret(ctx context.Context, c client.Client, recorded *string, h *store.Hook) (*string, error) {
	old := deref(recorded)
	switch {
	case !h.HasSecret && old == "":
		return recorded, nil
	case !h.HasSecret:
		return nil, nil
	case old == "":
		d := h.SecretDigest
		return &d, nil
	}
	checker, ok := c.(client.SecretChecker)
	if !ok {
		return recorded, nil
	}
	same, err := checker.SecretMatches(ctx, h.Ref(), old)
	if err != nil {
		return nil, err
	}
	if same {
		return recorded, nil
	}
	d := h.SecretDigest
	return &d, nil
}

// Delete removes the webhook; one already gone counts as deleted.
func (*Webhook) Delete(ctx context.Context, req infer.DeleteRequest[WebhookState]) (infer.DeleteResponse, error) {
	ref, err := ParseID(req.ID)
	if err != nil {
		return infer.DeleteResponse{}, err
	}
	c, err := clientFrom(ctx)
	if err != nil {
		return infer.DeleteResponse{}, err
	}
	if err := c.Delete(ctx, ref); err != nil && !errors.Is(err, store.ErrNotFound) {
		return infer.DeleteResponse{}, diagnose("delete", req.ID, err)
	}
	return infer.DeleteResponse{}, nil
}

// scope returns the webhook's scope.
func (p WebhookProperties) scope() webhook.Scope {
	return webhook.Scope{Org: p.OrganizationName, Project: deref(p.ProjectName), Stack: deref(p.StackName), Environment: deref(p.EnvironmentName)}
}

// spec returns the webhook.Spec the inputs describe, named name ("" lets the store choose).
func (a WebhookArgs) spec(name string) webhook.Spec {
	s := webhook.Spec{
		Scope:       a.scope(),
		Name:        name,
		DisplayName: a.DisplayName,
		PayloadURL:  a.PayloadURL,
		Secret:      deref(a.Secret),
		Active:      a.Active,
		Filters:     toFilters(a.Filters),
		Groups:      toGroups(a.Groups),
	}
	if a.Format != nil {
		s.Format = webhook.Format(*a.Format)
	}
	s.Normalize()
	return s
}

// stateFromArgs predicts the state of a webhook named name from its inputs, for previews.
func stateFromArgs(a WebhookArgs, name string) WebhookState {
	format := WebhookFormat(webhook.FormatDefault)
	if a.Format != nil {
		format = *a.Format
	}
	return WebhookState{WebhookProperties: a.WebhookProperties, Format: format, Name: name}
}

// stateFromHook is the state of a stored hook; secret is what to record for its secret.
func stateFromHook(h *store.Hook, secret *string) WebhookState {
	return WebhookState{
		WebhookProperties: WebhookProperties{
			Active:           h.Active,
			DisplayName:      h.DisplayName,
			PayloadURL:       h.PayloadURL,
			OrganizationName: h.Org,
			ProjectName:      optional(h.Project),
			StackName:        optional(h.Stack),
			EnvironmentName:  optional(h.Environment),
			Secret:           secret,
			Filters:          fromFilters(h.Filters),
			Groups:           fromGroups(h.Groups),
		},
		Format: WebhookFormat(h.Format),
		Name:   h.Name,
	}
}

// argsFromState returns the inputs that describe state.
func argsFromState(s WebhookState) WebhookArgs {
	f := s.Format
	return WebhookArgs{WebhookProperties: s.WebhookProperties, Format: &f}
}

func toFilters(fs []WebhookFilters) []webhook.Filter {
	if len(fs) == 0 {
		return nil
	}
	out := make([]webhook.Filter, len(fs))
	for i, f := range fs {
		out[i] = webhook.Filter(f)
	}
	return out
}

func fromFilters(fs []webhook.Filter) []WebhookFilters {
	if len(fs) == 0 {
		return nil
	}
	out := make([]WebhookFilters, len(fs))
	for i, f := range fs {
		out[i] = WebhookFilters(f)
	}
	return out
}

func toGroups(gs []WebhookGroup) []webhook.Group {
	if len(gs) == 0 {
		return nil
	}
	out := make([]webhook.Group, len(gs))
	for i, g := range gs {
		out[i] = webhook.Group(g)
	}
	return out
}

func fromGroups(gs []webhook.Group) []WebhookGroup {
	if len(gs) == 0 {
		return nil
	}
	out := make([]WebhookGroup, len(gs))
	for i, g := range gs {
		out[i] = WebhookGroup(g)
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
