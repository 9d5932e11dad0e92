package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The expectations of the matching matrix come from the vocabulary, written out here
// rather than read from package webhook, so the tables there are checked too.
var (
	// matrixGroupOf maps every filter to the one group its kind belongs to.
	matrixGroupOf = map[webhook.Filter]webhook.Group{
		"stack_created": "stacks", "stack_deleted": "stacks",
		"preview_succeeded": "stacks", "preview_failed": "stacks",
		"update_succeeded": "stacks", "update_failed": "stacks",
		"destroy_succeeded": "stacks", "destroy_failed": "stacks",
		"refresh_succeeded": "stacks", "refresh_failed": "stacks",
		"deployment_queued": "deployments", "deployment_started": "deployments",
		"deployment_succeeded": "deployments", "deployment_failed": "deployments",
		"drift_detected": "deployments", "drift_detection_succeeded": "deployments",
		"drift_detection_failed": "deployments", "drift_remediation_succeeded": "deployments",
		"drift_remediation_failed":         "deployments",
		"environment_created":              "environments",
		"environment_deleted":              "environments",
		"environment_revision_created":     "environments",
		"environment_revision_retracted":   "environments",
		"environment_revision_tag_created": "environments",
		"environment_revision_tag_deleted": "environments",
		"environment_revision_tag_updated": "environments",
		"environment_tag_created":          "environments",
		"environment_tag_deleted":          "environments",
		"environment_tag_updated":          "environments",
		"imported_environment_changed":     "environments",
		"environment_rotation_succeeded":   "environments",
		"environment_rotation_failed":      "environments",
	}
	// matrixOrgOnly are the filters whose events reach organization hooks only.
	matrixOrgOnly = map[webhook.Filter]bool{
		"stack_created": true, "stack_deleted": true, "environment_created": true, "environment_deleted": true,
	}
	matrixGroups = []webhook.Group{"stacks", "deployments", "environments"}
)

func matrixIsEnvFilter(f webhook.Filter) bool { return matrixGroupOf[f] == "environments" }

// Every event of the matrix is about acme/web/prod: the stack for stack filters, the
// environment (of the same name, to catch a stack hook hearing about an environment) for
// environment filters.
func matrixSubject(f webhook.Filter) webhook.Scope {
	if matrixIsEnvFilter(f) {
		return webhook.Scope{Org: "acme", Project: "web", Environment: "prod"}
	}
	return webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
}

// matrixPlace is where a hook of the matrix is attached, and whether events of a filter about
// matrixSubject can reach it at all.
type matrixPlace struct {
	name    string
	scope   webhook.Scope
	reaches func(f webhook.Filter) bool
}

var matrixPlaces = []matrixPlace{
	{"org", webhook.Scope{Org: "acme"}, func(webhook.Filter) bool { return true }},
	{"other-org", webhook.Scope{Org: "other"}, func(webhook.Filter) bool { return false }},
	{"stack", webhook.Scope{Org: "acme", Project: "web", Stack: "prod"},
		func(f webhook.Filter) bool { return !matrixIsEnvFilter(f) && !matrixOrgOnly[f] }},
	{"other-stack", webhook.Scope{Org: "acme", Project: "web", Stack: "dev"}, func(webhook.Filter) bool { return false }},
	{"other-project-stack", webhook.Scope{Org: "acme", Project: "api", Stack: "prod"}, func(webhook.Filter) bool { return false }},
	{"other-org-stack", webhook.Scope{Org: "other", Project: "web", Stack: "prod"}, func(webhook.Filter) bool { return false }},
	{"env", webhook.Scope{Org: "acme", Project: "web", Environment: "prod"},
		func(f webhook.Filter) bool { return matrixIsEnvFilter(f) && !matrixOrgOnly[f] }},
	{"other-env", webhook.Scope{Org: "acme", Project: "web", Environment: "staging"}, func(webhook.Filter) bool { return false }},
	{"other-project-env", webhook.Scope{Org: "acme", Project: "api", Environment: "prod"}, func(webhook.Filter) bool { return false }},
	{"other-org-env", webhook.Scope{Org: "other", Project: "web", Environment: "prod"}, func(webhook.Filter) bool { return false }},
}

