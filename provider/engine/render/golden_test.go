package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden renders every event in every HTTP format and returns the body.
func golden(t *testing.T, f webhook.Filter, format webhook.Format) []byte {
	t.Helper()
	b := setup(t, f)
	out, err := Render(format, b.input(b.payload(t, "")))
	if err != nil {
		t.Fatalf("Render(%s, %s): %v", format, f, err)
	}
	return out
}

// TestGolden checks every filter (and ping) in every format against testdata/<format>/<filter>.json
// byte for byte. Run `go test ./provider/engine/render -update` to rewrite them.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, format := range httpFormats() {
		for _, f := range events() {
			t.Run(string(format)+"/"+string(f), func(t *testing.T) {
				t.Parallel()
				got := golden(t, f, format)
				if !json.Valid(got) {
					t.Fatalf("output is not valid JSON:\n%s", got)
				}
				file := filepath.Join("testdata", string(format), string(f)+".json")
				if *update {
					var pretty bytes.Buffer
					if err := json.Indent(&pretty, got, "", "  "); err != nil {
						t.Fatal(err)
					}
					pretty.WriteByte('\n')
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, pretty.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				stored, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				// Golden files are indented for review; bodies go out compact. Compacting
				// only drops the indentation, so this compares the body byte for byte.
				var want bytes.Buffer
				if err := json.Compact(&want, stored); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				if !bytes.Equal(got, want.Bytes()) {
					t.Errorf("%s differs from the output (run go test -update after checking the change)\ngot:  %s\nwant: %s", file, got, want.Bytes())
				}
			})
		}
	}
}

// TestGoldenFilesComplete fails on golden files no event produces, so stale ones do not linger.
func TestGoldenFilesComplete(t *testing.T) {
	t.Parallel()
	if *update {
		t.Skip("golden files are being rewritten")
	}
	for _, format := range httpFormats() {
		entries, err := os.ReadDir(filepath.Join("testdata", string(format)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, strings.TrimSuffix(e.Name(), ".json"))
		}
		var want []string
		for _, f := range events() {
			want = append(want, string(f))
		}
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("testdata/%s holds %v, want one file per event: %v", format, names, want)
		}
	}
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	default:
		return "null"
	}
}

// kindShapes lists the keys and JSON types every raw payload of a kind has, beyond user and
// organization. The kinds the reference documents are checked against its examples too.
var kindShapes = map[webhook.Kind]map[string]string{
	webhook.KindStack: {"action": "string", "projectName": "string", "stackName": "string"},
	webhook.KindStackUpdate: {"projectName": "string", "stackName": "string", "updateUrl": "string", "kind": "string",
		"result": "string", "resourceChanges": "object", "isPreview": "boolean"},
	webhook.KindStackPreview: {"projectName": "string", "stackName": "string", "updateUrl": "string", "kind": "string",
		"result": "string", "resourceChanges": "object", "isPreview": "boolean"},
	webhook.KindDeployment: {"projectName": "string", "stackName": "string", "deploymentUrl": "string", "version": "number",
		"operation": "string", "status": "string"},
	webhook.KindDriftDetection: {"projectName": "string", "stackName": "string", "driftDetected": "boolean", "driftRunId": "string",
		"status": "string", "resourceChanges": "object", "referenceUrl": "string"},
	webhook.KindDriftRemediation: {"projectName": "string", "stackName": "string", "status": "string",
		"resourceChanges": "object", "referenceUrl": "string"},
	webhook.KindEnvironment: {"projectName": "string", "environmentName": "string", "action": "string"},
	webhook.KindEnvironmentRevision: {"projectName": "string", "environmentName": "string", "action": "string",
		"revision": "number"},
	webhook.KindEnvironmentRevisionTag: {"projectName": "string", "environmentName": "string", "tagName": "string",
		"action": "string", "revision": "number"},
	webhook.KindEnvironmentTag: {"projectName": "string", "environmentName": "string", "tagName": "string",
		"action": "string"},
	webhook.KindImportedEnvironmentChanged: {"projectName": "string", "environmentName": "string",
		"affectedRevisions": "array", "importedEnvironmentReference": "object"},
	webhook.KindEnvironmentRotation: {"projectName": "string", "environmentName": "string", "action": "string",
		"result": "string"},
	webhook.KindPolicyViolation: {"projectName": "string", "stackName": "string", "enforcementLevel": "string",
		"policyPack": "string", "policyName": "string", "resourceUrn": "string", "message": "string"},
	webhook.KindPing: {"timestamp": "number", "message": "string"},
}

