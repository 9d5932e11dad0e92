// Package render turns events into request bodies. Payload builds the raw JSON payload of an
// event in the shape Pulumi Cloud sends, with caller overrides merged in; Render turns a raw
// payload into the body of one format: raw (unchanged), a Slack incoming-webhook message, or
// a Microsoft Teams workflow message carrying an Adaptive Card.
//
// Rendering reads the payload leniently: a missing field is left out, a field of an
// unexpected type is shown as it is, and nothing in a payload makes it panic.
package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Input is what Render needs: the event, its raw payload, and the console for fallback links.
type Input struct {
	Filter  webhook.Filter
	Subject webhook.Scope
	// Payload is the raw-format body, as Payload built it.
	Payload []byte
	// ConsoleURL is the base of links the payload lacks; ConsoleURLDefault when empty.
	ConsoleURL string
}

// Render returns the request body of a delivery in the given format. The raw format returns
// the payload unchanged. pulumi_deployments hooks are not delivered over HTTP, so Render
// refuses them, as it refuses unknown formats.
func Render(format webhook.Format, in Input) ([]byte, error) {
	switch format {
	case webhook.FormatRaw:
		return in.Payload, nil
	case webhook.FormatSlack, webhook.FormatMicrosoftTeams:
	case webhook.FormatPulumiDeployments:
		return nil, fmt.Errorf("render: format %q is not delivered over HTTP: matching events create deployment requests instead", string(format))
	default:
		return nil, fmt.Errorf("render: unknown format %q; the formats rendered to HTTP bodies are %q, %q and %q",
			string(format), webhook.FormatRaw, webhook.FormatSlack, webhook.FormatMicrosoftTeams)
	}
	if in.Filter != webhook.Ping && !in.Filter.Valid() {
		return nil, fmt.Errorf("render: unknown filter %q: give one of the %d event filters or %q", string(in.Filter), len(webhook.AllFilters()), webhook.Ping)
	}
	fields, err := decodePayload(in.Payload)
	if err != nil {
		return nil, fmt.Errorf("render: payload %w", err)
	}
	sum := summarize(in, fields)
	var body any
	if format == webhook.FormatSlack {
		body = slackMessage(sum)
	} else {
		body = teamsMessage(sum)
	}
	b, err := marshal(body)
	if err != nil {
		return nil, fmt.Errorf("render: encoding %s body: %w", format, err)
	}
	return b, nil
}

func decodePayload(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("is not valid JSON: unexpected data after the payload")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a JSON object, not %s", describe(v))
	}
	return m, nil
}

// tone is how good or bad the news is; formats map it to emoji and colours.
type tone int

const (
	toneNeutral tone = iota
	toneGood
	toneBad
	toneWarn
	toneProgress
)

// fact is one labelled value shown in a message.
type fact struct{ label, value string }

// summary is what every chat format says about an event.
type summary struct {
	filter       webhook.Filter
	title        string // "Update succeeded"
	tone         tone
	subjectLabel string // Stack, Environment, Organization
	subject      string // acme/website/prod
	link         string // empty when there is no usable link
	linkText     string
	facts        []fact
}

// Limits that keep messages within what Slack and Teams accept.
const (
	valueMaxRunes   = 500
	subjectMaxRunes = 300
	linkMaxBytes    = 3000
)

