package storetest

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Hooks: create, get, list, update, delete, disable, and the candidates an event is matched
// against.

// runHooks runs the hook tests.
func runHooks(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"HookCreateGet", testHookCreateGet},
		{"HookCreateDuplicate", testHookCreateDuplicate},
		{"HookCreateGeneratedName", testHookCreateGeneratedName},
		{"HookCreateInvalid", testHookCreateInvalid},
		{"HookNotFound", testHookNotFound},
		{"HookList", testHookList},
		{"HookListPaging", testHookListPaging},
		{"HookListPagingInvalid", testHookListPagingInvalid},
		{"HookUpdate", testHookUpdate},
		{"HookUpdateDeactivateDiscards", testHookUpdateDeactivateDiscards},
		{"HookDelete", testHookDelete},
		{"HookDisable", testHookDisable},
		{"HookCandidates", testHookCandidates},
	})
}

func testHookCreateGet(t *testing.T, b *testBundle) {
	s := spec(stackScope("acme", "web", "prod"), "deploys")
	s.Secret = "s3cr3t-value"
	s.Format = webhook.FormatSlack
	s.Filters = []webhook.Filter{webhook.UpdateSucceeded, webhook.UpdateFailed}
	s.Groups = []webhook.Group{webhook.GroupDeployments}
	h := createHook(t, b, s)
	wantNoSecret(t, h)
	if h.ID == 0 || !h.HasSecret || len(h.SecretDigest) != 64 {
		t.Fatalf("created hook: ID %d HasSecret %v SecretDigest %q", h.ID, h.HasSecret, h.SecretDigest)
	}
	if h.SecretDigest == sha("s3cr3t-value") {
		t.Fatal("SecretDigest is the plain sha256 of the secret: a weak secret can be guessed offline; key it")
	}
	if !h.CreatedAt.Equal(T0) || !h.UpdatedAt.Equal(T0) {
		t.Fatalf("timestamps %v %v, want %v", h.CreatedAt, h.UpdatedAt, T0)
	}
	if h.Scope != s.Scope || h.Name != "deploys" || h.DisplayName != s.DisplayName || h.PayloadURL != s.PayloadURL ||
		!h.Active || h.Format != webhook.FormatSlack || !slices.Equal(h.Filters, s.Filters) || !slices.Equal(h.Groups, s.Groups) {
		t.Fatalf("created hook %+v does not match spec %+v", h, s)
	}
	got, err := b.st.HookGet(b.ctx, h.Ref())
	if err != nil {
		t.Fatalf("HookGet: %v", err)
	}
	wantNoSecret(t, got)
	if got.ID != h.ID || got.SecretDigest != h.SecretDigest || !slices.Equal(got.Filters, s.Filters) {
		t.Fatalf("HookGet = %+v, want %+v", got, h)
	}
	byID, err := b.st.HookGetByID(b.ctx, h.ID)
	if err != nil || byID.Ref() != h.Ref() {
		t.Fatalf("HookGetByID = %+v, %v", byID, err)
	}
	wantNoSecret(t, byID)
	secret, err := b.st.HookSecretGet(b.ctx, h.ID)
	if err != nil || secret != "s3cr3t-value" {
		t.Fatalf("HookSecretGet = %q, %v", secret, err)
	}

	// No secret, default format.
	plain := createHook(t, b, spec(orgScope("acme"), "plain"))
	if plain.HasSecret || plain.SecretDigest != "" || plain.Format != webhook.FormatRaw {
		t.Fatalf("hook without secret: HasSecret %v SecretDigest %q Format %q", plain.HasSecret, plain.SecretDigest, plain.Format)
	}
	if secret, err := b.st.HookSecretGet(b.ctx, plain.ID); err != nil || secret != "" {
		t.Fatalf("HookSecretGet of a hook without secret = %q, %v", secret, err)
	}
}

func testHookCreateDuplicate(t *testing.T, b *testBundle) {
	createHook(t, b, spec(stackScope("acme", "web", "prod"), "dup"))
	_, err := b.st.HookCreate(b.ctx, store.HookCreateParams{Spec: spec(stackScope("acme", "web", "prod"), "dup"), Now: T0})
	wantErr(t, "HookCreate of a taken name", err, store.ErrAlreadyExists)
	// The same name in other scopes is fine.
	createHook(t, b, spec(stackScope("acme", "web", "dev"), "dup"))
	createHook(t, b, spec(envScope("acme", "web", "prod"), "dup"))
	createHook(t, b, spec(orgScope("acme"), "dup"))
	createHook(t, b, spec(orgScope("other"), "dup"))
}