// filterExtras are keys only some filters of a kind carry.
var filterExtras = map[webhook.Filter]map[string]string{
	webhook.EnvironmentRotationSucceeded: {"revision": "number"},
}

// documentedExample is, for the kinds Pulumi documents outside the reference page (the ESC
// webhooks page, https://www.pulumi.com/docs/esc/environments/webhooks/, and the ping of the
// REST API reference, https://www.pulumi.com/docs/reference/cloud-rest-api/webhooks/), an
// example with the documented keys in the documented order (values of our own). The reference
// facts of package refdocs hold only the reference page's four examples.
var documentedExample = map[webhook.Kind]string{
	webhook.KindEnvironment: `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","action":"created"}`,
	webhook.KindEnvironmentRevision: `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","action":"created","revision":5}`,
	webhook.KindEnvironmentRevisionTag: `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","tagName":"t","action":"created","revision":5}`,
	webhook.KindEnvironmentTag: `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","tagName":"t","action":"created"}`,
	webhook.KindImportedEnvironmentChanged: `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","affectedRevisions":[2,5],"importedEnvironmentReference":{"projectName":"p","environmentName":"b","revision":10}}`,
	webhook.KindPing: `{"timestamp":1632735487,"message":"m"}`,
}

// referenceExample names the documentation example of a kind, when there is one.
var referenceExample = map[webhook.Kind]string{
	webhook.KindStack:        "stack_created",
	webhook.KindStackUpdate:  "stack_update",
	webhook.KindStackPreview: "stack_preview",
	webhook.KindDeployment:   "deployment",
}

// sameShape fails unless got has exactly want's keys, in want's order, with the same JSON
// types, recursing into objects other than free-form maps (resourceChanges).
func sameShape(t *testing.T, where string, got, want []byte) {
	t.Helper()
	gotKeys, gotTypes := shape(t, got)
	wantKeys, wantTypes := shape(t, want)
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("%s: keys %v, reference has %v", where, gotKeys, wantKeys)
	}
	for k, typ := range wantTypes {
		if gotTypes[k] != typ {
			t.Errorf("%s: %s is %s, reference has %s", where, k, gotTypes[k], typ)
		}
	}
}

// shape lists an object's keys in order (nested ones as parent.child) and their JSON types.
func shape(t *testing.T, b []byte) ([]string, map[string]string) {
	t.Helper()
	o, err := parseObject(b)
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var keys []string
	types := map[string]string{}
	for _, m := range o {
		var v any
		if err := json.Unmarshal(m.value, &v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, m.key)
		types[m.key] = jsonType(v)
		if m.key == "resourceChanges" || jsonType(v) != "object" {
			continue
		}
		subKeys, subTypes := shape(t, m.value)
		for _, k := range subKeys {
			keys = append(keys, m.key+"."+k)
			types[m.key+"."+k] = subTypes[k]
		}
	}
	return keys, types
}

