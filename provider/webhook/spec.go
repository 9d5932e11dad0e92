package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Format is how a hook's requests are rendered.
type Format string

// The payload formats, as the provider schema's WebhookFormat enum lists them.
const (
	FormatRaw               Format = "raw"
	FormatSlack             Format = "slack"
	FormatPulumiDeployments Format = "pulumi_deployments"
	FormatMicrosoftTeams    Format = "ms_teams"

	// FormatDefault is the format of a hook that names none.
	FormatDefault = FormatRaw
)

// Formats returns every format in the schema's enum order.
func Formats() []Format {
	return []Format{FormatRaw, FormatSlack, FormatPulumiDeployments, FormatMicrosoftTeams}
}

// Valid reports whether f is a known format.
func (f Format) Valid() bool { return slices.Contains(Formats(), f) }

// ScopeKind says what a hook is attached to.
type ScopeKind string

// The scope kinds.
const (
	ScopeOrganization ScopeKind = "organization"
	ScopeStack        ScopeKind = "stack"
	ScopeEnvironment  ScopeKind = "environment"
)

// Scope locates a hook: an organization, one stack of it, or one ESC environment of it.
// Exactly one of Stack and Environment is set for stack and environment scopes, each with
// Project; both are empty for an organization scope.
type Scope struct {
	Org         string `json:"organizationName"`
	Project     string `json:"projectName,omitempty"`
	Stack       string `json:"stackName,omitempty"`
	Environment string `json:"environmentName,omitempty"`
}

// Kind returns the scope's kind. It assumes the scope is valid.
func (s Scope) Kind() ScopeKind {
	switch {
	case s.Stack != "":
		return ScopeStack
	case s.Environment != "":
		return ScopeEnvironment
	default:
		return ScopeOrganization
	}
}

// String renders the scope as org, org/project/stack or org/project/environment.
func (s Scope) String() string {
	switch s.Kind() {
	case ScopeStack:
		return s.Org + "/" + s.Project + "/" + s.Stack
	case ScopeEnvironment:
		return s.Org + "/" + s.Project + "/" + s.Environment
	default:
		return s.Org
	}
}

// Validate checks the scope rules: an organization is required; a stack needs a project and
// a stack name; an environment needs a project and an environment name; a hook cannot be both;
// a project alone is an error.
func (s Scope) Validate() error {
	var errs FieldErrors
	if s.Org == "" {
		errs.Add("organizationName", "is required: name the organization that owns the webhook")
	}
	switch {
	case s.Stack != "" && s.Environment != "":
		errs.Add("environmentName", "cannot be set together with stackName: a webhook belongs to one stack or one environment, not both")
	case s.Stack != "" && s.Project == "":
		errs.Add("projectName", "is required for a stack webhook: set it to the stack's project")
	case s.Environment != "" && s.Project == "":
		errs.Add("projectName", "is required for an environment webhook: set it to the environment's project")
	case s.Project != "" && s.Stack == "" && s.Environment == "":
		errs.Add("projectName", "is set but neither stackName nor environmentName is: set one of them for a stack or environment webhook, or remove projectName for an organization webhook")
	}
	checkNames(s, &errs)
	return errs.Err()
}

// Spec is what a user says about a webhook: everything the provider and the REST API accept.
// Secret is plain text here and nowhere else; stores keep it encrypted.
type Spec struct {
	Scope
	// Name identifies the hook within its scope. Empty on create means "generate one".
	Name        string   `json:"name,omitempty"`
	DisplayName string   `json:"displayName"`
	PayloadURL  string   `json:"payloadUrl"`
	Secret      string   `json:"secret,omitempty"`
	Active      bool     `json:"active"`
	Format      Format   `json:"format,omitempty"`
	Filters     []Filter `json:"filters,omitempty"`
	Groups      []Group  `json:"groups,omitempty"`
}