var generatedName = regexp.MustCompile(`^[0-9a-f]{8}$`)

func testHookCreateGeneratedName(t *testing.T, b *testBundle) {
	seen := map[string]bool{}
	for range 20 {
		h := createHook(t, b, spec(orgScope("acme"), ""))
		if !generatedName.MatchString(h.Name) {
			t.Fatalf("generated name %q is not 8 lowercase hex digits", h.Name)
		}
		if seen[h.Name] {
			t.Fatalf("generated name %q twice", h.Name)
		}
		seen[h.Name] = true
	}
}

func testHookCreateInvalid(t *testing.T, b *testBundle) {
	_, err := b.st.HookCreate(b.ctx, store.HookCreateParams{Spec: spec(webhook.Scope{}, "x"), Now: T0})
	if err == nil {
		t.Fatal("HookCreate without an organization succeeded")
	}
}

func testHookNotFound(t *testing.T, b *testBundle) {
	ref := store.HookRef{Scope: orgScope("acme"), Name: "missing"}
	_, err := b.st.HookGet(b.ctx, ref)
	wantErr(t, "HookGet", err, store.ErrNotFound)
	_, err = b.st.HookGetByID(b.ctx, 424242)
	wantErr(t, "HookGetByID", err, store.ErrNotFound)
	_, err = b.st.HookSecretGet(b.ctx, 424242)
	wantErr(t, "HookSecretGet", err, store.ErrNotFound)
	_, err = b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: ref, Spec: spec(orgScope("acme"), "missing"), Now: T0})
	wantErr(t, "HookUpdate", err, store.ErrNotFound)
	wantErr(t, "HookDelete", b.st.HookDelete(b.ctx, ref), store.ErrNotFound)
	wantErr(t, "HookDisable", b.st.HookDisable(b.ctx, store.HookDisableParams{ID: 424242, Reason: "x", Now: T0}), store.ErrNotFound)
	// A hook of the same name in another scope is not a match.
	createHook(t, b, spec(stackScope("acme", "p", "s"), "missing"))
	_, err = b.st.HookGet(b.ctx, ref)
	wantErr(t, "HookGet in another scope", err, store.ErrNotFound)
}