// TestRawMatchesReferenceShapes checks every raw golden: user and organization objects, the
// kind's keys with their JSON types and nothing else, and for the kinds the reference shows,
// the same keys in the same order with the same types as its example.
func TestRawMatchesReferenceShapes(t *testing.T) {
	t.Parallel()
	for _, f := range events() {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			raw := golden(t, f, webhook.FormatRaw)
			m := decode(t, raw)
			want := map[string]string{"user": "object", "organization": "object"}
			if f == webhook.Ping {
				want = map[string]string{}
			}
			for k, v := range kindShapes[f.Kind()] {
				want[k] = v
			}
			for k, v := range filterExtras[f] {
				want[k] = v
			}
			for k, typ := range want {
				if got := jsonType(m[k]); got != typ {
					t.Errorf("%s is %s, want %s", k, got, typ)
				}
			}
			for k := range m {
				if _, ok := want[k]; !ok {
					t.Errorf("unexpected key %q", k)
				}
			}
			for _, who := range []string{"user", "organization"} {
				if f == webhook.Ping {
					break
				}
				for _, k := range []string{"name", "githubLogin", "avatarUrl"} {
					if got := jsonType(path(m, who, k)); got != "string" {
						t.Errorf("%s.%s is %s, want string", who, k, got)
					}
				}
			}
			if name, ok := referenceExample[f.Kind()]; ok {
				sameShape(t, name, raw, readReference(t, name))
			}
			if ex, ok := documentedExample[f.Kind()]; ok {
				sameShape(t, string(f.Kind()), raw, []byte(ex))
			}
		})
	}
}