// DefaultGroups returns the groups a hook of scope kind k subscribes to when it names neither
// filters nor groups, as the Pulumi Service provider fills them.
func DefaultGroups(k ScopeKind) []Group {
	switch k {
	case ScopeStack:
		return []Group{GroupDeployments, GroupStacks}
	case ScopeEnvironment:
		return []Group{GroupEnvironments}
	default:
		return []Group{GroupDeployments, GroupEnvironments, GroupStacks}
	}
}

// Normalize fills defaults: the raw format when none is given.
func (s *Spec) Normalize() {
	if s.Format == "" {
		s.Format = FormatDefault
	}
}

// Validate checks everything about a spec that can be checked without a store, and returns
// FieldErrors naming each offending field with the fix. It refuses only what Pulumi Cloud's
// service refuses (or what no hook can work with); what the service accepts but is probably a
// mistake is Advise's. The provider's Check, the REST API, the console and the CLI all judge a
// spec by these two.
func (s Spec) Validate() error {
	refused, _ := s.check()
	return refused.Err()
}

// Advise returns what Validate lets through but is probably a mistake, each naming its field
// with why and the fix: a filter or group listed twice (it changes nothing), and a filter that
// never fires for the webhook's scope (stack_created on a stack webhook, an environment event
// on a stack webhook, ...). Pulumi Cloud and the official provider accept both, so programs
// written for them keep working; the provider's Check reports them as warnings. Entries
// Validate refuses are not advised on.
func (s Spec) Advise() FieldErrors {
	_, advice := s.check()
	return advice
}

// check applies every rule of a spec once: refused is what Validate reports, advice what
// Advise does.
func (s Spec) check() (refused, advice FieldErrors) {
	var errs FieldErrors
	var scopeErrs FieldErrors
	if errors.As(s.Scope.Validate(), &scopeErrs) {
		errs = append(errs, scopeErrs...)
	}
	if strings.TrimSpace(s.DisplayName) == "" {
		errs.Add("displayName", "is required: give the webhook a human-readable name")
	} else if err := CheckText(s.DisplayName, DisplayNameMaxLen); err != nil {
		errs.Add("displayName", err.Error())
	}
	if s.Name != "" {
		if err := CheckHookName(s.Name); err != nil {
			errs.Add("name", err.Error())
		}
	}
	if err := CheckSecret(s.Secret); err != nil {
		errs.Add("secret", err.Error())
	}
	format := s.Format
	if format == "" {
		format = FormatDefault
	}
	if !format.Valid() {
		errs.Add("format", fmt.Sprintf("unknown format %s; valid formats are %s", Quote(string(s.Format)), joinQuoted(Formats())))
	}
	kind := s.Scope.Kind()
	if format == FormatPulumiDeployments {
		if kind == ScopeOrganization {
			errs.Add("format", "pulumi_deployments webhooks must belong to a stack or an environment: set projectName with stackName or environmentName")
		}
		if _, _, err := ParseDeploymentTarget(s.PayloadURL); err != nil {
			errs.Add("payloadUrl", err.Error())
		}
	} else if format.Valid() {
		if err := checkHTTPURL(s.PayloadURL); err != nil {
			errs.Add("payloadUrl", err.Error())
		}
	}
	if len(s.Filters) > ListMaxLen {
		errs.Add("filters", fmt.Sprintf("has %d entries: list at most %d (there are %d filters, each needed at most once)", len(s.Filters), ListMaxLen, len(filters)))
	}
	seenF := map[Filter]bool{}
	for i, f := range s.Filters[:min(len(s.Filters), ListMaxLen)] {
		field := fmt.Sprintf("filters[%d]", i)
		_, parseErr := ParseFilter(string(f))
		switch {
		case parseErr != nil:
			errs.Add(field, parseErr.Error())
		case seenF[f]:
			advice.Add(field, fmt.Sprintf("%q is listed twice: remove the duplicate, which changes nothing", string(f)))
		case !f.ReachesScope(kind) && scopeErrs == nil:
			advice.Add(field, filterScopeFix(f, kind))
		}
		seenF[f] = true
	}
	if len(s.Groups) > ListMaxLen {
		errs.Add("groups", fmt.Sprintf("has %d entries: list at most %d (there are %d groups, each needed at most once)", len(s.Groups), ListMaxLen, len(groupKinds)))
	}
	seenG := map[Group]bool{}
	for i, g := range s.Groups[:min(len(s.Groups), ListMaxLen)] {
		field := fmt.Sprintf("groups[%d]", i)
		switch {
		case !g.Valid():
			errs.Add(field, fmt.Sprintf("unknown group %s; valid groups are %s", Quote(string(g)), joinQuoted(Groups())))
		case seenG[g]:
			advice.Add(field, fmt.Sprintf("%q is listed twice: remove the duplicate, which changes nothing", string(g)))
		}
		seenG[g] = true
	}
	return errs, advice
}

