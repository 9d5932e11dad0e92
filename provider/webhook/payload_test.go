package webhook

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/refdocs"
)

// The payload examples of the Pulumi Cloud webhook documentation, by the kind they show.
var referenceExamples = map[string]Kind{
	"stack_created": KindStack,
	"stack_update":  KindStackUpdate,
	"stack_preview": KindStackPreview,
	"deployment":    KindDeployment,
}

// normalize re-encodes JSON with sorted object keys.
func normalize(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// keyOrder lists the keys of the top-level object (key "") or of one of its object fields,
// in document order.
func keyOrder(t *testing.T, b []byte, field string) []string {
	t.Helper()
	if field != "" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		b = m[field]
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestPayloadStructsRoundTripReference decodes each documentation example into its kind's
// struct refusing unknown fields, encodes it again, and expects the example back, equal
// in value and field order: the structs have exactly the reference's field names, types and
// order.
// referenceHeadings maps example names to their headings on the Pulumi Cloud webhooks page.
var referenceHeadings = map[string]string{
	"stack_created": "Stack Creation",
	"stack_update":  "Stack Update",
	"stack_preview": "Stack Preview",
	"deployment":    "Deployment",
}

func TestPayloadStructsRoundTripReference(t *testing.T) {
	t.Parallel()
	for name, kind := range referenceExamples {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			examples, err := refdocs.PayloadExamples()
			if err != nil {
				t.Fatal(err)
			}
			raw, ok := examples[referenceHeadings[name]]
			if !ok {
				t.Fatalf("the reference page has no example for %s", name)
			}
			var want bytes.Buffer
			if err := json.Compact(&want, raw); err != nil {
				t.Fatal(err)
			}
			pl := NewPayload(kind)
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(pl); err != nil {
				t.Fatalf("decoding the example into %T: %v", pl, err)
			}
			got, err := json.Marshal(pl)
			if err != nil {
				t.Fatal(err)
			}
			// Same values, and the same field order at every level of the structs (maps such
			// as resourceChanges come out sorted, which JSON does not care about).
			if a, b := normalize(t, got), normalize(t, want.Bytes()); a != b {
				t.Errorf("round trip through %T:\ngot  %s\nwant %s", pl, a, b)
			}
			for _, key := range []string{"", "user", "organization"} {
				if a, b := keyOrder(t, got, key), keyOrder(t, want.Bytes(), key); !slices.Equal(a, b) {
					t.Errorf("%q keys in order %v, reference has %v", key, a, b)
				}
			}
		})
	}
}

func TestNewPayload(t *testing.T) {
	t.Parallel()
	want := map[Kind]any{
		KindStack:                      &StackPayload{},
		KindStackPreview:               &StackPreviewPayload{},
		KindStackUpdate:                &StackUpdatePayload{},
		KindDeployment:                 &DeploymentPayload{},
		KindDriftDetection:             &DriftDetectionPayload{},
		KindDriftRemediation:           &DriftRemediationPayload{},
		KindEnvironment:                &EnvironmentPayload{},
		KindEnvironmentRevision:        &EnvironmentRevisionPayload{},
		KindEnvironmentRevisionTag:     &EnvironmentRevisionTagPayload{},
		KindEnvironmentTag:             &EnvironmentTagPayload{},
		KindImportedEnvironmentChanged: &ImportedEnvironmentChangedPayload{},
		KindEnvironmentRotation:        &EnvironmentRotationPayload{},
		KindPolicyViolation:            &PolicyViolationPayload{},
		KindPing:                       &PingPayload{},
	}
	for _, k := range append(Kinds(), KindPing) {
		got := NewPayload(k)
		if reflect.TypeOf(got) != reflect.TypeOf(want[k]) {
			t.Errorf("NewPayload(%s) = %T, want %T", k, got, want[k])
		}
	}
	if len(want) != len(Kinds())+1 {
		t.Errorf("table covers %d kinds, the package has %d and ping", len(want), len(Kinds()))
	}
	for _, k := range []Kind{"", "stacks", "update_succeeded"} {
		if got := NewPayload(k); got != nil {
			t.Errorf("NewPayload(%q) = %T, want nil", k, got)
		}
	}
}