// TestReferenceExamplesReproduced builds the documentation's examples from their facts: the
// output must equal the example byte for byte (after compaction), key order included. The
// deployment example also shows the link following the version.
func TestReferenceExamplesReproduced(t *testing.T) {
	t.Parallel()
	const people = `"user":{"name":"Morty Smith","githubLogin":"morty","avatarUrl":"https://crazy-adventures.net/morty.png"},` +
		`"organization":{"name":"Crazy Adventures","githubLogin":"crazy-adventures","avatarUrl":"https://crazy-adventures.net/logo.png"}`
	const changes = `"resourceChanges":{"update":3,"delete":1,"update-replace":2}`
	subject := webhook.Scope{Org: "crazy-adventures", Project: "website", Stack: "website-prod"}
	for _, tc := range []struct {
		example   string
		filter    webhook.Filter
		overrides string
	}{
		{"stack_created", webhook.StackCreated, `{` + people + `}`},
		{"stack_update", webhook.RefreshSucceeded, `{` + people + `,"updateUrl":"https://app.pulumi.com/crazy-adventures/website/website-prod/updates/42",` + changes + `}`},
		{"stack_preview", webhook.PreviewFailed, `{` + people + `,"updateUrl":"https://app.pulumi.com/crazy-adventures/website/website-prod/previews/11bf162b-d9d5-4715-8f88-20dcd0e0b167",` + changes + `}`},
		{"deployment", webhook.DeploymentStarted, `{` + people + `,"version":127}`},
	} {
		t.Run(tc.example, func(t *testing.T) {
			t.Parallel()
			got, err := Payload(PayloadParams{
				EventID: testEventID, Filter: tc.filter, Subject: subject, Overrides: json.RawMessage(tc.overrides),
				ConsoleURL: "https://app.pulumi.com/", Now: testNow,
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := readReference(t, tc.example); !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// expectedLink is the link a chat message must carry for a golden event.
func expectedLink(t *testing.T, f webhook.Filter) (url, text string) {
	t.Helper()
	m := decode(t, golden(t, f, webhook.FormatRaw))
	switch {
	case f.Kind() == webhook.KindStackPreview:
		return m["updateUrl"].(string), "View preview"
	case m["updateUrl"] != nil:
		return m["updateUrl"].(string), "View update"
	case m["deploymentUrl"] != nil:
		return m["deploymentUrl"].(string), "View deployment"
	case f.Subject() == webhook.ScopeEnvironment:
		// Environment payloads carry no link: the message links the environment by its names.
		return testConsole + "/acme/esc/platform/production", "View environment"
	case f == webhook.Ping:
		return testConsole + "/acme", "View organization"
	default:
		return testConsole + "/acme/website/prod", "View stack"
	}
}

// slackTexts collects every text object of a Slack body, to check Slack's rules on them.
func slackTexts(v any, out *[]map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		if typ, ok := v["type"].(string); ok && (typ == "plain_text" || typ == "mrkdwn") {
			if _, ok := v["text"]; ok {
				*out = append(*out, v)
			}
		}
		for _, x := range v {
			slackTexts(x, out)
		}
	case []any:
		for _, x := range v {
			slackTexts(x, out)
		}
	}
}

// checkSlack validates a Slack body: text fallback, blocks with a header first, non-empty
// text objects within Slack's limits, at most ten fields per section. It returns the body.
func checkSlack(t *testing.T, out []byte) map[string]any {
	t.Helper()
	m := decode(t, out)
	if text, _ := m["text"].(string); strings.TrimSpace(text) == "" {
		t.Errorf("text fallback missing: %s", out)
	}
	blocks, _ := m["blocks"].([]any)
	if len(blocks) == 0 {
		t.Fatalf("blocks missing: %s", out)
	}
	if path(blocks, 0, "type") != "header" || path(blocks, 0, "text", "type") != "plain_text" {
		t.Errorf("first block is not a plain_text header: %v", blocks[0])
	}
	if h, _ := path(blocks, 0, "text", "text").(string); utf8.RuneCountInString(h) > slackHeaderMaxRunes {
		t.Errorf("header longer than %d characters", slackHeaderMaxRunes)
	}
	for i := range blocks {
		typ, _ := path(blocks, i, "type").(string)
		if !slices.Contains([]string{"header", "section", "actions", "context"}, typ) {
			t.Errorf("block %d has type %q", i, typ)
		}
		if fields, _ := path(blocks, i, "fields").([]any); len(fields) > slackFieldsMax {
			t.Errorf("block %d has %d fields, Slack allows %d", i, len(fields), slackFieldsMax)
		}
	}
	var texts []map[string]any
	slackTexts(blocks, &texts)
	for _, tx := range texts {
		s, _ := tx["text"].(string)
		if strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > 3000 {
			t.Errorf("text object with %d characters: %v", utf8.RuneCountInString(s), tx)
		}
	}
	return m
}

// slackButton returns the URL and label of the body's link button, if any.
func slackButton(m map[string]any) (url, text string, ok bool) {
	blocks, _ := m["blocks"].([]any)
	for i := range blocks {
		if path(blocks, i, "type") == "actions" && path(blocks, i, "elements", 0, "type") == "button" {
			url, _ = path(blocks, i, "elements", 0, "url").(string)
			text, _ = path(blocks, i, "elements", 0, "text", "text").(string)
			return url, text, true
		}
	}
	return "", "", false
}

func TestSlackGoldens(t *testing.T) {
	t.Parallel()
	for _, f := range events() {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			m := checkSlack(t, golden(t, f, webhook.FormatSlack))
			heading, _ := path(m, "blocks", 0, "text", "text").(string)
			if !strings.Contains(heading, title(f)) {
				t.Errorf("header %q does not say %q", heading, title(f))
			}
			subject := subjectFor(f).String()
			if text, _ := m["text"].(string); !strings.Contains(text, subject) || !strings.Contains(text, title(f)) {
				t.Errorf("text %q does not name the event and %s", text, subject)
			}
			wantURL, wantText := expectedLink(t, f)
			url, text, ok := slackButton(m)
			if !ok || url != wantURL || text != wantText {
				t.Errorf("button (%q, %q, %v), want (%q, %q)", url, text, ok, wantURL, wantText)
			}
			section, _ := path(m, "blocks", 1, "text", "text").(string)
			if !strings.Contains(section, "<"+wantURL+"|"+subject+">") {
				t.Errorf("section %q does not link %s to %s", section, subject, wantURL)
			}
			body := string(golden(t, f, webhook.FormatSlack))
			if f != webhook.Ping && !strings.Contains(body, "*User*\\npulumi-webhooks") {
				t.Errorf("no user field in %s", body)
			}
		})
	}
}

// checkTeams validates a Teams workflow body and returns its Adaptive Card.
func checkTeams(t *testing.T, out []byte) map[string]any {
	t.Helper()
	m := decode(t, out)
	if m["type"] != "message" {
		t.Errorf("type %v, want message", m["type"])
	}
	if a, _ := m["attachments"].([]any); len(a) != 1 {
		t.Fatalf("want one attachment: %s", out)
	}
	if ct := path(m, "attachments", 0, "contentType"); ct != "application/vnd.microsoft.card.adaptive" {
		t.Errorf("contentType %v", ct)
	}
	card, _ := path(m, "attachments", 0, "content").(map[string]any)
	if card["type"] != "AdaptiveCard" {
		t.Fatalf("content is not an AdaptiveCard: %s", out)
	}
	v, _ := card["version"].(string)
	if f, err := strconv.ParseFloat(v, 64); err != nil || f < 1.4 {
		t.Errorf("card version %q, want 1.4 or later", v)
	}
	body, _ := card["body"].([]any)
	if len(body) == 0 {
		t.Fatalf("card has no body: %s", out)
	}
	for i := range body {
		switch path(body, i, "type") {
		case "TextBlock":
			if s, _ := path(body, i, "text").(string); strings.TrimSpace(s) == "" {
				t.Errorf("empty TextBlock %d", i)
			}
		case "FactSet":
			facts, _ := path(body, i, "facts").([]any)
			for j := range facts {
				if jsonType(path(facts, j, "title")) != "string" || jsonType(path(facts, j, "value")) != "string" {
					t.Errorf("fact %d is not title/value strings: %v", j, facts[j])
				}
			}
		default:
			t.Errorf("body element %d has type %v", i, path(body, i, "type"))
		}
	}
	return card
}

// teamsOpenURL returns the first Action.OpenUrl of a card.
func teamsOpenURL(card map[string]any) (url, title string, ok bool) {
	actions, _ := card["actions"].([]any)
	for i := range actions {
		if path(actions, i, "type") == "Action.OpenUrl" {
			url, _ = path(actions, i, "url").(string)
			title, _ = path(actions, i, "title").(string)
			return url, title, true
		}
	}
	return "", "", false
}

// factValue returns the value of the fact with the given title, or "".
func factValue(card map[string]any, title string) string {
	body, _ := card["body"].([]any)
	for i := range body {
		facts, _ := path(body, i, "facts").([]any)
		for j := range facts {
			if path(facts, j, "title") == title {
				v, _ := path(facts, j, "value").(string)
				return v
			}
		}
	}
	return ""
}

func TestTeamsGoldens(t *testing.T) {
	t.Parallel()
	for _, f := range events() {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			card := checkTeams(t, golden(t, f, webhook.FormatMicrosoftTeams))
			if s, _ := path(card, "body", 0, "text").(string); s != title(f) {
				t.Errorf("title %q, want %q", s, title(f))
			}
			if s, _ := path(card, "body", 1, "text").(string); !strings.Contains(s, subjectFor(f).String()) {
				t.Errorf("subject line %q does not name %s", s, subjectFor(f))
			}
			wantURL, wantText := expectedLink(t, f)
			if url, text, ok := teamsOpenURL(card); !ok || url != wantURL || text != wantText {
				t.Errorf("OpenUrl (%q, %q, %v), want (%q, %q)", url, text, ok, wantURL, wantText)
			}
			if f != webhook.Ping && factValue(card, "User") != "pulumi-webhooks" {
				t.Errorf("User fact %q", factValue(card, "User"))
			}
		})
	}
}