func testHookList(t *testing.T, b *testBundle) {
	for _, s := range []webhook.Spec{
		spec(stackScope("acme", "web", "prod"), "b"), spec(orgScope("acme"), "a"), spec(stackScope("acme", "web", "prod"), "a"),
		spec(envScope("acme", "web", "prod"), "a"), spec(orgScope("globex"), "a"), spec(stackScope("acme", "web", "dev"), "a"),
	} {
		s.Secret = "secret"
		createHook(t, b, s)
	}
	all, err := b.st.HookList(b.ctx, store.HookListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("HookList all = %v", refs(all))
	}
	for _, h := range all {
		wantNoSecret(t, h)
	}
	org, err := b.st.HookList(b.ctx, store.HookListParams{Scope: orgScope("acme")})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"acme/a", "acme/web/dev/a", "acme/web/prod/a", "acme/web/prod/b", "acme/web/prod/a"}; len(org) != 5 {
		t.Fatalf("HookList org = %v, want the 5 of %v", refs(org), want)
	}
	exact, err := b.st.HookList(b.ctx, store.HookListParams{Scope: stackScope("acme", "web", "prod"), Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := refs(exact); !slices.Equal(got, []string{"acme/web/prod/a", "acme/web/prod/b"}) {
		t.Fatalf("HookList exact stack = %v", got)
	}
	exactOrg, err := b.st.HookList(b.ctx, store.HookListParams{Scope: orgScope("acme"), Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := refs(exactOrg); !slices.Equal(got, []string{"acme/a"}) {
		t.Fatalf("HookList exact org = %v", got)
	}
	none, err := b.st.HookList(b.ctx, store.HookListParams{Scope: orgScope("nobody")})
	if err != nil || len(none) != 0 {
		t.Fatalf("HookList of an empty org = %v, %v", refs(none), err)
	}
}

// RunHookPaging runs the tests of the hook listing's pages alone, for a backend to run on a
// store whose database collation is not byte order (a locale's), where the full suite would
// be too slow to repeat.
func RunHookPaging(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{{"HookListPaging", testHookListPaging}})
}

// pagingNames are hook names whose byte order differs from a locale's: upper case before lower
// case, '-' and '.' before digits before upper case before '_' before lower case, and a
// locale that ignores punctuation would put "a-b", "a.b" and "a_b" next to "ab".
var pagingNames = []string{"b", "B", "a", "A", "_x", ".dot", "-dash", "9", "10", "Z", "a-b", "a.b", "a_b", "ab", "a0", "aB", "z"}

// testHookListPaging: After and Limit page one scope's hooks in byte order of the name, each
// page exactly the next names, whatever the scope's neighbours hold.
func testHookListPaging(t *testing.T, b *testBundle) {
	scope := stackScope("acme", "web", "prod")
	for _, name := range pagingNames {
		createHook(t, b, spec(scope, name))
	}
	// Neighbours with names between and around the scope's: none may show up in its pages.
	for _, sc := range []webhook.Scope{orgScope("acme"), stackScope("acme", "web", "dev"), envScope("acme", "web", "prod"), stackScope("acme", "web", "prod2")} {
		for _, name := range []string{"a", "a1", "Y", "zz"} {
			createHook(t, b, spec(sc, name))
		}
	}
	want := slices.Clone(pagingNames)
	slices.Sort(want) // byte order
	list := func(after string, limit int) []string {
		t.Helper()
		hs, err := b.st.HookList(b.ctx, store.HookListParams{Scope: scope, Exact: true, After: after, Limit: limit})
		if err != nil {
			t.Fatalf("HookList after %q limit %d: %v", after, limit, err)
		}
		names := make([]string, len(hs))
		for i, h := range hs {
			wantNoSecret(t, h)
			if h.Scope != scope {
				t.Fatalf("HookList after %q limit %d returned %s of another scope", after, limit, h.Ref())
			}
			names[i] = h.Name
		}
		return names
	}
	if got := list("", 0); !slices.Equal(got, want) {
		t.Fatalf("HookList exact (unpaged) = %q, want byte order %q", got, want)
	}
	for _, limit := range []int{1, 3, 5, len(want), len(want) + 1} {
		after, pages := "", 0
		for i := 0; ; i += limit {
			got := list(after, limit)
			end := min(i+limit, len(want))
			if next := want[min(i, len(want)):end]; !slices.Equal(got, next) {
				t.Fatalf("limit %d, page %d (after %q) = %q, want %q", limit, pages, after, got, next)
			}
			if len(got) < limit {
				break
			}
			after, pages = got[len(got)-1], pages+1
		}
	}
	for i, name := range want {
		if got := list(name, 0); !slices.Equal(got, want[i+1:]) {
			t.Fatalf("HookList after %q = %q, want %q", name, got, want[i+1:])
		}
	}
	// A cursor that is not a name (a hook deleted since) resumes at the next name.
	if got := list("a+", 2); !slices.Equal(got, []string{"a-b", "a.b"}) {
		t.Fatalf("HookList after \"a+\" = %q, want [a-b a.b]", got)
	}
	for _, after := range []string{want[len(want)-1], "zz", "~"} {
		if got := list(after, 0); len(got) != 0 {
			t.Fatalf("HookList after %q (past the end) = %q, want none", after, got)
		}
	}
	if got := list("", 1); !slices.Equal(got, want[:1]) {
		t.Fatalf("HookList limit 1 = %q, want %q", got, want[:1])
	}
}

// testHookListPagingInvalid: After and Limit page one scope only, and Limit is not negative;
// the errors name the field and the fix.
func testHookListPagingInvalid(t *testing.T, b *testBundle) {
	createHook(t, b, spec(orgScope("acme"), "a"))
	for _, c := range []struct {
		p    store.HookListParams
		want string
	}{
		{store.HookListParams{Scope: orgScope("acme"), Exact: true, Limit: -1}, "Limit is -1: give a positive page size"},
		{store.HookListParams{Scope: orgScope("acme"), After: "a"}, "After is set without Exact"},
		{store.HookListParams{Scope: orgScope("acme"), Limit: 10}, "Limit is set without Exact"},
		{store.HookListParams{Limit: 10}, "Limit is set without Exact"},
		{store.HookListParams{Exact: true, After: "a"}, "Scope.Org is empty with After or Limit"},
	} {
		hs, err := b.st.HookList(b.ctx, c.p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("HookList(%+v) = %v, %v; want an error containing %q", c.p, refs(hs), err, c.want)
		}
	}
}

func testHookUpdate(t *testing.T, b *testBundle) {
	s := spec(stackScope("acme", "web", "prod"), "h")
	s.Secret = "first"
	h := createHook(t, b, s)
	later := T0.Add(time.Hour)

	s2 := spec(stackScope("acme", "web", "prod"), "h")
	s2.DisplayName, s2.PayloadURL, s2.Format = "renamed", "https://example.org/new", webhook.FormatMicrosoftTeams
	s2.Filters = []webhook.Filter{webhook.PreviewFailed}
	s2.Secret = "ignored: only Params.Secret changes the secret"
	u, err := b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: s2, Now: later})
	if err != nil {
		t.Fatalf("HookUpdate: %v", err)
	}
	wantNoSecret(t, u)
	if u.ID != h.ID || u.DisplayName != "renamed" || u.PayloadURL != "https://example.org/new" || u.Format != webhook.FormatMicrosoftTeams ||
		!slices.Equal(u.Filters, s2.Filters) || len(u.Groups) != 0 || !u.CreatedAt.Equal(T0) || !u.UpdatedAt.Equal(later) {
		t.Fatalf("updated hook = %+v", u)
	}
	if u.SecretDigest != h.SecretDigest {
		t.Fatal("HookUpdate with a nil Secret changed the secret")
	}
	if got, _ := b.st.HookSecretGet(b.ctx, h.ID); got != "first" {
		t.Fatal("HookUpdate with a nil Secret changed the stored secret")
	}
	second := "second"
	u, err = b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: s2, Secret: &second, Now: later})
	if err != nil || u.SecretDigest == h.SecretDigest || u.SecretDigest == sha("second") || len(u.SecretDigest) != 64 || !u.HasSecret {
		t.Fatalf("HookUpdate replacing the secret = %+v, %v", u, err)
	}
	if got, _ := b.st.HookSecretGet(b.ctx, h.ID); got != "second" {
		t.Fatal("HookUpdate did not store the new secret")
	}
	empty := ""
	u, err = b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: s2, Secret: &empty, Now: later})
	if err != nil || u.HasSecret || u.SecretDigest != "" {
		t.Fatalf("HookUpdate removing the secret = %+v, %v", u, err)
	}
	if got, err := b.st.HookSecretGet(b.ctx, h.ID); got != "" || err != nil {
		t.Fatalf("secret after removal = %q, %v", got, err)
	}
	// Reactivating a disabled hook clears the reason.
	if err := b.st.HookDisable(b.ctx, store.HookDisableParams{ID: h.ID, Reason: "410 Gone", Now: later}); err != nil {
		t.Fatal(err)
	}
	u, err = b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: s2, Now: later})
	if err != nil || !u.Active || u.DisabledReason != "" {
		t.Fatalf("reactivated hook = %+v, %v", u, err)
	}
}

