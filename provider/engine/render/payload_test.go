package render

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestPayloadDefaults checks the facts each filter's generated payload states.
func TestPayloadDefaults(t *testing.T) {
	t.Parallel()
	want := map[webhook.Filter]map[string]any{
		webhook.StackCreated:                  {"action": "created"},
		webhook.StackDeleted:                  {"action": "deleted"},
		webhook.UpdateSucceeded:               {"kind": "update", "result": "succeeded", "isPreview": false},
		webhook.UpdateFailed:                  {"kind": "update", "result": "failed", "isPreview": false},
		webhook.PreviewSucceeded:              {"kind": "update", "result": "succeeded", "isPreview": true},
		webhook.PreviewFailed:                 {"kind": "update", "result": "failed", "isPreview": true},
		webhook.DestroySucceeded:              {"kind": "destroy", "result": "succeeded", "isPreview": false},
		webhook.DestroyFailed:                 {"kind": "destroy", "result": "failed", "isPreview": false},
		webhook.RefreshSucceeded:              {"kind": "refresh", "result": "succeeded", "isPreview": false},
		webhook.RefreshFailed:                 {"kind": "refresh", "result": "failed", "isPreview": false},
		webhook.DeploymentQueued:              {"operation": "update", "status": "queued", "version": json.Number("1")},
		webhook.DeploymentStarted:             {"operation": "update", "status": "running", "version": json.Number("1")},
		webhook.DeploymentSucceeded:           {"operation": "update", "status": "succeeded", "version": json.Number("1")},
		webhook.DeploymentFailed:              {"operation": "update", "status": "failed", "version": json.Number("1")},
		webhook.DriftDetected:                 {"status": "succeeded", "driftDetected": true},
		webhook.DriftDetectionSucceeded:       {"status": "succeeded", "driftDetected": false},
		webhook.DriftDetectionFailed:          {"status": "failed", "driftDetected": false},
		webhook.DriftRemediationSucceeded:     {"status": "succeeded"},
		webhook.DriftRemediationFailed:        {"status": "failed"},
		webhook.EnvironmentCreated:            {"action": "created"},
		webhook.EnvironmentDeleted:            {"action": "deleted"},
		webhook.EnvironmentRevisionCreated:    {"action": "created", "revision": json.Number("1")},
		webhook.EnvironmentRevisionRetracted:  {"action": "retracted", "revision": json.Number("1")},
		webhook.EnvironmentRevisionTagCreated: {"action": "created", "tagName": "stable", "revision": json.Number("1")},
		webhook.EnvironmentRevisionTagDeleted: {"action": "deleted", "tagName": "stable", "revision": json.Number("1")},
		webhook.EnvironmentRevisionTagUpdated: {"action": "updated", "tagName": "stable", "revision": json.Number("1")},
		webhook.EnvironmentTagCreated:         {"action": "created", "tagName": "owner"},
		webhook.EnvironmentTagDeleted:         {"action": "deleted", "tagName": "owner"},
		webhook.EnvironmentTagUpdated:         {"action": "updated", "tagName": "owner"},
		webhook.ImportedEnvironmentChanged: {"action": nil, "affectedRevisions": []any{json.Number("1")},
			"importedEnvironmentReference": map[string]any{"projectName": "platform", "environmentName": "common", "revision": json.Number("1")}},
		webhook.EnvironmentRotationSucceeded: {"action": "rotated", "result": "succeeded", "revision": json.Number("2")},
		webhook.EnvironmentRotationFailed:    {"action": "rotated", "result": "failed", "revision": nil},
		webhook.PolicyViolationMandatory:     {"enforcementLevel": "mandatory", "policyPack": "", "policyName": "", "resourceUrn": "", "message": ""},
		webhook.PolicyViolationAdvisory:      {"enforcementLevel": "advisory", "policyPack": "", "policyName": "", "resourceUrn": "", "message": ""},
		webhook.Ping:                         {"message": webhook.PingMessage, "timestamp": json.Number("1735787045")},
	}
	for _, f := range events() {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			b := setup(t, f)
			m := decode(t, b.payload(t, ""))
			facts, ok := want[f]
			if !ok {
				t.Fatalf("no expectations for %s", f)
			}
			for k, v := range facts {
				if !reflect.DeepEqual(m[k], v) {
					t.Errorf("%s = %#v, want %#v", k, m[k], v)
				}
			}
			if f == webhook.Ping {
				if len(m) != 2 {
					t.Errorf("ping has %d fields, want timestamp and message only: %v", len(m), m)
				}
				return
			}
			if got := path(m, "user", "name"); got != "pulumi-webhooks" {
				t.Errorf("user.name = %v", got)
			}
			if got := path(m, "user", "githubLogin"); got != "pulumi-webhooks" {
				t.Errorf("user.githubLogin = %v", got)
			}
			if got := path(m, "organization", "githubLogin"); got != "acme" {
				t.Errorf("organization.githubLogin = %v", got)
			}
			if got := path(m, "organization", "name"); got != "acme" {
				t.Errorf("organization.name = %v", got)
			}
			s := subjectFor(f)
			if m["projectName"] != s.Project {
				t.Errorf("projectName = %v, want %s", m["projectName"], s.Project)
			}
			switch f.Subject() {
			case webhook.ScopeStack:
				if m["stackName"] != s.Stack {
					t.Errorf("stackName = %v", m["stackName"])
				}
			case webhook.ScopeEnvironment:
				if m["environmentName"] != s.Environment {
					t.Errorf("environmentName = %v", m["environmentName"])
				}
			}
		})
	}
}