// matrixSub is what a hook of the matrix subscribes to, and whether that takes in a filter.
type matrixSub struct {
	name    string
	filters []webhook.Filter
	groups  []webhook.Group
	takes   func(f webhook.Filter) bool
}

// matrixSubs lists every subscription: nothing (everything), each single filter, each single
// group, and each filter together with a group that does not contain it (union of both).
func matrixSubs() []matrixSub {
	subs := []matrixSub{{name: "all", takes: func(webhook.Filter) bool { return true }}}
	all := webhook.Filters()
	for _, g := range all {
		subs = append(subs, matrixSub{name: "f-" + string(g), filters: []webhook.Filter{g},
			takes: func(f webhook.Filter) bool { return f == g }})
	}
	for _, g := range matrixGroups {
		subs = append(subs, matrixSub{name: "g-" + string(g), groups: []webhook.Group{g},
			takes: func(f webhook.Filter) bool { return matrixGroupOf[f] == g }})
	}
	for _, g := range all {
		other := matrixGroups[(slices.Index(matrixGroups, matrixGroupOf[g])+1)%len(matrixGroups)]
		subs = append(subs, matrixSub{name: "fg-" + string(g) + "-" + string(other),
			filters: []webhook.Filter{g}, groups: []webhook.Group{other},
			takes: func(f webhook.Filter) bool { return f == g || matrixGroupOf[f] == other }})
	}
	return subs
}

// matrixHook is one hook of the matrix.
type matrixHook struct {
	spec  webhook.Spec
	place matrixPlace
	sub   matrixSub
}

// want is the expected answer for an event of f, computed from the three independent facts.
func (h matrixHook) want(f webhook.Filter) bool {
	return h.spec.Active && h.place.reaches(f) && h.sub.takes(f)
}

func matrixHooks() []matrixHook {
	var hs []matrixHook
	for _, p := range matrixPlaces {
		for _, s := range matrixSubs() {
			for _, active := range []bool{true, false} {
				name := fmt.Sprintf("%s-%s-%t", p.name, s.name, active)
				hs = append(hs, matrixHook{
					spec: webhook.Spec{
						// Hook names are at most 32 characters: the description is the display name.
						Scope: p.scope, Name: fmt.Sprintf("m%d", len(hs)), DisplayName: name, PayloadURL: "http://127.0.0.1:9/" + name,
						Active: active, Format: webhook.FormatRaw, Filters: s.filters, Groups: s.groups,
					},
					place: p, sub: s,
				})
			}
		}
	}
	return hs
}

func TestMatrixVocabularyAgreesWithWebhookPackage(t *testing.T) {
	t.Parallel()
	if got := len(webhook.Filters()); got != 32 || len(matrixGroupOf) != 32 {
		t.Fatalf("filters: package has %d, matrix has %d, want 32", got, len(matrixGroupOf))
	}
	for _, f := range webhook.Filters() {
		g, ok := matrixGroupOf[f]
		if !ok {
			t.Fatalf("filter %q missing from the matrix", f)
		}
		if !f.Kind().InGroup(g) {
			t.Errorf("filter %q: kind %q not in group %q", f, f.Kind(), g)
		}
		if f.OrgOnly() != matrixOrgOnly[f] {
			t.Errorf("filter %q: OrgOnly = %t, want %t", f, f.OrgOnly(), matrixOrgOnly[f])
		}
	}
}

// TestMatchesMatrix checks the pure function over every filter x hook place x subscription x
// active flag, invalid combinations (a stack hook subscribed to an environment filter)
// included.
func TestMatchesMatrix(t *testing.T) {
	t.Parallel()
	hooks := matrixHooks()
	checked, matched := 0, 0
	for _, f := range webhook.Filters() {
		subject := matrixSubject(f)
		for _, h := range hooks {
			want := h.want(f)
			if got := Matches(h.spec, f, subject); got != want {
				t.Errorf("Matches(%s, %s about %s) = %t, want %t", h.spec.Name, f, subject.String(), got, want)
			}
			checked++
			if want {
				matched++
			}
		}
	}
	t.Logf("checked %d filter x hook cases, %d deliver", checked, matched)
}