func testHookUpdateDeactivateDiscards(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	other := createHook(t, b, spec(orgScope("acme"), "other"))
	_, dids := emit(t, b, stackScope("acme", "p", "s"), webhook.UpdateSucceeded, enqueue{hook: h}, enqueue{hook: other})
	s := spec(orgScope("acme"), "h")
	s.Active = false
	u, err := b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: s, Now: T0})
	if err != nil || u.Active {
		t.Fatalf("HookUpdate deactivating = %+v, %v", u, err)
	}
	if d := getDelivery(t, b, dids[0]); d.State != store.DeliveryDiscarded {
		t.Fatalf("delivery of the deactivated hook is %s, want discarded", d.State)
	}
	if d := getDelivery(t, b, dids[1]); d.State != store.DeliveryPending {
		t.Fatalf("delivery of another hook is %s, want pending", d.State)
	}
}

func testHookDelete(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	keep := createHook(t, b, spec(orgScope("acme"), "keep"))
	evID, dids := emit(t, b, stackScope("acme", "p", "s"), webhook.UpdateSucceeded, enqueue{hook: h}, enqueue{hook: keep})
	cds := claim(t, b, "w1", T0, 10, 0)
	if len(cds) != 2 {
		t.Fatalf("claimed %d, want 2", len(cds))
	}
	for _, cd := range cds {
		if err := complete(b, cd, store.DeliveryPending, T0); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.st.HookDelete(b.ctx, h.Ref()); err != nil {
		t.Fatalf("HookDelete: %v", err)
	}
	_, err := b.st.HookGet(b.ctx, h.Ref())
	wantErr(t, "HookGet after delete", err, store.ErrNotFound)
	wantErr(t, "second HookDelete", b.st.HookDelete(b.ctx, h.Ref()), store.ErrNotFound)
	_, err = b.st.DeliveryGet(b.ctx, dids[0])
	wantErr(t, "DeliveryGet of a deleted hook's delivery", err, store.ErrNotFound)
	if atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); err != nil || len(atts) != 0 {
		t.Fatalf("attempts of a deleted hook = %d, %v", len(atts), err)
	}
	if _, err := b.st.EventGet(b.ctx, evID); err != nil {
		t.Fatalf("the event went with the hook: %v", err)
	}
	if d := getDelivery(t, b, dids[1]); d.State != store.DeliveryPending {
		t.Fatalf("other hook's delivery is %s", d.State)
	}
	if atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: keep.ID}); err != nil || len(atts) != 1 {
		t.Fatalf("attempts of the other hook = %d, %v", len(atts), err)
	}
	// A new hook with the old name starts clean.
	h2 := createHook(t, b, spec(orgScope("acme"), "h"))
	if h2.ID == h.ID {
		t.Fatal("a recreated hook reused the deleted hook's ID")
	}
}