// TestPayloadLinks checks the generated links follow the reference URL layout.
func TestPayloadLinks(t *testing.T) {
	t.Parallel()
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, tc := range []struct {
		filter webhook.Filter
		key    string
		want   string // prefix; previews end in a UUID
	}{
		{webhook.UpdateSucceeded, "updateUrl", "https://app.pulumi.com/acme/website/prod/updates/1"},
		{webhook.DestroyFailed, "updateUrl", "https://app.pulumi.com/acme/website/prod/updates/1"},
		{webhook.PreviewSucceeded, "updateUrl", "https://app.pulumi.com/acme/website/prod/previews/"},
		{webhook.DeploymentQueued, "deploymentUrl", "https://app.pulumi.com/acme/website/prod/deployments/1"},
		{webhook.DriftRemediationFailed, "referenceUrl", "https://app.pulumi.com/acme/website/prod/drift"},
	} {
		t.Run(string(tc.filter), func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.filter)
			got, _ := decode(t, b.payload(t, ""))[tc.key].(string)
			if tc.filter.Kind() == webhook.KindStackPreview {
				id, ok := strings.CutPrefix(got, tc.want)
				if !ok || !uuid.MatchString(id) {
					t.Errorf("%s = %q, want %s<uuid>", tc.key, got, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

func TestPayloadPreviewIDFollowsEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.PreviewFailed)
	first := decode(t, b.payload(t, ""))["updateUrl"]
	again := decode(t, b.payload(t, ""))["updateUrl"]
	b.params.EventID = "evt-0002"
	other := decode(t, b.payload(t, ""))["updateUrl"]
	if first != again {
		t.Errorf("same event, different links: %v, %v", first, again)
	}
	if first == other {
		t.Errorf("different events share the preview link %v", first)
	}
}

func TestPayloadConsoleURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ console, want string }{
		{"", "https://app.pulumi.com/acme/website/prod/deployments/1"},
		{"https://pulumi.example.com/", "https://pulumi.example.com/acme/website/prod/deployments/1"},
		{"http://127.0.0.1:8080/console", "http://127.0.0.1:8080/console/acme/website/prod/deployments/1"},
	} {
		b := setup(t, webhook.DeploymentSucceeded)
		b.params.ConsoleURL = tc.console
		if got := decode(t, b.payload(t, ""))["deploymentUrl"]; got != tc.want {
			t.Errorf("console %q: deploymentUrl %v, want %s", tc.console, got, tc.want)
		}
	}
}

func TestPayloadEscapesLinkSegments(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.UpdateSucceeded)
	b.params.Subject = webhook.Scope{Org: "acme", Project: "web?site", Stack: "prod#1"}
	m := decode(t, b.payload(t, ""))
	if got, want := m["updateUrl"], "https://app.pulumi.com/acme/web%3Fsite/prod%231/updates/1"; got != want {
		t.Errorf("updateUrl %v, want %s", got, want)
	}
	if m["stackName"] != "prod#1" {
		t.Errorf("stackName %v", m["stackName"])
	}
}

