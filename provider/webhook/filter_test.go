package webhook

import (
	"slices"
	"strings"
	"testing"
)

// schemaFilters is the WebhookFilters enum of the Pulumi Service provider schema v1.3.0, in
// its order, with the kind the Pulumi Cloud documentation gives each filter and whether it
// reaches organization webhooks only.
var schemaFilters = []struct {
	value, name string
	kind        Kind
	orgOnly     bool
}{
	{"stack_created", "StackCreated", "stack", true},
	{"stack_deleted", "StackDeleted", "stack", true},
	{"update_succeeded", "UpdateSucceeded", "stack_update", false},
	{"update_failed", "UpdateFailed", "stack_update", false},
	{"preview_succeeded", "PreviewSucceeded", "stack_preview", false},
	{"preview_failed", "PreviewFailed", "stack_preview", false},
	{"destroy_succeeded", "DestroySucceeded", "stack_update", false},
	{"destroy_failed", "DestroyFailed", "stack_update", false},
	{"refresh_succeeded", "RefreshSucceeded", "stack_update", false},
	{"refresh_failed", "RefreshFailed", "stack_update", false},
	{"deployment_queued", "DeploymentQueued", "deployment", false},
	{"deployment_started", "DeploymentStarted", "deployment", false},
	{"deployment_succeeded", "DeploymentSucceeded", "deployment", false},
	{"deployment_failed", "DeploymentFailed", "deployment", false},
	{"drift_detected", "DriftDetected", "drift_detection", false},
	{"drift_detection_succeeded", "DriftDetectionSucceeded", "drift_detection", false},
	{"drift_detection_failed", "DriftDetectionFailed", "drift_detection", false},
	{"drift_remediation_succeeded", "DriftRemediationSucceeded", "drift_remediation", false},
	{"drift_remediation_failed", "DriftRemediationFailed", "drift_remediation", false},
	{"environment_created", "EnvironmentCreated", "environment", true},
	{"environment_deleted", "EnvironmentDeleted", "environment", true},
	{"environment_revision_created", "EnvironmentRevisionCreated", "environment_revision", false},
	{"environment_revision_retracted", "EnvironmentRevisionRetracted", "environment_revision", false},
	{"environment_revision_tag_created", "EnvironmentRevisionTagCreated", "environment_revision_tag", false},
	{"environment_revision_tag_deleted", "EnvironmentRevisionTagDeleted", "environment_revision_tag", false},
	{"environment_revision_tag_updated", "EnvironmentRevisionTagUpdated", "environment_revision_tag", false},
	{"environment_tag_created", "EnvironmentTagCreated", "environment_tag", false},
	{"environment_tag_deleted", "EnvironmentTagDeleted", "environment_tag", false},
	{"environment_tag_updated", "EnvironmentTagUpdated", "environment_tag", false},
	{"imported_environment_changed", "ImportedEnvironmentChanged", "imported_environment_changed", false},
	{"environment_rotation_succeeded", "EnvironmentRotationSucceeded", "environment_rotation", false},
	{"environment_rotation_failed", "EnvironmentRotationFailed", "environment_rotation", false},
}

func TestFiltersMatchSchema(t *testing.T) {
	t.Parallel()
	got := Filters()
	if len(got) != 32 || len(schemaFilters) != 32 {
		t.Fatalf("Filters() has %d filters, the schema %d; want 32", len(got), len(schemaFilters))
	}
	for i, want := range schemaFilters {
		f := got[i]
		if string(f) != want.value {
			t.Errorf("Filters()[%d] = %q, schema has %q", i, f, want.value)
			continue
		}
		if !f.Valid() {
			t.Errorf("%s is not Valid", f)
		}
		if f.EnumName() != want.name {
			t.Errorf("%s.EnumName() = %q, want %q", f, f.EnumName(), want.name)
		}
		if f.Kind() != want.kind {
			t.Errorf("%s.Kind() = %q, want %q", f, f.Kind(), want.kind)
		}
		if f.OrgOnly() != want.orgOnly {
			t.Errorf("%s.OrgOnly() = %v, want %v", f, f.OrgOnly(), want.orgOnly)
		}
	}
}

func TestFiltersReturnsACopy(t *testing.T) {
	t.Parallel()
	a := Filters()
	a[0] = "mangled"
	if Filters()[0] != StackCreated {
		t.Error("changing the slice Filters returned changed the package's list")
	}
}

