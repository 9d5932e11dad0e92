package harness

import (
	"slices"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestExpectationTable checks the model behind the expectation table against the plan's hand
// counts, so that a mistake in either shows before anything runs.
func TestExpectationTable(t *testing.T) {
	t.Parallel()
	for round := 1; round <= 2; round++ {
		plan := planFor(round)
		x := expect(plan, roundEvents(round))
		for _, hk := range plan {
			if got := sumCounts(x.Deliveries[hk.name()]); got != hk.Want[round-1] {
				t.Errorf("round %d: the model gives %s %d deliveries, the hand count is %d", round, hk.name(), got, hk.Want[round-1])
			}
			if got := x.Requests[hk.name()]; got != hk.WantRequests[round-1] {
				t.Errorf("round %d: the model gives %s %d deployment requests, the hand count is %d", round, hk.name(), got, hk.WantRequests[round-1])
			}
		}
	}
	// After destroy nothing is delivered.
	if x := expect(nil, roundEvents(3)); x.total() != 0 {
		t.Errorf("with no hooks the model expects %d deliveries", x.total())
	}
}

// TestRoundEvents checks that a round fires each of the 32 filters once for every subject it
// fits, half through the API and half through the CLI, with unique tags.
func TestRoundEvents(t *testing.T) {
	t.Parallel()
	evs := roundEvents(1)
	if len(evs) != 19*3+13*2 {
		t.Fatalf("a round fires %d events, want 19 stack filters for 3 stacks and 13 environment filters for 2 environments", len(evs))
	}
	perSubject := map[subject][]string{}
	tags := map[string]bool{}
	cli := 0
	for _, ev := range evs {
		perSubject[ev.Subject] = append(perSubject[ev.Subject], ev.Filter)
		if tags[ev.Tag] {
			t.Errorf("tag %s is used twice", ev.Tag)
		}
		tags[ev.Tag] = true
		if ev.ViaCLI {
			cli++
		}
		if !tagPattern.MatchString(ev.Tag) {
			t.Errorf("tag %s does not match the pattern chat messages are searched with", ev.Tag)
		}
	}
	if cli != len(evs)/2 {
		t.Errorf("%d of %d events go through the CLI, want half", cli, len(evs))
	}
	var all []string
	for _, s := range roundSubjects {
		all = append(all, perSubject[s]...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if len(all) != 32 || len(allFilters) != 32 || len(filterKinds) != 32 {
		t.Errorf("the rounds fire %d distinct filters (table: %d filters, %d kinds), want 32", len(all), len(allFilters), len(filterKinds))
	}
}

// TestVocabularyMatchesProduct compares the harness's own vocabulary (written out from the
// documentation) with the product's, so a drift between them is caught here and not as a
// confusing end-to-end failure.
func TestVocabularyMatchesProduct(t *testing.T) {
	t.Parallel()
	var product []string
	for _, f := range webhook.Filters() {
		product = append(product, string(f))
		if got := string(f.Kind()); got != filterKinds[string(f)] {
			t.Errorf("%s: the product's kind is %s, the harness's %s", f, got, filterKinds[string(f)])
		}
		if f.OrgOnly() != slices.Contains(orgOnlyFilters, string(f)) {
			t.Errorf("%s: the product says org-only %t", f, f.OrgOnly())
		}
	}
	if !slices.Equal(product, allFilters) {
		t.Errorf("the product's filters %v differ from the harness's %v", product, allFilters)
	}
	for g, kinds := range groupKinds {
		var got []string
		for _, k := range webhook.Group(g).Kinds() {
			got = append(got, string(k))
		}
		if !slices.Equal(sorted(got), sorted(kinds)) {
			t.Errorf("group %s: the product's kinds %v, the harness's %v", g, got, kinds)
		}
	}
	for _, s := range []subject{{Org: org1}, subjA, subjE} {
		kind := webhook.ScopeOrganization
		if s.isStack() {
			kind = webhook.ScopeStack
		} else if s.isEnv() {
			kind = webhook.ScopeEnvironment
		}
		var got []string
		for _, g := range webhook.DefaultGroups(kind) {
			got = append(got, string(g))
		}
		if !slices.Equal(sorted(got), sorted(defaultGroups(s))) {
			t.Errorf("default groups of %s: the product's %v, the harness's %v", kind, got, defaultGroups(s))
		}
	}
}