// TestPayloadPing checks a ping is exactly Pulumi Cloud's: the timestamp and the message,
// whatever the hook's scope, with no user, organization or names.
func TestPayloadPing(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.Ping)
	want := `{"timestamp":1735787045,"message":"🍹 Just a friendly ping from Pulumi 🍹"}`
	for _, s := range []webhook.Scope{orgScope, stackScope, envScope} {
		b.params.Subject = s
		b.params.Actor = &webhook.User{Name: "ci"}
		b.params.OrgDisplayName = "Acme Corp"
		if got := string(b.payload(t, "")); got != want {
			t.Errorf("ping of %s = %s, want %s", s.String(), got, want)
		}
	}
	b.params.Now = time.Time{}
	before := time.Now().Unix()
	ts, err := decode(t, b.payload(t, ""))["timestamp"].(json.Number).Int64()
	if err != nil || ts < before || ts > time.Now().Unix() {
		t.Errorf("zero Now: timestamp %d, want the current time", ts)
	}
}

// TestPayloadActorAndOrgDisplayName checks the user is the actor when one is given (and a
// "user" override still wins), and organization.name the display name, while links keep the
// organization's name.
func TestPayloadActorAndOrgDisplayName(t *testing.T) {
	t.Parallel()
	for _, f := range webhook.AllFilters() {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			b := setup(t, f)
			b.params.Actor = &webhook.User{Name: "deploy bot"}
			b.params.OrgDisplayName = "Acme Corp"
			m := decode(t, b.payload(t, ""))
			if got := m["user"]; !reflect.DeepEqual(got, map[string]any{"name": "deploy bot", "githubLogin": "", "avatarUrl": ""}) {
				t.Errorf("user = %v", got)
			}
			if got := m["organization"]; !reflect.DeepEqual(got, map[string]any{"name": "Acme Corp", "githubLogin": "acme", "avatarUrl": ""}) {
				t.Errorf("organization = %v", got)
			}
			for _, k := range []string{"updateUrl", "deploymentUrl", "referenceUrl"} {
				if u, ok := m[k].(string); ok && !strings.HasPrefix(u, testConsole+"/acme/") {
					t.Errorf("%s = %s, want a link under the organization's name", k, u)
				}
			}
			m = decode(t, b.payload(t, `{"user": {"name": "Morty"}}`))
			if got := path(m, "user", "name"); got != "Morty" {
				t.Errorf("with a user override, user.name = %v", got)
			}
		})
	}
}

func TestPayloadNoOverrides(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.UpdateFailed)
	want := b.payload(t, "")
	for _, o := range []string{" ", "\n\t", "null", " null "} {
		if got := b.payload(t, o); !bytes.Equal(got, want) {
			t.Errorf("overrides %q changed the payload: %s", o, got)
		}
	}
	if !bytes.Equal(b.payload(t, ""), want) {
		t.Error("output differs between two identical calls")
	}
}