// TestPayloadFieldNames checks every payload: user and organization first (a ping has
// neither), camelCase JSON names, none twice, and the subject's names.
func TestPayloadFieldNames(t *testing.T) {
	t.Parallel()
	camel := regexp.MustCompile(`^[a-z][a-zA-Z]*$`)
	for _, k := range append(Kinds(), KindPing) {
		typ := reflect.TypeOf(NewPayload(k)).Elem()
		names := map[string]bool{}
		var order []string
		for i := range typ.NumField() {
			tag := typ.Field(i).Tag.Get("json")
			name := tag
			if j := bytes.IndexByte([]byte(tag), ','); j >= 0 {
				name = tag[:j]
			}
			if !camel.MatchString(name) {
				t.Errorf("%s.%s has JSON name %q, want camelCase", typ.Name(), typ.Field(i).Name, name)
			}
			if names[name] {
				t.Errorf("%s has %q twice", typ.Name(), name)
			}
			names[name] = true
			order = append(order, name)
		}
		if k == KindPing {
			if !slices.Equal(order, []string{"timestamp", "message"}) {
				t.Errorf("%s has %v, want exactly timestamp, message", typ.Name(), order)
			}
			continue
		}
		if len(order) < 2 || order[0] != "user" || order[1] != "organization" {
			t.Errorf("%s starts with %v, want user, organization", typ.Name(), order)
		}
		if typ.Field(0).Type != reflect.TypeOf(User{}) || typ.Field(1).Type != reflect.TypeOf(Organization{}) {
			t.Errorf("%s: user/organization fields have types %s/%s", typ.Name(), typ.Field(0).Type, typ.Field(1).Type)
		}
		var subject []string
		switch {
		case k.InGroup(GroupEnvironments):
			subject = []string{"projectName", "environmentName"}
		default:
			subject = []string{"projectName", "stackName"}
		}
		for _, s := range subject {
			if !names[s] {
				t.Errorf("%s has no %q", typ.Name(), s)
			}
		}
	}
}

// TestOptionalFieldsOmitted checks the fields some events of a kind lack are left out, not
// sent as null or zero, and appear when set.
func TestOptionalFieldsOmitted(t *testing.T) {
	t.Parallel()
	two := 2
	for _, tc := range []struct {
		empty, set any
		key        string
	}{
		{&EnvironmentRotationPayload{}, &EnvironmentRotationPayload{Revision: &two}, "revision"},
	} {
		for _, c := range []struct {
			v    any
			want bool
		}{{tc.empty, false}, {tc.set, true}} {
			b, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m[tc.key]; ok != c.want {
				t.Errorf("%T: %s present %v, want %v: %s", c.v, tc.key, ok, c.want, b)
			}
		}
	}
	// Everything else is always sent, even when zero, like the reference payloads.
	b, _ := json.Marshal(StackUpdatePayload{})
	for _, key := range []string{`"resourceChanges":null`, `"isPreview":false`, `"avatarUrl":""`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("zero StackUpdatePayload lacks %s: %s", key, b)
		}
	}
}

func TestSystemUser(t *testing.T) {
	t.Parallel()
	u := SystemUser()
	if u.Name != "pulumi-webhooks" || u.GithubLogin != "pulumi-webhooks" || u.AvatarURL != "" {
		t.Errorf("SystemUser() = %+v", u)
	}
	u.Name = "changed"
	if SystemUser().Name != SystemUserName {
		t.Error("SystemUser shares state between callers")
	}
}

// documentedExamples are the payloads Pulumi documents beyond the reference page's four (which
// TestPayloadStructsRoundTripReference checks against the reference facts): the examples of
// the ESC webhooks page (https://www.pulumi.com/docs/esc/environments/webhooks/) and the ping
// of the REST API reference (https://www.pulumi.com/docs/reference/cloud-rest-api/webhooks/),
// with their keys in the documented order and values of our own.
var documentedExamples = []struct {
	kind Kind
	json string
}{
	{KindEnvironment, `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","action":"created"}`},
	{KindEnvironmentRevision, `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","action":"created","revision":3}`},
	{KindEnvironmentRevisionTag, `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","tagName":"t","action":"created","revision":3}`},
	{KindEnvironmentTag, `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","tagName":"t","action":"created"}`},
	{KindImportedEnvironmentChanged, `{"user":{"name":"u","githubLogin":"u","avatarUrl":""},"organization":{"name":"o","githubLogin":"o","avatarUrl":""},` +
		`"projectName":"p","environmentName":"e","affectedRevisions":[1,4],"importedEnvironmentReference":{"projectName":"p","environmentName":"base","revision":9}}`},
	{KindPing, `{"timestamp":1700000000,"message":"🍹 Just a friendly ping from Pulumi 🍹"}`},
}

// TestPayloadStructsRoundTripDocumented decodes each documented example into its kind's struct,
// refusing unknown fields, and encodes it back: the same keys, in the same order, at every
// level, so our payloads have exactly the documented fields.
func TestPayloadStructsRoundTripDocumented(t *testing.T) {
	t.Parallel()
	for _, ex := range documentedExamples {
		t.Run(string(ex.kind), func(t *testing.T) {
			t.Parallel()
			pl := NewPayload(ex.kind)
			dec := json.NewDecoder(strings.NewReader(ex.json))
			dec.DisallowUnknownFields()
			if err := dec.Decode(pl); err != nil {
				t.Fatalf("decoding the documented example into %T: %v", pl, err)
			}
			got, err := json.Marshal(pl)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != ex.json {
				t.Errorf("round trip through %T:\ngot  %s\nwant %s", pl, got, ex.json)
			}
		})
	}
}

func TestPingMessage(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(PingPayload{Timestamp: 1632735487, Message: PingMessage})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"timestamp":1632735487,"message":"🍹 Just a friendly ping from Pulumi 🍹"}`; string(b) != want {
		t.Errorf("ping = %s, want %s", b, want)
	}
}