func summarize(in Input, p map[string]any) summary {
	s := summary{filter: in.Filter, title: title(in.Filter), tone: toneOf(in.Filter)}

	org := firstString(p, "organization", "githubLogin")
	if org == "" {
		org = firstString(p, "organization", "name")
	}
	if org == "" {
		org = in.Subject.Org
	}
	project := orDefault(str(p["projectName"]), in.Subject.Project)
	stack := orDefault(str(p["stackName"]), in.Subject.Stack)
	env := orDefault(str(p["environmentName"]), in.Subject.Environment)

	subjectKind := in.Filter.Subject()
	if in.Filter == webhook.Ping {
		subjectKind = webhook.Scope{Org: org, Project: project, Stack: stack, Environment: env}.Kind()
	}
	console, err := consoleBase(in.ConsoleURL)
	if err != nil {
		console = ""
	}
	// The fallback link needs every name it is built from.
	var fallback string
	switch subjectKind {
	case webhook.ScopeStack:
		s.subjectLabel, s.subject, s.linkText = "Stack", joinNames(org, project, stack), "View stack"
		if org != "" && project != "" && stack != "" {
			fallback = stackURL(console, org, project, stack)
		}
	case webhook.ScopeEnvironment:
		s.subjectLabel, s.subject, s.linkText = "Environment", joinNames(org, project, env), "View environment"
		if org != "" && project != "" && env != "" {
			fallback = environmentURL(console, org, project, env)
		}
	default:
		s.subjectLabel, s.subject, s.linkText = "Organization", org, "View organization"
		if org != "" {
			fallback = join(console, org)
		}
	}
	s.subject = truncate(orDefault(s.subject, "unknown"), subjectMaxRunes)

	for _, l := range []struct{ key, text string }{
		{"updateUrl", "View update"}, {"deploymentUrl", "View deployment"}, {"environmentUrl", "View environment"},
	} {
		if u := str(p[l.key]); usableLink(u) {
			s.link, s.linkText = u, l.text
			if l.key == "updateUrl" && (in.Filter.Kind() == webhook.KindStackPreview || p["isPreview"] == true) {
				s.linkText = "View preview"
			}
			break
		}
	}
	if s.link == "" && console != "" && usableLink(fallback) {
		s.link = fallback
	}
	if s.link == "" {
		s.linkText = ""
	}

	operationKey := "operation"
	if k := in.Filter.Kind(); k == webhook.KindStackUpdate || k == webhook.KindStackPreview {
		operationKey = "kind"
	}
	add := func(label string, v any) {
		if text := truncate(display(v), valueMaxRunes); text != "" {
			s.facts = append(s.facts, fact{label, text})
		}
	}
	add("Operation", p[operationKey])
	add("Action", p["action"])
	add("Result", p["result"])
	add("Status", p["status"])
	add("Drift detected", p["driftDetected"])
	add("Version", p["version"])
	add("Revision", p["revision"])
	add("Previous revision", p["previousRevision"])
	add("Tag", p["tagName"])
	add("Tag value", p["tagValue"])
	add("Previous value", p["previousTagValue"])
	if ref, ok := p["importedEnvironmentReference"].(map[string]any); ok {
		if name := joinNames(str(ref["projectName"]), str(ref["environmentName"])); name != "" {
			if rev := display(ref["revision"]); rev != "" {
				name += " (revision " + rev + ")"
			}
			add("Imported environment", name)
		}
	}
	if revs, ok := p["affectedRevisions"].([]any); ok && len(revs) > 0 {
		parts := make([]string, 0, len(revs))
		for _, r := range revs {
			parts = append(parts, display(r))
		}
		add("Affected revisions", strings.Join(parts, ", "))
	}
	add("Enforcement", p["enforcementLevel"])
	add("Policy pack", p["policyPack"])
	add("Policy", p["policyName"])
	add("Resource", p["resourceUrn"])
	if rc, ok := p["resourceChanges"]; ok {
		add("Resource changes", resourceChanges(rc))
	}
	add("User", user(p["user"]))
	add("Message", p["message"])
	return s
}

// title turns a filter into a heading: "update_succeeded" -> "Update succeeded".
func title(f webhook.Filter) string {
	t := strings.ReplaceAll(string(f), "_", " ")
	return strings.ToUpper(t[:1]) + t[1:]
}

func toneOf(f webhook.Filter) tone {
	name := string(f)
	switch {
	case strings.HasSuffix(name, "_succeeded"):
		return toneGood
	case strings.HasSuffix(name, "_failed"), f == webhook.PolicyViolationMandatory:
		return toneBad
	case f == webhook.DriftDetected, f == webhook.PolicyViolationAdvisory, strings.HasSuffix(name, "_deleted"), strings.HasSuffix(name, "_retracted"):
		return toneWarn
	case f == webhook.DeploymentQueued, f == webhook.DeploymentStarted:
		return toneProgress
	default:
		return toneNeutral
	}
}

// usableLink reports whether u is an absolute http(s) URL that chat formats can link to.
func usableLink(u string) bool {
	if u == "" || len(u) > linkMaxBytes || strings.ContainsAny(u, "<>|\"` ") {
		return false
	}
	for _, r := range u {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	parsed, err := url.Parse(u)
	return err == nil && (parsed.Scheme == "http" || parsed.Scheme == "https") && parsed.Host != ""
}

// firstString returns p[key][sub] when p[key] is an object and the value a string.
func firstString(p map[string]any, key, sub string) string {
	if m, ok := p[key].(map[string]any); ok {
		return str(m[sub])
	}
	return ""
}

// str returns v when it is a string.
func str(v any) string {
	s, _ := v.(string)
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func joinNames(names ...string) string {
	var kept []string
	for _, n := range names {
		if n != "" {
			kept = append(kept, n)
		}
	}
	return strings.Join(kept, "/")
}

// display renders any decoded JSON value as text; empty for null and empty strings.
func display(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(v)
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case json.Number:
		return string(v)
	default:
		b, err := marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
}

// resourceChanges renders {"update": 3, "delete": 1} as "delete: 1, update: 3", and an empty
// object as "none".
func resourceChanges(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+": "+display(m[k]))
	}
	return strings.Join(parts, ", ")
}

// user renders a user object as "Name (login)".
func user(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	name, login := strings.TrimSpace(str(m["name"])), strings.TrimSpace(str(m["githubLogin"]))
	switch {
	case name != "" && login != "" && name != login:
		return name + " (" + login + ")"
	case name != "":
		return name
	default:
		return login
	}
}

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