func TestPingIsNotSubscribable(t *testing.T) {
	t.Parallel()
	if Ping.Valid() {
		t.Error("ping is Valid, but no hook can subscribe to it")
	}
	if slices.Contains(Filters(), Ping) {
		t.Error("Filters() lists ping")
	}
	if Ping.Kind() != KindPing || Ping.EnumName() != "Ping" {
		t.Errorf("ping: kind %q, enum name %q", Ping.Kind(), Ping.EnumName())
	}
	if Ping.Subject() != "" {
		t.Errorf("ping has subject %q", Ping.Subject())
	}
	if _, err := ParseFilter("ping"); err == nil {
		t.Error("ParseFilter accepts ping")
	}
}

func TestUnknownFilter(t *testing.T) {
	t.Parallel()
	for _, f := range []Filter{"", "update", "Update_Succeeded", "refresh failed", "stack_created "} {
		if f.Valid() || f.Kind() != "" || f.EnumName() != "" || f.OrgOnly() || f.Subject() != "" {
			t.Errorf("%q: valid %v, kind %q, enum %q, orgOnly %v, subject %q", f, f.Valid(), f.Kind(), f.EnumName(), f.OrgOnly(), f.Subject())
		}
		for _, s := range []ScopeKind{ScopeOrganization, ScopeStack, ScopeEnvironment} {
			if f.ReachesScope(s) {
				t.Errorf("%q reaches %s hooks", f, s)
			}
		}
	}
}

func TestParseFilter(t *testing.T) {
	t.Parallel()
	for _, f := range Filters() {
		got, err := ParseFilter(string(f))
		if err != nil || got != f {
			t.Errorf("ParseFilter(%q) = %q, %v", f, got, err)
		}
	}
	_, err := ParseFilter("update_exploded")
	if err == nil {
		t.Fatal("ParseFilter accepts an unknown filter")
	}
	msg := err.Error()
	if !strings.Contains(msg, `unknown filter "update_exploded"`) {
		t.Errorf("error %q does not name the value", msg)
	}
	for _, f := range Filters() {
		if !strings.Contains(msg, `"`+string(f)+`"`) {
			t.Errorf("error does not list %q as valid", f)
		}
	}
}

