package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// ConsoleURLDefault is the console that payload links point at when none is configured.
const ConsoleURLDefault = "https://app.pulumi.com"

// Defaults of the generated payloads, for the facts an event source does not tell.
const (
	// UpdateNumberDefault is the update number in generated updateUrl links.
	UpdateNumberDefault = 1
	// VersionDefault is the deployment version of generated deployment and drift events.
	VersionDefault = 1
	// RevisionDefault is the environment revision of generated environment events.
	RevisionDefault = 1
)

// PayloadParams describes the event to build a raw payload for.
type PayloadParams struct {
	// EventID identifies the event; generated preview links derive their id from it.
	EventID string
	Filter  webhook.Filter
	// Subject is the stack (Org, Project, Stack) or environment (Org, Project, Environment)
	// the event is about; for a ping, the hook's scope.
	Subject webhook.Scope
	// Overrides is an optional JSON object whose top-level fields replace the generated
	// ones. Fields the payload does not have are kept as given.
	Overrides json.RawMessage
	// ConsoleURL is the base of generated links; ConsoleURLDefault when empty.
	ConsoleURL string
	// Now is when the event happened; time.Now when zero.
	Now time.Time
	// Actor is who caused the event, when the event source knows it (the API token that
	// emitted it); webhook.SystemUser when nil. A "user" override replaces it.
	Actor *webhook.User
	// OrgDisplayName is the organization's display name, the payloads' organization.name;
	// the organization's name (Subject.Org) when empty.
	OrgDisplayName string
}

