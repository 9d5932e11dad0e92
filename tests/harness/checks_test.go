package harness

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/render"
)

// consoleURL is the server's default console base, which payload links start with.
const consoleURL = render.ConsoleURLDefault

// systemUser is the user of events no person caused (deployment_queued from a deployment hook).
const systemUser = "pulumi-webhooks"

// tagPattern finds a fired event's tag in a chat message.
var tagPattern = regexp.MustCompile(`hx-r\d+-e\d{3}`)

// userOverride is the payload override that puts an event's tag into its user, and so into
// every delivery of it, whatever the format.
func userOverride(tag string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"user": map[string]string{
		"name": tag, "githubLogin": tag, "avatarUrl": "https://example.com/" + tag + ".png",
	}})
	return b
}

// attribute says which event a delivery to hk is of: a fired event's tag, or the queued tag
// of a deployment_queued event a deployment hook caused. queued maps queued tags to subjects.
func attribute(hk hook, r *received, queued map[string]subject) (string, error) {
	if hk.format() == formatRaw {
		var p struct {
			User struct {
				Name string `json:"name"`
			} `json:"user"`
			Organization struct {
				Name string `json:"name"`
			} `json:"organization"`
			ProjectName string `json:"projectName"`
			StackName   string `json:"stackName"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			return "", fmt.Errorf("the body is not JSON: %w", err)
		}
		switch {
		case strings.HasPrefix(p.User.Name, "hx-"):
			return p.User.Name, nil
		case p.User.Name == systemUser:
			return queuedTag(subject{Org: p.Organization.Name, Project: p.ProjectName, Stack: p.StackName}), nil
		}
		return "", fmt.Errorf("the payload's user %q is neither an event tag nor %q", p.User.Name, systemUser)
	}
	body := string(r.Body)
	if tag := tagPattern.FindString(body); tag != "" {
		return tag, nil
	}
	var found []string
	for tag, s := range queued {
		if strings.Contains(body, s.String()) {
			found = append(found, tag)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return "", fmt.Errorf("the message names no event tag and %d queued deployment targets", len(found))
}

// checkRequest checks one delivery of ev to hk: headers, signatures and body.
func checkRequest(hk hook, ev event, secret string, r *received) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		add("Content-Type %q, want application/json", ct)
	}
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "pulumi-webhooks/") {
		add("User-Agent %q, want pulumi-webhooks/<version>", ua)
	}
	if r.deliveryID() == "" {
		add("no Pulumi-Webhook-ID header")
	}
	if kind := r.Header.Get("Pulumi-Webhook-Kind"); kind != filterKinds[ev.Filter] {
		add("Pulumi-Webhook-Kind %q, want %q (%s)", kind, filterKinds[ev.Filter], ev.Filter)
	}
	if err := checkStandardHeaders(r); err != nil {
		add("%v", err)
	}
	if secret != "" {
		if err := checkPulumiSignature(secret, r); err != nil {
			add("%v", err)
		}
		if err := checkStandardSignature(secret, r); err != nil {
			add("%v", err)
		}
	} else {
		for _, h := range []string{"Pulumi-Webhook-Signature", "webhook-signature"} {
			if r.Header.Get(h) != "" {
				add("a %s header although the hook has no secret", h)
			}
		}
	}
	if err := checkBody(hk.format(), ev, r.Body); err != nil {
		add("body: %v", err)
	}
	return errs
}

// The top-level fields of the payloads the Pulumi Cloud reference documents, exactly.
var referenceFields = map[string][]string{
	"stack":         {"action", "organization", "projectName", "stackName", "user"},
	"stack_update":  {"isPreview", "kind", "organization", "projectName", "resourceChanges", "result", "stackName", "updateUrl", "user"},
	"stack_preview": {"isPreview", "kind", "organization", "projectName", "resourceChanges", "result", "stackName", "updateUrl", "user"},
	"deployment":    {"deploymentUrl", "operation", "organization", "projectName", "stackName", "status", "user", "version"},
	// Pulumi's webhook documentation: a drift detection run reports driftDetected, driftRunId,
	// status, resourceChanges and referenceUrl; a remediation status, resourceChanges and
	// referenceUrl; both beside the stack's user, organization and names.
	"drift_detection":   {"driftDetected", "driftRunId", "organization", "projectName", "referenceUrl", "resourceChanges", "stackName", "status", "user"},
	"drift_remediation": {"organization", "projectName", "referenceUrl", "resourceChanges", "stackName", "status", "user"},
	// Pulumi's ESC webhook documentation: the environment payloads name the environment and
	// the facts of the event, beside the user and organization.
	"environment":                  {"action", "environmentName", "organization", "projectName", "user"},
	"environment_revision":         {"action", "environmentName", "organization", "projectName", "revision", "user"},
	"environment_revision_tag":     {"action", "environmentName", "organization", "projectName", "revision", "tagName", "user"},
	"environment_tag":              {"action", "environmentName", "organization", "projectName", "tagName", "user"},
	"imported_environment_changed": {"affectedRevisions", "environmentName", "importedEnvironmentReference", "organization", "projectName", "user"},
}

// title is how chat messages head an event: "update_succeeded" -> "Update succeeded".
func title(filter string) string {
	t := strings.ReplaceAll(filter, "_", " ")
	return strings.ToUpper(t[:1]) + t[1:]
}

// checkBody checks the body of a delivery of ev in format.
func checkBody(format string, ev event, body []byte) error {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	wantUser := ev.Tag
	if strings.HasPrefix(ev.Tag, "queued:") {
		wantUser = systemUser
	}
	switch format {
	case formatRaw:
		return checkRawBody(ev, wantUser, m)
	case formatSlack:
		text, _ := m["text"].(string)
		blocks, _ := m["blocks"].([]any)
		if len(m) != 2 || text == "" || len(blocks) == 0 {
			return fmt.Errorf("a Slack message has a text and blocks, got fields %v", slices.Sorted(maps.Keys(m)))
		}
		if !strings.Contains(text, title(ev.Filter)) || !strings.Contains(text, ev.Subject.String()) {
			return fmt.Errorf("the Slack text %q does not name %q and %s", text, title(ev.Filter), ev.Subject)
		}
		if first, _ := blocks[0].(map[string]any); first["type"] != "header" {
			return fmt.Errorf("the first Slack block is %v, want a header", first["type"])
		}
		if !strings.Contains(string(body), "`"+ev.Filter+"`") || !strings.Contains(string(body), wantUser) {
			return fmt.Errorf("the Slack message does not name the event %s and the user %s", ev.Filter, wantUser)
		}
	case formatTeams:
		atts, _ := m["attachments"].([]any)
		if m["type"] != "message" || len(atts) != 1 {
			return fmt.Errorf("a Teams message has type message and one attachment, got %v with %d", m["type"], len(atts))
		}
		att, _ := atts[0].(map[string]any)
		card, _ := att["content"].(map[string]any)
		cardBody, _ := card["body"].([]any)
		if att["contentType"] != "application/vnd.microsoft.card.adaptive" || card["type"] != "AdaptiveCard" || len(cardBody) == 0 {
			return fmt.Errorf("the Teams attachment is not a non-empty Adaptive Card: %v / %v", att["contentType"], card["type"])
		}
		fallback, _ := card["fallbackText"].(string)
		if !strings.Contains(fallback, title(ev.Filter)) || !strings.Contains(fallback, ev.Subject.String()) {
			return fmt.Errorf("the card's fallback text %q does not name %q and %s", fallback, title(ev.Filter), ev.Subject)
		}
		if !strings.Contains(string(body), wantUser) {
			return fmt.Errorf("the Teams card does not name the user %s", wantUser)
		}
	default:
		return fmt.Errorf("no delivery is expected in format %s", format)
	}
	return nil
}

// checkRawBody checks a raw payload against the reference shape of its kind and the facts of
// the event.
func checkRawBody(ev event, wantUser string, m map[string]any) error {
	kind := filterKinds[ev.Filter]
	keys := slices.Sorted(maps.Keys(m))
	if want, ok := referenceFields[kind]; ok {
		if !slices.Equal(keys, want) {
			return fmt.Errorf("a %s payload has the fields %v, want exactly %v", kind, keys, want)
		}
	} else {
		want := []string{"organization", "projectName", "user"}
		if ev.Subject.isEnv() {
			want = append(want, "environmentName")
		} else {
			want = append(want, "stackName", "operation", "status")
		}
		for _, k := range want {
			if _, ok := m[k]; !ok {
				return fmt.Errorf("a %s payload lacks %s (fields %v)", kind, k, keys)
			}
		}
	}
	var errs []string
	expectField := func(field string, want any) {
		if got := m[field]; got != want {
			errs = append(errs, fmt.Sprintf("%s = %v, want %v", field, got, want))
		}
	}
	user, _ := m["user"].(map[string]any)
	org, _ := m["organization"].(map[string]any)
	if user["name"] != wantUser {
		errs = append(errs, fmt.Sprintf("user.name = %v, want %s", user["name"], wantUser))
	}
	for _, obj := range []map[string]any{user, org} {
		if got := slices.Sorted(maps.Keys(obj)); !slices.Equal(got, []string{"avatarUrl", "githubLogin", "name"}) {
			errs = append(errs, fmt.Sprintf("user and organization have name, githubLogin and avatarUrl, got %v", got))
		}
	}
	if org["name"] != ev.Subject.Org {
		errs = append(errs, fmt.Sprintf("organization.name = %v, want %s", org["name"], ev.Subject.Org))
	}
	expectField("projectName", ev.Subject.Project)
	if ev.Subject.isEnv() {
		expectField("environmentName", ev.Subject.Env)
	} else {
		expectField("stackName", ev.Subject.Stack)
	}
	result := "succeeded"
	if strings.HasSuffix(ev.Filter, "_failed") {
		result = "failed"
	}
	stackURL := consoleURL + "/" + ev.Subject.Org + "/" + ev.Subject.Project + "/" + ev.Subject.Stack + "/"
	switch kind {
	case "stack":
		expectField("action", strings.TrimPrefix(ev.Filter, "stack_"))
	case "stack_update", "stack_preview":
		op, _, _ := strings.Cut(ev.Filter, "_")
		if kind == "stack_preview" {
			op = "update"
		}
		expectField("kind", op)
		expectField("result", result)
		expectField("isPreview", kind == "stack_preview")
		if u, _ := m["updateUrl"].(string); !strings.HasPrefix(u, stackURL) {
			errs = append(errs, fmt.Sprintf("updateUrl %q does not start with %s", u, stackURL))
		}
		if _, ok := m["resourceChanges"].(map[string]any); !ok {
			errs = append(errs, fmt.Sprintf("resourceChanges = %v, want an object", m["resourceChanges"]))
		}
	case "deployment":
		status := map[string]string{"deployment_queued": "queued", "deployment_started": "running",
			"deployment_succeeded": "succeeded", "deployment_failed": "failed"}[ev.Filter]
		expectField("status", status)
		if u, _ := m["deploymentUrl"].(string); !strings.HasPrefix(u, stackURL) {
			errs = append(errs, fmt.Sprintf("deploymentUrl %q does not start with %s", u, stackURL))
		}
		if _, ok := m["version"].(float64); !ok {
			errs = append(errs, fmt.Sprintf("version = %v, want a number", m["version"]))
		}
	case "drift_detection", "drift_remediation":
		expectField("status", result)
		if _, ok := m["resourceChanges"].(map[string]any); !ok {
			errs = append(errs, fmt.Sprintf("resourceChanges = %v, want an object", m["resourceChanges"]))
		}
		if kind == "drift_detection" {
			expectField("driftDetected", ev.Filter == "drift_detected")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// countDiff describes how got differs from want, by tag, shortly.
func countDiff(want, got map[string]int) string {
	var missing, extra []string
	for tag, n := range want {
		if g := got[tag]; g < n {
			missing = append(missing, fmt.Sprintf("%s x%d", tag, n-g))
		}
	}
	for tag, n := range got {
		if w := want[tag]; n > w {
			extra = append(extra, fmt.Sprintf("%s x%d", tag, n-w))
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(extra)
	short := func(s []string) []string {
		if len(s) > 12 {
			return append(s[:12:12], fmt.Sprintf("... %d more", len(s)-12))
		}
		return s
	}
	return fmt.Sprintf("missing %v; unexpected %v", short(missing), short(extra))
}