func TestGroups(t *testing.T) {
	t.Parallel()
	if got := Groups(); !slices.Equal(got, []Group{"stacks", "deployments", "environments"}) {
		t.Errorf("Groups() = %v, want the schema's order stacks, deployments, environments", got)
	}
	want := map[Group][]Kind{
		GroupStacks:      {KindStack, KindStackPreview, KindStackUpdate},
		GroupDeployments: {KindDeployment, KindDriftDetection, KindDriftRemediation},
		GroupEnvironments: {KindEnvironment, KindEnvironmentRevision, KindEnvironmentRevisionTag,
			KindEnvironmentTag, KindImportedEnvironmentChanged, KindEnvironmentRotation},
	}
	for g, kinds := range want {
		if !g.Valid() {
			t.Errorf("%s is not Valid", g)
		}
		if got := g.Kinds(); !slices.Equal(got, kinds) {
			t.Errorf("%s.Kinds() = %v, want %v", g, got, kinds)
		}
		k := g.Kinds()
		k[0] = "mangled"
		if g.Kinds()[0] == "mangled" {
			t.Errorf("changing %s.Kinds() changed the package's table", g)
		}
	}
	// Every kind but ping and policy_violation (whose filters are API-only, and whose group,
	// "policies", the schema does not have) is in exactly one group.
	for _, k := range append(Kinds(), KindPing) {
		var in []Group
		for _, g := range Groups() {
			if k.InGroup(g) {
				in = append(in, g)
			}
		}
		if wantN := 1 - boolInt(k == KindPing || k == KindPolicyViolation); len(in) != wantN {
			t.Errorf("kind %s is in groups %v, want %d group(s)", k, in, wantN)
		}
	}
	for _, g := range []Group{"", "stack", "Stacks", "change_requests"} {
		if g.Valid() || len(g.Kinds()) != 0 || KindStack.InGroup(g) {
			t.Errorf("unknown group %q is accepted", g)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestParseGroup(t *testing.T) {
	t.Parallel()
	for _, g := range Groups() {
		if got, err := ParseGroup(string(g)); err != nil || got != g {
			t.Errorf("ParseGroup(%q) = %q, %v", g, got, err)
		}
	}
	_, err := ParseGroup("stack")
	if err == nil {
		t.Fatal("ParseGroup accepts an unknown group")
	}
	for _, part := range []string{`unknown group "stack"`, `"stacks"`, `"deployments"`, `"environments"`} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %s", err, part)
		}
	}
}

func TestKinds(t *testing.T) {
	t.Parallel()
	got := Kinds()
	if len(got) != 13 {
		t.Errorf("Kinds() has %d kinds, want 13: %v", len(got), got)
	}
	if !slices.IsSorted(got) {
		t.Errorf("Kinds() is not sorted: %v", got)
	}
	if slices.Contains(got, KindPing) {
		t.Error("Kinds() lists ping")
	}
	for _, k := range got {
		found := false
		for _, f := range AllFilters() {
			found = found || f.Kind() == k
		}
		if !found {
			t.Errorf("kind %s has no filter", k)
		}
	}
}

func TestFilterSubject(t *testing.T) {
	t.Parallel()
	for _, f := range Filters() {
		want := ScopeStack
		if f.Kind().InGroup(GroupEnvironments) {
			want = ScopeEnvironment
		}
		if got := f.Subject(); got != want {
			t.Errorf("%s.Subject() = %q, want %q", f, got, want)
		}
	}
}

// TestReachesScope is the full filter x scope matrix: organization hooks receive every
// filter; stack and environment hooks receive the non-org-only filters about their kind of
// subject; nothing reaches an unknown scope kind.
func TestReachesScope(t *testing.T) {
	t.Parallel()
	for _, sf := range schemaFilters {
		f := Filter(sf.value)
		env := strings.HasPrefix(string(sf.kind), "environment") || sf.kind == KindImportedEnvironmentChanged
		want := map[ScopeKind]bool{
			ScopeOrganization: true,
			ScopeStack:        !sf.orgOnly && !env,
			ScopeEnvironment:  !sf.orgOnly && env,
			"":                false,
			"project":         false,
		}
		for s, w := range want {
			if got := f.ReachesScope(s); got != w {
				t.Errorf("%s.ReachesScope(%q) = %v, want %v", f, s, got, w)
			}
		}
	}
	for _, s := range []ScopeKind{ScopeOrganization, ScopeStack, ScopeEnvironment} {
		if Ping.ReachesScope(s) {
			t.Errorf("ping reaches %s hooks through matching", s)
		}
	}
}

// TestAPIOnlyFilters checks the policy violation filters: accepted (ParseFilter, Valid) and
// subscribable, stack events of kind policy_violation reaching stack and organization hooks,
// but not members of the schema's enum (Filters) nor of any group.
func TestAPIOnlyFilters(t *testing.T) {
	t.Parallel()
	all := AllFilters()
	if len(all) != 34 || !slices.Equal(all[:32], Filters()) {
		t.Fatalf("AllFilters() = %v, want the schema's 32 then the 2 API-only filters", all)
	}
	for _, f := range []Filter{PolicyViolationMandatory, PolicyViolationAdvisory} {
		if got, err := ParseFilter(string(f)); err != nil || got != f {
			t.Errorf("ParseFilter(%q) = %q, %v", f, got, err)
		}
		if !f.Valid() || !f.APIOnly() || f.OrgOnly() || f.Kind() != KindPolicyViolation || f.Subject() != ScopeStack {
			t.Errorf("%s: valid %v, apiOnly %v, orgOnly %v, kind %s, subject %s", f, f.Valid(), f.APIOnly(), f.OrgOnly(), f.Kind(), f.Subject())
		}
		if slices.Contains(Filters(), f) {
			t.Errorf("Filters() lists %s, which the schema does not have", f)
		}
		for _, s := range []ScopeKind{ScopeOrganization, ScopeStack} {
			if !f.ReachesScope(s) {
				t.Errorf("%s does not reach %s hooks", f, s)
			}
		}
		if f.ReachesScope(ScopeEnvironment) {
			t.Errorf("%s reaches environment hooks", f)
		}
	}
	for _, f := range Filters() {
		if f.APIOnly() {
			t.Errorf("schema filter %s is API-only", f)
		}
	}
	_, err := ParseFilter("policy_violation")
	if err == nil || !strings.Contains(err.Error(), `"policy_violation_advisory"`) {
		t.Errorf("ParseFilter(policy_violation) error %v does not list the API-only filters", err)
	}
}
