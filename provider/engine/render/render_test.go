package render

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestRenderRawIsUnchanged(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.UpdateSucceeded)
	for _, payload := range [][]byte{
		b.payload(t, `{"extra": "<&>"}`),
		[]byte("not json at all"),
		[]byte(" {\"a\" : 1}\n"),
		nil,
	} {
		got, err := Render(webhook.FormatRaw, b.input(payload))
		if err != nil {
			t.Fatalf("raw %q: %v", payload, err)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("raw changed %q into %q", payload, got)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.UpdateSucceeded)
	good := b.payload(t, "")
	for _, tc := range []struct {
		name    string
		format  webhook.Format
		filter  webhook.Filter
		payload []byte
		parts   []string
	}{
		{"pulumi_deployments", webhook.FormatPulumiDeployments, webhook.UpdateSucceeded, good, []string{`"pulumi_deployments"`, "not delivered over HTTP", "deployment requests"}},
		{"unknown format", "xml", webhook.UpdateSucceeded, good, []string{`unknown format "xml"`, `"raw"`, `"slack"`, `"ms_teams"`}},
		{"empty format", "", webhook.UpdateSucceeded, good, []string{`unknown format ""`}},
		{"unknown filter slack", webhook.FormatSlack, "update_exploded", good, []string{`unknown filter "update_exploded"`}},
		{"unknown filter teams", webhook.FormatMicrosoftTeams, "", good, []string{`unknown filter ""`}},
		{"not JSON slack", webhook.FormatSlack, webhook.UpdateSucceeded, []byte(`{"a":`), []string{"payload is not valid JSON"}},
		{"empty teams", webhook.FormatMicrosoftTeams, webhook.UpdateSucceeded, nil, []string{"payload is not valid JSON"}},
		{"array slack", webhook.FormatSlack, webhook.UpdateSucceeded, []byte(`[1]`), []string{"must be a JSON object, not an array"}},
		{"string teams", webhook.FormatMicrosoftTeams, webhook.UpdateSucceeded, []byte(`"hi"`), []string{"not a string"}},
		{"null slack", webhook.FormatSlack, webhook.UpdateSucceeded, []byte(`null`), []string{"not null"}},
		{"trailing data", webhook.FormatSlack, webhook.UpdateSucceeded, []byte(`{} {}`), []string{"after the payload"}},
		{"trailing bracket", webhook.FormatMicrosoftTeams, webhook.UpdateSucceeded, []byte(`{}]`), []string{"after the payload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := b.input(tc.payload)
			in.Filter = tc.filter
			out, err := Render(tc.format, in)
			if err == nil {
				t.Fatalf("rendered %s, want an error", out)
			}
			for _, p := range tc.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not contain %q", err, p)
				}
			}
		})
	}
}

// renderBoth renders a payload to Slack and Teams, checks both bodies, and returns them.
func renderBoth(t *testing.T, in Input) (slack map[string]any, card map[string]any) {
	t.Helper()
	s, err := Render(webhook.FormatSlack, in)
	if err != nil {
		t.Fatalf("slack: %v", err)
	}
	m, err := Render(webhook.FormatMicrosoftTeams, in)
	if err != nil {
		t.Fatalf("ms_teams: %v", err)
	}
	return checkSlack(t, s), checkTeams(t, m)
}