func TestPayloadOverrides(t *testing.T) {
	t.Parallel()
	t.Run("replace top-level fields in place", func(t *testing.T) {
		t.Parallel()
		b := setup(t, webhook.UpdateSucceeded)
		got := b.payload(t, `{"result": "failed", "user": {"name": "Morty"}, "resourceChanges": {"create": 2}}`)
		want := `{"user":{"name":"Morty"},"organization":{"name":"acme","githubLogin":"acme","avatarUrl":""},` +
			`"projectName":"website","stackName":"prod","updateUrl":"https://app.pulumi.com/acme/website/prod/updates/1",` +
			`"kind":"update","result":"failed","resourceChanges":{"create":2},"isPreview":false}`
		if string(got) != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
	t.Run("unknown fields pass through in order", func(t *testing.T) {
		t.Parallel()
		b := setup(t, webhook.StackCreated)
		got := b.payload(t, `{"zeta": [1, 2], "stackName": "dev", "alpha": {"nested": null}}`)
		want := `{"user":{"name":"pulumi-webhooks","githubLogin":"pulumi-webhooks","avatarUrl":""},` +
			`"organization":{"name":"acme","githubLogin":"acme","avatarUrl":""},"action":"created",` +
			`"projectName":"website","stackName":"dev","zeta":[1,2],"alpha":{"nested":null}}`
		if string(got) != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
	t.Run("formatting of overrides does not matter", func(t *testing.T) {
		t.Parallel()
		b := setup(t, webhook.DeploymentFailed)
		a := b.payload(t, `{"version":7,"extra":{"a":1}}`)
		c := b.payload(t, "{\n  \"version\": 7,\n  \"extra\": { \"a\": 1 }\n}\n")
		if !bytes.Equal(a, c) {
			t.Errorf("%s\n!=\n%s", a, c)
		}
	})
	t.Run("links follow overridden facts", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			filter    webhook.Filter
			overrides string
			key, want string
		}{
			{webhook.DeploymentStarted, `{"version": 127}`, "deploymentUrl", "https://app.pulumi.com/acme/website/prod/deployments/127"},
			{webhook.DriftDetected, `{"driftRunId": "run-9", "stackName": "dev"}`, "referenceUrl", "https://app.pulumi.com/acme/website/dev/drift/run-9"},
			{webhook.UpdateSucceeded, `{"organization": {"name": "Acme Corp", "githubLogin": "acme-corp"}}`, "updateUrl", "https://app.pulumi.com/acme-corp/website/prod/updates/1"},
			{webhook.UpdateSucceeded, `{"organization": {"name": "Acme Corp"}}`, "updateUrl", "https://app.pulumi.com/acme/website/prod/updates/1"},
			{webhook.UpdateSucceeded, `{"organization": {"githubLogin": ""}}`, "updateUrl", "https://app.pulumi.com/acme/website/prod/updates/1"},
			// A link given outright wins over the facts it would be derived from.
			{webhook.DeploymentStarted, `{"version": 127, "deploymentUrl": "https://ci.example.com/run/5"}`, "deploymentUrl", "https://ci.example.com/run/5"},
			{webhook.PreviewFailed, `{"updateUrl": "https://ci.example.com/p"}`, "updateUrl", "https://ci.example.com/p"},
			{webhook.EnvironmentDeleted, `{"environmentUrl": "https://esc.example.com/e"}`, "environmentUrl", "https://esc.example.com/e"},
		} {
			b := setup(t, tc.filter)
			if got := decode(t, b.payload(t, tc.overrides))[tc.key]; got != tc.want {
				t.Errorf("%s %s: %s = %v, want %s", tc.filter, tc.overrides, tc.key, got, tc.want)
			}
		}
	})
	t.Run("pointer fields can be set where the filter leaves them out", func(t *testing.T) {
		t.Parallel()
		b := setup(t, webhook.EnvironmentRotationFailed)
		m := decode(t, b.payload(t, `{"revision": 4}`))
		if m["revision"] != json.Number("4") {
			t.Errorf("revision %v", m["revision"])
		}
	})
	t.Run("HTML characters are not escaped", func(t *testing.T) {
		t.Parallel()
		b := setup(t, webhook.StackCreated)
		got := b.payload(t, `{"note": "<a & b>"}`)
		if !bytes.Contains(got, []byte(`"note":"<a & b>"`)) {
			t.Errorf("got %s", got)
		}
	})
}

// TestPayloadErrors covers every way Payload refuses its input.
func TestPayloadErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		filter    webhook.Filter
		subject   *webhook.Scope
		console   string
		overrides string
		field     string
		parts     []string
	}{
		{name: "unknown filter", filter: "update_exploded", field: "filter", parts: []string{`"update_exploded"`, "update_succeeded", `"ping"`}},
		{name: "empty filter", filter: "", field: "filter", parts: []string{`unknown filter ""`}},
		{name: "no organization", filter: webhook.StackCreated, subject: &webhook.Scope{Project: "p", Stack: "s"}, field: "subject.organizationName", parts: []string{"is required"}},
		{name: "bad subject name", filter: webhook.UpdateSucceeded, subject: &webhook.Scope{Org: "acme", Project: "p", Stack: "a b"}, field: "subject.stackName", parts: []string{"white space"}},
		{name: "stack event for environment", filter: webhook.UpdateSucceeded, subject: &envScope, field: "subject.environmentName", parts: []string{"stack event", "stackName"}},
		{name: "stack event for organization", filter: webhook.DeploymentQueued, subject: &orgScope, field: "subject.stackName", parts: []string{"is required", "stack event"}},
		{name: "environment event for stack", filter: webhook.EnvironmentTagCreated, subject: &stackScope, field: "subject.stackName", parts: []string{"environment event", "environmentName"}},
		{name: "environment event for organization", filter: webhook.EnvironmentCreated, subject: &orgScope, field: "subject.environmentName", parts: []string{"is required", "environment event"}},
		{name: "relative console", filter: webhook.UpdateSucceeded, console: "app.pulumi.com", field: "consoleUrl", parts: []string{`"app.pulumi.com"`, "https://"}},
		{name: "console scheme", filter: webhook.UpdateSucceeded, console: "ftp://app.pulumi.com", field: "consoleUrl", parts: []string{"http"}},
		{name: "console unparsable", filter: webhook.UpdateSucceeded, console: "http://[::1", field: "consoleUrl", parts: []string{"not an absolute"}},
		{name: "not JSON", filter: webhook.UpdateSucceeded, overrides: `{"result": `, field: "payload", parts: []string{"not valid JSON", "JSON object"}},
		{name: "unterminated", filter: webhook.UpdateSucceeded, overrides: `{"result": "failed"`, field: "payload", parts: []string{"not valid JSON"}},
		{name: "garbage", filter: webhook.UpdateSucceeded, overrides: `result=failed`, field: "payload", parts: []string{"not valid JSON"}},
		{name: "array", filter: webhook.UpdateSucceeded, overrides: `[{"result": "failed"}]`, field: "payload", parts: []string{"must be a JSON object, not an array"}},
		{name: "string", filter: webhook.UpdateSucceeded, overrides: `"failed"`, field: "payload", parts: []string{"not a string"}},
		{name: "number", filter: webhook.UpdateSucceeded, overrides: `42`, field: "payload", parts: []string{"not a number"}},
		{name: "boolean", filter: webhook.UpdateSucceeded, overrides: `true`, field: "payload", parts: []string{"not a boolean"}},
		{name: "two objects", filter: webhook.UpdateSucceeded, overrides: `{} {}`, field: "payload", parts: []string{"after the object"}},
		{name: "trailing garbage", filter: webhook.UpdateSucceeded, overrides: `{"a":1} x`, field: "payload", parts: []string{"not valid JSON"}},
		{name: "key not a string", filter: webhook.UpdateSucceeded, overrides: `{1: 2}`, field: "payload", parts: []string{"not valid JSON"}},
		{name: "duplicate key", filter: webhook.UpdateSucceeded, overrides: `{"result": "failed", "result": "succeeded"}`, field: "payload", parts: []string{`"result" is given twice`}},
		{name: "invalid UTF-8", filter: webhook.UpdateSucceeded, overrides: "{\"stackName\": \"\xff\"}", field: "payload", parts: []string{"UTF-8"}},
		{name: "string field given a number", filter: webhook.UpdateSucceeded, overrides: `{"stackName": 7}`, field: "payload.stackName", parts: []string{"must be a string, not a number (7)"}},
		{name: "string field given null", filter: webhook.StackCreated, overrides: `{"action": null}`, field: "payload.action", parts: []string{"must be a string, not null"}},
		{name: "boolean field given a string", filter: webhook.PreviewSucceeded, overrides: `{"isPreview": "yes"}`, field: "payload.isPreview", parts: []string{"must be a boolean", "not a string"}},
		{name: "integer field given a string", filter: webhook.DeploymentStarted, overrides: `{"version": "127"}`, field: "payload.version", parts: []string{"must be an integer, not a string"}},
		{name: "integer field given a fraction", filter: webhook.DeploymentStarted, overrides: `{"version": 1.5}`, field: "payload.version", parts: []string{"must be an integer, not 1.5", "whole number"}},
		{name: "integer field given an exponent", filter: webhook.DeploymentQueued, overrides: `{"version": 1e3}`, field: "payload.version", parts: []string{"must be an integer"}},
		{name: "integer field out of range", filter: webhook.EnvironmentRevisionCreated, overrides: `{"revision": 99999999999999999999}`, field: "payload.revision", parts: []string{"must be an integer"}},
		{name: "object field given a string", filter: webhook.StackDeleted, overrides: `{"user": "morty"}`, field: "payload.user", parts: []string{"must be an object, not a string"}},
		{name: "object field given an array", filter: webhook.StackDeleted, overrides: `{"organization": []}`, field: "payload.organization", parts: []string{"must be an object, not an array"}},
		{name: "nested field", filter: webhook.StackDeleted, overrides: `{"user": {"name": "Morty", "githubLogin": false}}`, field: "payload.user.githubLogin", parts: []string{"must be a string, not a boolean"}},
		{name: "map given an array", filter: webhook.UpdateFailed, overrides: `{"resourceChanges": [1]}`, field: "payload.resourceChanges", parts: []string{"must be an object of integer values, not an array"}},
		{name: "map value", filter: webhook.UpdateFailed, overrides: `{"resourceChanges": {"update": "3"}}`, field: "payload.resourceChanges.update", parts: []string{"must be an integer, not a string"}},
		{name: "optional pointer field", filter: webhook.EnvironmentRotationFailed, overrides: `{"revision": "one"}`, field: "payload.revision", parts: []string{"must be an integer"}},
		{name: "array field", filter: webhook.ImportedEnvironmentChanged, overrides: `{"affectedRevisions": 3}`, field: "payload.affectedRevisions", parts: []string{"must be an array of integers, not a number (3)"}},
		{name: "array item", filter: webhook.ImportedEnvironmentChanged, overrides: `{"affectedRevisions": [1, "two"]}`, field: "payload.affectedRevisions[1]", parts: []string{"must be an integer, not a string"}},
		{name: "nested reference", filter: webhook.ImportedEnvironmentChanged, overrides: `{"importedEnvironmentReference": {"revision": true}}`, field: "payload.importedEnvironmentReference.revision", parts: []string{"must be an integer, not a boolean"}},
		{name: "policy fact", filter: webhook.PolicyViolationMandatory, overrides: `{"policyName": 7}`, field: "payload.policyName", parts: []string{"must be a string"}},
		{name: "ping timestamp", filter: webhook.Ping, overrides: `{"timestamp": "now"}`, field: "payload.timestamp", parts: []string{"must be an integer"}},
		{name: "drift flag", filter: webhook.DriftDetectionFailed, overrides: `{"driftDetected": 1}`, field: "payload.driftDetected", parts: []string{"must be a boolean"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, webhook.UpdateSucceeded)
			b.params.Filter = tc.filter
			if tc.subject != nil {
				b.params.Subject = *tc.subject
			} else {
				b.params.Subject = subjectFor(tc.filter)
			}
			if tc.console != "" {
				b.params.ConsoleURL = tc.console
			}
			errs := b.payloadErr(t, tc.overrides)
			wantFieldError(t, errs, tc.field, tc.parts...)
		})
	}
}

// TestPayloadErrorsTogether checks every problem is reported at once, not just the first.
func TestPayloadErrorsTogether(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.DeploymentFailed)
	errs := b.payloadErr(t, `{"version": "x", "status": 3, "user": {"name": []}, "extra": "kept"}`)
	if len(errs) != 3 {
		t.Errorf("got %d errors, want 3: %v", len(errs), errs)
	}
	wantFieldError(t, errs, "payload.version", "integer")
	wantFieldError(t, errs, "payload.status", "string")
	wantFieldError(t, errs, "payload.user.name", "string")

	b.params.Filter = "nope"
	b.params.ConsoleURL = "nope"
	errs = b.payloadErr(t, `[]`)
	wantFieldError(t, errs, "filter", "unknown filter")
	wantFieldError(t, errs, "consoleUrl", "absolute")
	wantFieldError(t, errs, "payload", "JSON object")
}