func filterScopeFix(f Filter, k ScopeKind) string {
	switch {
	case f.OrgOnly():
		return fmt.Sprintf("%q fires for organization webhooks only, so this webhook never receives it: remove it, or move the webhook to the organization by removing projectName, stackName and environmentName", string(f))
	case f.Subject() == ScopeEnvironment:
		return fmt.Sprintf("%q is an environment event and never reaches %s webhook: remove it, or attach the webhook to an environment or the organization", string(f), withArticle(k))
	default:
		return fmt.Sprintf("%q is a stack event and never reaches %s webhook: remove it, or attach the webhook to a stack or the organization", string(f), withArticle(k))
	}
}

// withArticle puts "a" or "an" before a scope kind: "a stack", "an environment".
func withArticle(k ScopeKind) string {
	if strings.ContainsAny(string(k)[:min(1, len(k))], "aeiou") {
		return "an " + string(k)
	}
	return "a " + string(k)
}

// checkHTTPURL checks the payload URL of a new or changed webhook: ParseHTTPURL's rules, and
// also at most PayloadURLMaxLen bytes, no invisible characters, no user credentials and no
// empty port.
func checkHTTPURL(raw string) error {
	if raw == "" {
		return errors.New("is required: give the absolute http:// or https:// URL that receives deliveries")
	}
	if len(raw) > PayloadURLMaxLen {
		return fmt.Errorf("is %d bytes long: use a URL of at most %d bytes", len(raw), PayloadURLMaxLen)
	}
	if HasUnsafeRunes(raw) {
		return errors.New("contains a control, zero-width or text-direction character: percent-encode it or remove it")
	}
	u, err := ParseHTTPURL(raw)
	if err != nil {
		var pe *urlError
		if errors.As(err, &pe) && pe.quoteURL {
			return fmt.Errorf("%s %w", Quote(redactURL(raw)), err)
		}
		return err
	}
	if u.User != nil {
		return fmt.Errorf("the URL carries user credentials: remove them and use the webhook secret to authenticate deliveries")
	}
	if u.Port() == "" && strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%s has an empty port: give a port from 1 to 65535, or remove the colon", Quote(redactURL(raw)))
	}
	return nil
}

// urlError is a reason ParseHTTPURL refuses a URL. Its message never holds the URL, whose
// path or user information can carry credentials; quoteURL says the message reads best after
// the (redacted) URL, as Spec.Validate writes it.
type urlError struct {
	msg      string
	quoteURL bool
}

func (e *urlError) Error() string { return e.msg }