// TestRenderOddPayloads feeds payloads with missing fields and wrong types: each renders what
// is there, with the subject and links falling back to the Input.
func TestRenderOddPayloads(t *testing.T) {
	t.Parallel()
	for _, f := range events() {
		t.Run(string(f)+"/empty object", func(t *testing.T) {
			t.Parallel()
			b := setup(t, f)
			slack, card := renderBoth(t, b.input([]byte(`{}`)))
			wantURL, _ := expectedLink(t, f)
			if f.Kind() == webhook.KindStackUpdate || f.Kind() == webhook.KindStackPreview ||
				f.Kind() == webhook.KindDeployment || f.Kind() == webhook.KindDriftDetection ||
				f.Kind() == webhook.KindDriftRemediation {
				wantURL = testConsole + "/acme/website/prod"
			} else if f.Subject() == webhook.ScopeEnvironment {
				wantURL = testConsole + "/acme/esc/platform/production"
			}
			if url, _, _ := slackButton(slack); url != wantURL {
				t.Errorf("slack link %q, want %q", url, wantURL)
			}
			if url, _, _ := teamsOpenURL(card); url != wantURL {
				t.Errorf("teams link %q, want %q", url, wantURL)
			}
		})
	}
	t.Run("wrong types", func(t *testing.T) {
		t.Parallel()
		b := setup(t, webhook.UpdateFailed)
		odd := `{"user": 5, "organization": "acme", "projectName": ["x"], "stackName": 7, "updateUrl": "javascript:alert(1)",
			"kind": {"a": 1}, "result": null, "resourceChanges": [1, 2], "isPreview": "no", "version": "v9"}`
		slack, card := renderBoth(t, b.input([]byte(odd)))
		if url, _, _ := slackButton(slack); url != testConsole+"/acme/website/prod" {
			t.Errorf("unsafe updateUrl not replaced by the stack page: %q", url)
		}
		if got := factValue(card, "Operation"); got != `{"a":1}` {
			t.Errorf("Operation fact %q", got)
		}
		if got := factValue(card, "Resource changes"); got != "[1,2]" {
			t.Errorf("Resource changes fact %q", got)
		}
		if got := factValue(card, "User"); got != "5" {
			t.Errorf("User fact %q", got)
		}
		if got := factValue(card, "Version"); got != "v9" {
			t.Errorf("Version fact %q", got)
		}
		if got := factValue(card, "Result"); got != "" {
			t.Errorf("null result rendered as %q", got)
		}
		if s, _ := path(card, "body", 1, "text").(string); s != "Stack: acme/website/prod" {
			t.Errorf("subject %q, want the Input's stack", s)
		}
	})
	t.Run("no names anywhere", func(t *testing.T) {
		t.Parallel()
		slack, card := renderBoth(t, Input{Filter: webhook.StackCreated, Payload: []byte(`{}`)})
		if _, _, ok := slackButton(slack); ok {
			t.Error("slack links nowhere in particular")
		}
		if _, _, ok := teamsOpenURL(card); ok {
			t.Error("teams links nowhere in particular")
		}
		if s, _ := path(card, "body", 1, "text").(string); s != "Stack: unknown" {
			t.Errorf("subject %q", s)
		}
	})
	t.Run("bad console URL", func(t *testing.T) {
		t.Parallel()
		b := setup(t, webhook.StackCreated)
		in := b.input([]byte(`{}`))
		in.ConsoleURL = "not a url"
		slack, card := renderBoth(t, in)
		if _, _, ok := slackButton(slack); ok {
			t.Error("slack button without a usable link")
		}
		if _, _, ok := teamsOpenURL(card); ok {
			t.Error("teams action without a usable link")
		}
	})
}

// TestRenderPrefersPayloadFacts checks the payload's names and user win over the Input.
func TestRenderPrefersPayloadFacts(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.DeploymentStarted)
	const people = `{"user":{"name":"Morty Smith","githubLogin":"morty"},"organization":{"name":"Crazy Adventures","githubLogin":"crazy-adventures"},` +
		`"stackName":"website-prod","version":127}`
	slack, card := renderBoth(t, b.input(b.payload(t, people)))
	if got := factValue(card, "User"); got != "Morty Smith (morty)" {
		t.Errorf("User fact %q", got)
	}
	if s, _ := path(card, "body", 1, "text").(string); s != "Stack: crazy-adventures/website/website-prod" {
		t.Errorf("subject %q", s)
	}
	want := testConsole + "/crazy-adventures/website/website-prod/deployments/127"
	if url, text, _ := slackButton(slack); url != want || text != "View deployment" {
		t.Errorf("button %q %q, want %q", url, text, want)
	}
	if got := factValue(card, "Version"); got != "127" {
		t.Errorf("Version %q", got)
	}
}

func TestRenderUserFact(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.StackCreated)
	for _, tc := range []struct{ user, want string }{
		{`{"name":"Morty Smith","githubLogin":"morty"}`, "Morty Smith (morty)"},
		{`{"name":"morty","githubLogin":"morty"}`, "morty"},
		{`{"githubLogin":"morty"}`, "morty"},
		{`{"name":"  "}`, ""},
		{`"someone"`, "someone"},
		{`true`, "yes"},
	} {
		_, card := renderBoth(t, b.input([]byte(`{"user":`+tc.user+`}`)))
		if got := factValue(card, "User"); got != tc.want {
			t.Errorf("user %s: fact %q, want %q", tc.user, got, tc.want)
		}
	}
}

func TestRenderResourceChanges(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.UpdateSucceeded)
	_, card := renderBoth(t, b.input(b.payload(t, `{"resourceChanges":{"update":3,"delete":1,"update-replace":2}}`)))
	if got := factValue(card, "Resource changes"); got != "delete: 1, update: 3, update-replace: 2" {
		t.Errorf("Resource changes %q", got)
	}
	_, card = renderBoth(t, b.input(b.payload(t, "")))
	if got := factValue(card, "Resource changes"); got != "none" {
		t.Errorf("empty changes rendered as %q", got)
	}
}