func testHookDisable(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h})
	later := T0.Add(time.Minute)
	if err := b.st.HookDisable(b.ctx, store.HookDisableParams{ID: h.ID, Reason: "the endpoint answered 410 Gone", Now: later}); err != nil {
		t.Fatal(err)
	}
	got, err := b.st.HookGetByID(b.ctx, h.ID)
	if err != nil || got.Active || got.DisabledReason != "the endpoint answered 410 Gone" || !got.UpdatedAt.Equal(later) {
		t.Fatalf("disabled hook = %+v, %v", got, err)
	}
	for _, id := range dids {
		if d := getDelivery(t, b, id); d.State != store.DeliveryDiscarded {
			t.Fatalf("delivery of a disabled hook is %s", d.State)
		}
	}
	if cds := claim(t, b, "w", later, 10, 0); len(cds) != 0 {
		t.Fatalf("claimed %d deliveries of a disabled hook", len(cds))
	}
}

func testHookCandidates(t *testing.T, b *testBundle) {
	mk := func(sc webhook.Scope, name string, active bool) {
		s := spec(sc, name)
		s.Active = active
		s.Secret = "candidate-secret"
		createHook(t, b, s)
	}
	mk(orgScope("acme"), "org", true)
	mk(orgScope("acme"), "org-off", false)
	mk(stackScope("acme", "web", "prod"), "prod", true)
	mk(stackScope("acme", "web", "prod"), "prod-off", false)
	mk(stackScope("acme", "web", "dev"), "dev", true)
	mk(stackScope("acme", "api", "prod"), "api", true)
	mk(envScope("acme", "web", "prod"), "env", true)
	mk(orgScope("globex"), "org", true)
	mk(stackScope("globex", "web", "prod"), "prod", true)

	cases := []struct {
		subject webhook.Scope
		orgOnly bool
		want    []string
	}{
		{stackScope("acme", "web", "prod"), false, []string{"acme/org", "acme/web/prod/prod"}},
		{stackScope("acme", "web", "prod"), true, []string{"acme/org"}},
		{envScope("acme", "web", "prod"), false, []string{"acme/org", "acme/web/prod/env"}},
		{stackScope("acme", "web", "staging"), false, []string{"acme/org"}},
		{orgScope("acme"), false, []string{"acme/org"}},
		{stackScope("initech", "web", "prod"), false, nil},
	}
	for _, c := range cases {
		var got []*store.Hook
		err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
			var err error
			got, err = tx.HookCandidates(b.ctx, c.subject, c.orgOnly)
			return err
		})
		if err != nil {
			t.Fatalf("HookCandidates(%s): %v", c.subject, err)
		}
		names := refs(got)
		slices.Sort(names)
		if !slices.Equal(names, c.want) {
			t.Errorf("HookCandidates(%s, orgOnly %v) = %v, want %v", c.subject, c.orgOnly, names, c.want)
		}
		for _, h := range got {
			wantNoSecret(t, h)
			if !h.HasSecret {
				t.Errorf("candidate %s lost HasSecret", h.Ref())
			}
		}
	}
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		_, err := tx.HookCandidates(b.ctx, webhook.Scope{}, false)
		return err
	})
	if err == nil {
		t.Fatal("HookCandidates without an organization succeeded")
	}
}