// Payload builds the raw-format JSON payload of an event, in the shape of the Pulumi Cloud
// reference payloads. Bad input comes back as webhook.FieldErrors naming "filter",
// "subject.<field>", "consoleUrl", "payload" or "payload.<field>".
func Payload(p PayloadParams) ([]byte, error) {
	var errs webhook.FieldErrors
	checkEvent(p.Filter, p.Subject, &errs)
	console, err := consoleBase(p.ConsoleURL)
	if err != nil {
		errs.Add("consoleUrl", err.Error())
	}
	overrides, err := parseOverrides(p.Overrides)
	if err != nil {
		errs.Add("payload", err.Error())
	}
	if len(errs) > 0 {
		return nil, errs
	}

	generated := defaultPayload(p, console)
	typ := reflect.TypeOf(generated).Elem()
	known := jsonFields(typ)
	for _, m := range overrides {
		if f, ok := known[m.key]; ok {
			checkValue("payload."+m.key, f.Type, m.value, &errs)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// Apply the known fields to the typed payload so derived links follow them (a version
	// override moves deploymentUrl), then let every override replace its generated field.
	var applied object
	for _, m := range overrides {
		if _, ok := known[m.key]; ok {
			applied = append(applied, m)
		}
	}
	if len(applied) > 0 {
		b, err := applied.bytes()
		if err != nil {
			return nil, fmt.Errorf("render: encoding payload overrides: %w", err)
		}
		if err := json.Unmarshal(b, generated); err != nil {
			return nil, fmt.Errorf("render: applying payload overrides: %w", err)
		}
	}
	deriveLinks(generated, p, console, overrides)

	b, err := marshal(generated)
	if err != nil {
		return nil, fmt.Errorf("render: encoding payload: %w", err)
	}
	if len(overrides) == 0 {
		return b, nil // compact, its keys plain: what re-reading and encoding it would give
	}
	out, err := overrides.over(b)
	if err != nil {
		return nil, fmt.Errorf("render: re-reading payload: %w", err)
	}
	return out, nil
}

// checkEvent checks that the filter is known (or is a ping) and the subject is what an event
// of it is about (webhook.Filter.CheckSubject), naming the subject's fields "subject.<field>".
func checkEvent(f webhook.Filter, s webhook.Scope, errs *webhook.FieldErrors) {
	if f != webhook.Ping && !f.Valid() {
		_, err := webhook.ParseFilter(string(f))
		errs.Add("filter", err.Error()+", or \"ping\"")
		return
	}
	var subjectErrs webhook.FieldErrors
	if errors.As(f.CheckSubject(s), &subjectErrs) {
		for _, e := range subjectErrs {
			errs.Add("subject."+e.Field, e.Message)
		}
	}
}

// consoleBase returns the console URL without a trailing slash.
func consoleBase(raw string) (string, error) {
	if raw == "" {
		return ConsoleURLDefault, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http:// or https:// URL: give the console's base URL, e.g. %s", raw, ConsoleURLDefault)
	}
	return strings.TrimRight(raw, "/"), nil
}

// CheckOverrides checks that raw can be the overrides of PayloadParams: nothing, null, or one
// JSON object. Payload checks them the same way; the types of known fields are checked there.
func CheckOverrides(raw json.RawMessage) error {
	_, err := parseOverrides(raw)
	return err
}

// parseOverrides reads the overrides object; nothing, white space and null mean none.
func parseOverrides(raw json.RawMessage) (object, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	o, err := parseObject(trimmed)
	if err != nil {
		return nil, fmt.Errorf("overrides %w: give a JSON object whose fields replace the generated payload's", err)
	}
	return o, nil
}

// defaultPayload returns a pointer to the generated payload of the event, links included.
func defaultPayload(p PayloadParams, console string) any {
	s := p.Subject
	user := webhook.SystemUser()
	if p.Actor != nil {
		user = *p.Actor
	}
	org := webhook.Organization{Name: s.Org, GithubLogin: s.Org}
	if p.OrgDisplayName != "" {
		org.Name = p.OrgDisplayName
	}
	f := p.Filter
	result := webhook.ResultSucceeded
	if strings.HasSuffix(string(f), "_failed") {
		result = webhook.ResultFailed
	}
	switch f.Kind() {
	case webhook.KindStack:
		action := webhook.ActionCreated
		if f == webhook.StackDeleted {
			action = webhook.ActionDeleted
		}
		return &webhook.StackPayload{User: user, Organization: org, Action: action, ProjectName: s.Project, StackName: s.Stack}
	case webhook.KindStackUpdate, webhook.KindStackPreview:
		kind := webhook.UpdateKindUpdate
		switch f {
		case webhook.DestroySucceeded, webhook.DestroyFailed:
			kind = webhook.UpdateKindDestroy
		case webhook.RefreshSucceeded, webhook.RefreshFailed:
			kind = webhook.UpdateKindRefresh
		}
		return &webhook.StackUpdatePayload{
			User: user, Organization: org, ProjectName: s.Project, StackName: s.Stack,
			Kind: kind, Result: result, ResourceChanges: map[string]int{},
			IsPreview: f.Kind() == webhook.KindStackPreview,
		}
	case webhook.KindDeployment:
		status := map[webhook.Filter]string{
			webhook.DeploymentQueued: webhook.StatusQueued, webhook.DeploymentStarted: webhook.StatusRunning,
			webhook.DeploymentSucceeded: webhook.StatusSucceeded, webhook.DeploymentFailed: webhook.StatusFailed,
		}[f]
		return &webhook.DeploymentPayload{
			User: user, Organization: org, ProjectName: s.Project, StackName: s.Stack,
			Version: VersionDefault, Operation: webhook.OperationUpdate, Status: status,
		}
	case webhook.KindDriftDetection:
		return &webhook.DriftDetectionPayload{
			User: user, Organization: org, ProjectName: s.Project, StackName: s.Stack,
			DriftDetected: f == webhook.DriftDetected, DriftRunID: driftRunID(p.EventID),
			Status: result, ResourceChanges: map[string]int{},
		}
	case webhook.KindDriftRemediation:
		return &webhook.DriftRemediationPayload{
			User: user, Organization: org, ProjectName: s.Project, StackName: s.Stack,
			Status: result, ResourceChanges: map[string]int{},
		}
	case webhook.KindEnvironment:
		action := webhook.ActionCreated
		if f == webhook.EnvironmentDeleted {
			action = webhook.ActionDeleted
		}
		return &webhook.EnvironmentPayload{User: user, Organization: org, ProjectName: s.Project, EnvironmentName: s.Environment, Action: action}
	case webhook.KindEnvironmentRevision:
		action := webhook.ActionCreated
		if f == webhook.EnvironmentRevisionRetracted {
			action = webhook.ActionRetracted
		}
		return &webhook.EnvironmentRevisionPayload{
			User: user, Organization: org, ProjectName: s.Project, EnvironmentName: s.Environment,
			Action: action, Revision: RevisionDefault,
		}
	case webhook.KindEnvironmentRevisionTag:
		return &webhook.EnvironmentRevisionTagPayload{
			User: user, Organization: org, ProjectName: s.Project, EnvironmentName: s.Environment,
			TagName: "stable", Action: tagAction(f), Revision: RevisionDefault,
		}
	case webhook.KindEnvironmentTag:
		return &webhook.EnvironmentTagPayload{
			User: user, Organization: org, ProjectName: s.Project, EnvironmentName: s.Environment,
			TagName: "owner", Action: tagAction(f),
		}
	case webhook.KindImportedEnvironmentChanged:
		return &webhook.ImportedEnvironmentChangedPayload{
			User: user, Organization: org, ProjectName: s.Project, EnvironmentName: s.Environment,
			AffectedRevisions: []int{RevisionDefault},
			ImportedEnvironmentReference: webhook.EnvironmentReference{
				ProjectName: s.Project, EnvironmentName: "common", Revision: RevisionDefault,
			},
		}
	case webhook.KindEnvironmentRotation:
		pl := &webhook.EnvironmentRotationPayload{
			User: user, Organization: org, ProjectName: s.Project, EnvironmentName: s.Environment,
			Action: webhook.ActionRotated, Result: result,
		}
		if result == webhook.ResultSucceeded {
			rev := RevisionDefault + 1
			pl.Revision = &rev
		}
		return pl
	case webhook.KindPolicyViolation:
		level := webhook.EnforcementMandatory
		if f == webhook.PolicyViolationAdvisory {
			level = webhook.EnforcementAdvisory
		}
		return &webhook.PolicyViolationPayload{
			User: user, Organization: org, ProjectName: s.Project, StackName: s.Stack, EnforcementLevel: level,
		}
	default: // ping; checkEvent admits nothing else
		now := p.Now
		if now.IsZero() {
			now = time.Now()
		}
		return &webhook.PingPayload{Timestamp: now.Unix(), Message: webhook.PingMessage}
	}
}

func tagAction(f webhook.Filter) string {
	switch {
	case strings.HasSuffix(string(f), "_deleted"):
		return webhook.ActionDeleted
	case strings.HasSuffix(string(f), "_updated"):
		return webhook.ActionUpdated
	default:
		return webhook.ActionCreated
	}
}

// deriveLinks fills the console links of a payload from its final field values, unless the
// overrides give the link itself.
func deriveLinks(pl any, p PayloadParams, console string, overrides object) {
	s := p.Subject
	given := func(key string) bool { return overrides.index(key) >= 0 }
	orgSlug := func(o webhook.Organization) string {
		if o.GithubLogin != "" {
			return o.GithubLogin
		}
		return s.Org
	}
	switch pl := pl.(type) {
	case *webhook.StackUpdatePayload:
		if given("updateUrl") {
			return
		}
		if pl.IsPreview {
			pl.UpdateURL = stackURL(console, orgSlug(pl.Organization), pl.ProjectName, pl.StackName, "previews", previewID(p.EventID, pl))
		} else {
			pl.UpdateURL = stackURL(console, orgSlug(pl.Organization), pl.ProjectName, pl.StackName, "updates", strconv.Itoa(UpdateNumberDefault))
		}
	case *webhook.DeploymentPayload:
		if !given("deploymentUrl") {
			pl.DeploymentURL = stackURL(console, orgSlug(pl.Organization), pl.ProjectName, pl.StackName, "deployments", strconv.Itoa(pl.Version))
		}
	case *webhook.DriftDetectionPayload:
		if !given("referenceUrl") {
			pl.ReferenceURL = stackURL(console, orgSlug(pl.Organization), pl.ProjectName, pl.StackName, "drift", pl.DriftRunID)
		}
	case *webhook.DriftRemediationPayload:
		if !given("referenceUrl") {
			pl.ReferenceURL = stackURL(console, orgSlug(pl.Organization), pl.ProjectName, pl.StackName, "drift")
		}
	}
}

// previewID derives a UUID-formatted preview id from the event id and the stack, so one event
// always links to the same preview and different events to different ones.
// driftRunID is the generated driftRunId of a drift detection event: derived from the event
// so that the same event always renders the same payload.
func driftRunID(eventID string) string { return uuidFrom("drift-run", eventID) }

func previewID(eventID string, pl *webhook.StackUpdatePayload) string {
	return uuidFrom("preview", eventID, pl.Organization.GithubLogin, pl.ProjectName, pl.StackName)
}

// uuidFrom hashes its parts into a version 8 (custom) UUID.
func uuidFrom(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// stackURL is <console>/<org>/<project>/<stack>[/<section>/<id>].
func stackURL(console, org, project, stack string, tail ...string) string {
	return join(console, append([]string{org, project, stack}, tail...)...)
}

// environmentURL is <console>/<org>/esc/<project>/<environment>.
func environmentURL(console, org, project, env string) string {
	return join(console, org, "esc", project, env)
}

func join(base string, segments ...string) string {
	var b strings.Builder
	b.WriteString(base)
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

var jsonFieldsCache sync.Map // reflect.Type -> map[string]reflect.StructField

// jsonFields maps the JSON names of a struct's fields to the fields. The map is shared: read
// it only.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	if f, ok := jsonFieldsCache.Load(t); ok {
		return f.(map[string]reflect.StructField)
	}
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	jsonFieldsCache.Store(t, out)
	return out
}

// checkValue reports when raw is not the JSON type a field of Go type t takes. Objects are
// checked field by field; their unknown fields are let through.
func checkValue(path string, t reflect.Type, raw json.RawMessage, errs *webhook.FieldErrors) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		errs.Add(path, "is not valid JSON: "+err.Error())
		return
	}
	checkDecoded(path, t, v, errs)
}