// TestRenderSlackEscapes checks text from a payload cannot inject Slack mentions or links.
func TestRenderSlackEscapes(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.UpdateFailed)
	payload := b.payload(t, `{"stackName": "<!channel>", "user": {"name": "a & <b>"}, "result": "<https://evil.example|click>"}`)
	out, err := Render(webhook.FormatSlack, b.input(payload))
	if err != nil {
		t.Fatal(err)
	}
	m := checkSlack(t, out)
	var texts []map[string]any
	slackTexts(m["blocks"], &texts)
	all := m["text"].(string)
	for _, tx := range texts {
		all += "\n" + tx["text"].(string)
	}
	for _, bad := range []string{"<!channel>", "<https://evil.example", "a & <b>"} {
		if strings.Contains(all, bad) {
			t.Errorf("unescaped %q in %s", bad, out)
		}
	}
	for _, good := range []string{"&lt;!channel&gt;", "a &amp; &lt;b&gt;", "&lt;https://evil.example|click&gt;"} {
		if !strings.Contains(all, good) {
			t.Errorf("missing %q in %s", good, out)
		}
	}
}

func TestRenderUnsafeLinksAreNotUsed(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.DeploymentQueued)
	for _, u := range []string{
		"https://x.example/a|b", "https://x.example/<a>", "https://x.example/a b", "ftp://x.example/",
		"https://", "/relative", "https://x.example/\u0007", "https://x.example/" + strings.Repeat("a", 3000),
	} {
		overrides, _ := json.Marshal(map[string]string{"deploymentUrl": u})
		slack, card := renderBoth(t, b.input(b.payload(t, string(overrides))))
		want := testConsole + "/acme/website/prod"
		if url, _, _ := slackButton(slack); url != want {
			t.Errorf("deploymentUrl %q: slack button %q, want the stack page", u, url)
		}
		if url, text, _ := teamsOpenURL(card); url != want || text != "View stack" {
			t.Errorf("deploymentUrl %q: teams action %q %q", u, url, text)
		}
	}
}

func TestRenderLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.EnvironmentTagUpdated)
	long := strings.Repeat("é", 4000)
	overrides, _ := json.Marshal(map[string]any{
		"environmentName": long, "tagName": long, "tagValue": long, "previousTagValue": long,
		"revision": 3, "previousRevision": 2, "result": "succeeded", "status": "ok", "operation": "x",
		"version": 1, "driftDetected": true, "importedEnvironmentName": "base", "message": "hi",
		"resourceChanges": map[string]int{"create": 1},
	})
	slack, card := renderBoth(t, b.input(b.payload(t, string(overrides))))
	sections := 0
	blocks, _ := slack["blocks"].([]any)
	for i := range blocks {
		if path(blocks, i, "fields") != nil {
			sections++
		}
	}
	if sections != 2 {
		t.Errorf("%d field sections, want 2 (more than ten facts)", sections)
	}
	if v := factValue(card, "Tag"); utf8.RuneCountInString(v) != valueMaxRunes || !strings.HasSuffix(v, "…") {
		t.Errorf("Tag fact has %d characters, want %d ending in an ellipsis", utf8.RuneCountInString(v), valueMaxRunes)
	}
	if s, _ := path(card, "body", 1, "text").(string); utf8.RuneCountInString(s) > subjectMaxRunes+len("Environment: ") {
		t.Errorf("subject line has %d characters", utf8.RuneCountInString(s))
	}
}

func TestRenderPingScopes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		subject webhook.Scope
		line    string
		link    string
	}{
		{orgScope, "Organization: acme", testConsole + "/acme"},
		{stackScope, "Stack: acme/website/prod", testConsole + "/acme/website/prod"},
		{envScope, "Environment: acme/platform/production", testConsole + "/acme/esc/platform/production"},
	} {
		b := setup(t, webhook.Ping)
		b.params.Subject = tc.subject
		slack, card := renderBoth(t, b.input(b.payload(t, "")))
		if s, _ := path(card, "body", 1, "text").(string); s != tc.line {
			t.Errorf("ping %s: subject %q, want %q", tc.subject, s, tc.line)
		}
		if url, _, _ := slackButton(slack); url != tc.link {
			t.Errorf("ping %s: link %q, want %q", tc.subject, url, tc.link)
		}
		if got := factValue(card, "Message"); got != webhook.PingMessage {
			t.Errorf("ping message %q", got)
		}
	}
}

func TestRenderTone(t *testing.T) {
	t.Parallel()
	for f, want := range map[webhook.Filter]string{
		webhook.UpdateSucceeded: "Good", webhook.PreviewFailed: "Attention", webhook.DriftDetected: "Warning",
		webhook.StackDeleted: "Warning", webhook.EnvironmentRevisionRetracted: "Warning",
		webhook.DeploymentQueued: "Accent", webhook.DeploymentStarted: "Accent",
		webhook.StackCreated: "Default", webhook.Ping: "Default",
		webhook.PolicyViolationMandatory: "Attention", webhook.PolicyViolationAdvisory: "Warning",
	} {
		card := checkTeams(t, golden(t, f, webhook.FormatMicrosoftTeams))
		if got := path(card, "body", 0, "color"); got != want {
			t.Errorf("%s: colour %v, want %s", f, got, want)
		}
	}
}