// ParseHTTPURL parses the URL a webhook's deliveries go to: an absolute http:// or https://
// URL with a host and, when it has one, a port from 1 to 65535. Spec.Validate adds what a new
// webhook's URL must also be (checkHTTPURL); the sender parses a stored webhook's URL with it
// before every attempt. The error says what is wrong and the fix, never the URL itself; the
// caller names the URL.
func ParseHTTPURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, &urlError{msg: "is empty: give the absolute http:// or https:// URL that receives deliveries"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &urlError{msg: "is not a valid URL: give an absolute http:// or https:// URL", quoteURL: true}
	}
	const fix = "include the scheme and host, e.g. https://example.com/hook"
	switch {
	case u.Scheme == "":
		return nil, &urlError{msg: "is not an absolute http:// or https:// URL: it has no scheme; " + fix, quoteURL: true}
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &urlError{msg: fmt.Sprintf("is not an absolute http:// or https:// URL: the scheme %s is not supported; %s", Quote(u.Scheme), fix), quoteURL: true}
	case u.Hostname() == "":
		return nil, &urlError{msg: "is not an absolute http:// or https:// URL: it has no host; " + fix, quoteURL: true}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, &urlError{msg: fmt.Sprintf("has the port %s, which is not a TCP port: give a port from 1 to 65535, or none for the scheme's default", Quote(p))}
		}
	}
	return u, nil
}

// ParseDeploymentTarget splits the payloadUrl of a pulumi_deployments hook, "project/stack".
func ParseDeploymentTarget(payloadURL string) (project, stack string, err error) {
	parts := strings.Split(payloadURL, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" || strings.Contains(payloadURL, ":") ||
		strings.IndexFunc(payloadURL, unicode.IsSpace) >= 0 {
		return "", "", fmt.Errorf("%s is not a deployment target: a pulumi_deployments webhook's payloadUrl names the stack to deploy as project/stack, in the webhook's organization", Quote(redactURL(payloadURL)))
	}
	for i, what := range []string{"project", "stack"} {
		if err := CheckScopeName(parts[i]); err != nil {
			return "", "", fmt.Errorf("names the stack to deploy as project/stack, and its %s name %w", what, err)
		}
	}
	return parts[0], parts[1], nil
}

// redactURL hides the user information of a URL (everything before the "@" of its
// authority, or of the text before the first slash when there is no "//") so credentials
// never reach an error message. It works on unparsable URLs too.
func redactURL(raw string) string {
	start := 0
	if i := strings.Index(raw, "//"); i >= 0 {
		start = i + 2
	}
	end := len(raw)
	if i := strings.IndexAny(raw[start:], "/?#"); i >= 0 {
		end = start + i
	}
	at := strings.LastIndex(raw[start:end], "@")
	if at < 0 {
		return raw
	}
	return raw[:start] + "REDACTED" + raw[start+at:]
}

// EffectiveGroups returns the groups a spec subscribes to: its own, or when it names neither
// filters nor groups, the scope's default groups.
func (s Spec) EffectiveGroups() []Group {
	if len(s.Filters) == 0 && len(s.Groups) == 0 {
		return DefaultGroups(s.Scope.Kind())
	}
	return s.Groups
}

// FieldError is one problem with one field of a request.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// FieldErrors is every problem found with a request; it is an error when not empty.
type FieldErrors []FieldError

// Add records a problem with field.
func (es *FieldErrors) Add(field, message string) {
	*es = append(*es, FieldError{Field: field, Message: message})
}

// Err returns es as an error, or nil when it is empty.
func (es FieldErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Error joins the first FieldErrorsMax problems and counts the rest.
func (es FieldErrors) Error() string {
	shown, more := es.Reported()
	msgs := make([]string, len(shown), len(shown)+1)
	for i, e := range shown {
		msgs[i] = e.Error()
	}
	if more > 0 {
		msgs = append(msgs, fmt.Sprintf("and %d more problems", more))
	}
	return strings.Join(msgs, "; ")
}

// Reported returns the problems to report one by one (at most FieldErrorsMax) and how many
// more there are, so that an error never grows with the input.
func (es FieldErrors) Reported() (shown FieldErrors, more int) {
	if len(es) <= FieldErrorsMax {
		return es, 0
	}
	return es[:FieldErrorsMax], len(es) - FieldErrorsMax
}