func checkDecoded(path string, t reflect.Type, v any, errs *webhook.FieldErrors) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	want := expectedType(t)
	wrong := func() { errs.Add(path, fmt.Sprintf("must be %s, not %s", want, describe(v))) }
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			wrong()
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			wrong()
		}
	case reflect.Int, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			wrong()
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			errs.Add(path, fmt.Sprintf("must be %s, not %s: give a whole number such as 42", want, n))
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			wrong()
			return
		}
		for _, k := range sortedKeys(m) {
			checkDecoded(path+"."+k, t.Elem(), m[k], errs)
		}
	case reflect.Slice:
		items, ok := v.([]any)
		if !ok {
			wrong()
			return
		}
		for i, item := range items {
			checkDecoded(fmt.Sprintf("%s[%d]", path, i), t.Elem(), item, errs)
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			wrong()
			return
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			if f, ok := fields[k]; ok {
				checkDecoded(path+"."+k, f.Type, m[k], errs)
			}
		}
	}
}

// expectedType names the JSON type a Go type is encoded as.
func expectedType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(strings.TrimPrefix(expectedType(t.Elem()), "an "), "a ") + " values"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(expectedType(t.Elem()), "an "), "a ") + "s"
	default:
		return "an object"
	}
}

// describe names the JSON type of a decoded value.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number (" + string(v) + ")"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