func TestMatchesEdgeCases(t *testing.T) {
	t.Parallel()
	org := webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Active: true}
	stackHook := webhook.Spec{Scope: stackSubject, Active: true}
	cases := []struct {
		name    string
		spec    webhook.Spec
		filter  webhook.Filter
		subject webhook.Scope
		want    bool
	}{
		{"ping is never matched", org, webhook.Ping, stackSubject, false},
		{"unknown filter", org, "update_exploded", stackSubject, false},
		{"empty filter", org, "", stackSubject, false},
		{"stack filter about an environment", org, webhook.UpdateSucceeded, webhook.Scope{Org: "acme", Project: "web", Environment: "prod"}, false},
		{"environment filter about a stack", org, webhook.EnvironmentTagCreated, stackSubject, false},
		{"subject without project", org, webhook.UpdateSucceeded, webhook.Scope{Org: "acme", Stack: "prod"}, false},
		{"subject with stack and environment", stackHook, webhook.UpdateSucceeded, webhook.Scope{Org: "acme", Project: "web", Stack: "prod", Environment: "prod"}, false},
		{"subject without org", webhook.Spec{Active: true}, webhook.UpdateSucceeded, webhook.Scope{Project: "web", Stack: "prod"}, false},
		{"hook with a project but no stack is not an org hook", webhook.Spec{Scope: webhook.Scope{Org: "acme", Project: "web"}, Active: true}, webhook.UpdateSucceeded, stackSubject, false},
		{"org is case sensitive", org, webhook.UpdateSucceeded, webhook.Scope{Org: "ACME", Project: "web", Stack: "prod"}, false},
		{"org hook, plain", org, webhook.UpdateSucceeded, stackSubject, true},
		{"stack hook, exact", stackHook, webhook.DriftDetected, stackSubject, true},
	}
	for _, c := range cases {
		if got := Matches(c.spec, c.filter, c.subject); got != c.want {
			t.Errorf("%s: Matches = %t, want %t", c.name, got, c.want)
		}
	}
}

// TestEmitMatchingMatrix runs the same matrix end to end: every valid hook is created through
// the engine in a real SQLite store, one event per filter is emitted, and the deliveries
// stored for it must go to exactly the expected hooks. Filters that can never fire for a
// hook's scope are accepted (as Pulumi Cloud accepts them), advised on, and never delivered.
func TestEmitMatchingMatrix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	byID := map[int64]matrixHook{}
	advised := 0
	for _, mh := range matrixHooks() {
		kind := mh.spec.Scope.Kind()
		valid := true
		for _, f := range mh.spec.Filters {
			valid = valid && f.ReachesScope(kind)
		}
		h, err := b.eng.HookCreate(ctx, mh.spec)
		if !valid {
			// Accepted, as Pulumi Cloud accepts it; the filter never fires, and Advise says so.
			if advice := mh.spec.Advise(); len(advice) == 0 || advice[0].Field != "filters[0]" {
				t.Errorf("HookCreate(%s): Advise = %v, want a word on filters[0]", mh.spec.DisplayName, advice)
			}
			advised++
		}
		if err != nil {
			t.Fatalf("HookCreate(%s): %v", mh.spec.DisplayName, err)
		}
		byID[h.ID] = mh
	}
	t.Logf("%d hooks created, %d of them with filters that never fire for their scope", len(byID), advised)
	total := 0
	for _, f := range webhook.Filters() {
		subject := matrixSubject(f)
		res := b.emit(t, EmitParams{Filter: f, Subject: subject})
		var got, want []string
		for _, d := range b.deliveriesOf(t, res.EventID) {
			mh, ok := byID[d.HookID]
			if !ok {
				t.Fatalf("%s: delivery to unknown hook %d", f, d.HookID)
			}
			if d.State != "pending" || d.Filter != f || d.Kind != f.Kind() {
				t.Errorf("%s: delivery %+v: want a pending %s/%s delivery", f, d, f, f.Kind())
			}
			got = append(got, mh.spec.Name)
		}
		for _, mh := range byID {
			if mh.want(f) {
				want = append(want, mh.spec.Name)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s about %s: delivered to %d hooks, want %d\n got: %v\nwant: %v", f, subject.String(), len(got), len(want), got, want)
		}
		if res.Deliveries != len(want) {
			t.Errorf("%s: EmitResult.Deliveries = %d, want %d", f, res.Deliveries, len(want))
		}
		total += len(got)
	}
	t.Logf("%d deliveries over 32 events", total)
}
