// Package storetest is the conformance suite every store.Store backend passes. A backend's
// tests call Run with a function that opens a fresh, empty store; Run then exercises every
// method, its success paths and its error paths (ErrNotFound, ErrAlreadyExists,
// ErrLeaseLost), lease expiry, the per-endpoint and per-organization caps, fair claims (first
// attempts and retries taking turns, round-robin across organizations and endpoints: see
// fairness.go), the queue's counters (stats.go), idempotency windows, pagination, and that
// secrets never come back in a Hook.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Opener opens a fresh, empty store for one test; the suite closes it.
type Opener func(t *testing.T) store.Store

// T0 is the suite's clock origin.
var T0 = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)

type testBundle struct {
	st  store.Store
	ctx context.Context
}

func setup(t *testing.T, open Opener) *testBundle {
	t.Helper()
	st := open(t)
	t.Cleanup(func() { _ = st.Close() })
	return &testBundle{st: st, ctx: t.Context()}
}

// Run runs the suite. Subtests run in parallel, each on its own store.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b *testBundle)
	}{
		{"HookCreateGet", testHookCreateGet},
		{"HookCreateDuplicate", testHookCreateDuplicate},
		{"HookCreateGeneratedName", testHookCreateGeneratedName},
		{"HookCreateInvalid", testHookCreateInvalid},
		{"HookNotFound", testHookNotFound},
		{"HookList", testHookList},
		{"HookUpdate", testHookUpdate},
		{"HookUpdateDeactivateDiscards", testHookUpdateDeactivateDiscards},
		{"HookDelete", testHookDelete},
		{"HookDisable", testHookDisable},
		{"HookCandidates", testHookCandidates},
		{"EventEmitRollback", testEventEmitRollback},
		{"EventInsertGet", testEventInsertGet},
		{"DeliveryInsertMany", testDeliveryInsertMany},
		{"DeliveryInsertInvalid", testDeliveryInsertInvalid},
		{"DeploymentRequests", testDeploymentRequests},
		{"DeploymentSettings", testDeploymentSettings},
		{"DeploymentSettingsKeyRotate", testDeploymentSettingsKeyRotate},
		{"Deployments", testDeployments},
		{"DeploymentsPruned", testDeploymentsPruned},
		{"DriftSchedules", testDriftSchedules},
		{"Idempotency", testIdempotency},
		{"ClaimBasics", testClaimBasics},
		{"ClaimInvalid", testClaimInvalid},
		{"ClaimOrder", testClaimOrder},
		{"ClaimPerEndpointCap", testClaimPerEndpointCap},
		{"ClaimBacklogDoesNotBlockOthers", testClaimBacklogDoesNotBlockOthers},
		{"ClaimExpiredLease", testClaimExpiredLease},
		{"ClaimConcurrent", testClaimConcurrent},
		{"Complete", testComplete},
		{"CompleteLeaseLost", testCompleteLeaseLost},
		{"CompleteDisableHook", testCompleteDisableHook},
		{"CompleteAfterHookDeleted", testCompleteAfterHookDeleted},
		{"CompleteMany", testCompleteMany},
		{"CompleteManyDisableHook", testCompleteManyDisableHook},
		{"CompleteManyCanceled", testCompleteManyCanceled},
		{"CompleteManyMixed", testCompleteManyMixed},
		{"CompleteManyLarge", testCompleteManyLarge},
		{"ClaimCrowdedWindow", testClaimCrowdedWindow},
		{"ClaimRetryNotStarved", testClaimRetryNotStarved},
		{"ClaimRoundRobinOrgs", testClaimRoundRobinOrgs},
		{"ClaimPerOrgCap", testClaimPerOrgCap},
		{"Cycle", testCycle},
		{"CycleInvalidClaim", testCycleInvalidClaim},
		{"CycleCanceled", testCycleCanceled},
		{"SharedBodies", testSharedBodies},
		{"AttemptRecordPing", testAttemptRecordPing},
		{"AttemptRecordRedelivery", testAttemptRecordRedelivery},
		{"AttemptListPaging", testAttemptListPaging},
		{"DeliveryStats", testDeliveryStats},
		{"DeliveryStatsCounts", testDeliveryStatsCounts},
		{"Tokens", testTokens},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, setup(t, open))
		})
	}
}

// Fixtures.

func orgScope(org string) webhook.Scope { return webhook.Scope{Org: org} }
func stackScope(org, project, stack string) webhook.Scope {
	return webhook.Scope{Org: org, Project: project, Stack: stack}
}
func envScope(org, project, env string) webhook.Scope {
	return webhook.Scope{Org: org, Project: project, Environment: env}
}

func spec(sc webhook.Scope, name string) webhook.Spec {
	return webhook.Spec{Scope: sc, Name: name, DisplayName: "hook " + name, PayloadURL: "https://example.com/" + name, Active: true}
}

func createHook(t *testing.T, b *testBundle, s webhook.Spec) *store.Hook {
	t.Helper()
	h, err := b.st.HookCreate(b.ctx, store.HookCreateParams{Spec: s, Now: T0})
	if err != nil {
		t.Fatalf("HookCreate(%s): %v", s.Scope.String()+"/"+s.Name, err)
	}
	return h
}

type enqueue struct {
	hook     *store.Hook
	endpoint string
	next     time.Time
}

// emit stores one event with a delivery per entry and returns the delivery IDs.
func emit(t *testing.T, b *testBundle, subject webhook.Scope, f webhook.Filter, ds ...enqueue) (string, []string) {
	t.Helper()
	ev := &store.Event{Filter: f, Kind: f.Kind(), Subject: subject, Payload: []byte(`{"kind":"` + string(f.Kind()) + `"}`), CreatedAt: T0}
	var ids []string
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		params := make([]store.DeliveryInsertParams, len(ds))
		for i, d := range ds {
			ep := d.endpoint
			if ep == "" {
				ep = "example.com:443"
			}
			params[i] = store.DeliveryInsertParams{HookID: d.hook.ID, Format: d.hook.Format, Body: []byte(fmt.Sprintf(`{"n":%d}`, i)),
				Endpoint: ep, State: store.DeliveryPending, NextAttemptAt: d.next}
		}
		if err := tx.DeliveryInsertMany(b.ctx, ev.ID, T0, params); err != nil {
			return err
		}
		for _, p := range params {
			ids = append(ids, p.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("EventEmit: %v", err)
	}
	if ev.ID == "" {
		t.Fatal("EventInsert did not set the event ID")
	}
	for _, id := range ids {
		if id == "" {
			t.Fatal("DeliveryInsertMany did not set a delivery ID")
		}
	}
	return ev.ID, ids
}

func claim(t *testing.T, b *testBundle, worker string, now time.Time, limit, perEndpoint int) []*store.ClaimedDelivery {
	t.Helper()
	cds, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: worker, Now: now, Lease: time.Minute, Limit: limit, PerEndpointLimit: perEndpoint})
	if err != nil {
		t.Fatalf("DeliveryClaim: %v", err)
	}
	return cds
}

func complete(b *testBundle, cd *store.ClaimedDelivery, state store.DeliveryState, now time.Time) error {
	return b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{
		ID: cd.ID, Worker: cd.ClaimedBy, Attempt: cd.Attempts, State: state, Now: now,
		NextAttemptAt: now.Add(time.Minute),
		Record:        store.Attempt{StartedAt: now, Duration: time.Millisecond, RequestURL: cd.URL, RequestBody: cd.Body, ResponseCode: 200},
	})
}

func getDelivery(t *testing.T, b *testBundle, id string) *store.Delivery {
	t.Helper()
	d, err := b.st.DeliveryGet(b.ctx, id)
	if err != nil {
		t.Fatalf("DeliveryGet(%s): %v", id, err)
	}
	return d
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func wantNoSecret(t *testing.T, h *store.Hook) {
	t.Helper()
	if h.Secret != "" {
		t.Fatalf("hook %s came back with its secret", h.Ref())
	}
}

func sha(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

func ids(ds []*store.ClaimedDelivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// Hooks.

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

func refs(hs []*store.Hook) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Ref().String()
	}
	return out
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

// Events and deliveries.

func testEventEmitRollback(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	ev := &store.Event{ID: "ev-rollback", Filter: webhook.StackCreated, Subject: orgScope("acme"), Payload: []byte(`{}`), CreatedAt: T0}
	boom := errors.New("boom")
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		if err := tx.DeliveryInsertMany(b.ctx, ev.ID, T0, []store.DeliveryInsertParams{{ID: "d-rollback", HookID: h.ID, Body: []byte(`{}`)}}); err != nil {
			return err
		}
		if err := tx.IdempotencyPut(b.ctx, "acme", "k", []byte("resp"), T0); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, "EventEmit", err, boom)
	_, err = b.st.EventGet(b.ctx, "ev-rollback")
	wantErr(t, "EventGet after rollback", err, store.ErrNotFound)
	_, err = b.st.DeliveryGet(b.ctx, "d-rollback")
	wantErr(t, "DeliveryGet after rollback", err, store.ErrNotFound)
	err = b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		_, err := tx.IdempotencyGet(b.ctx, "acme", "k", T0.Add(-time.Hour))
		return err
	})
	wantErr(t, "IdempotencyGet after rollback", err, store.ErrNotFound)
}

func testEventInsertGet(t *testing.T, b *testBundle) {
	ev := &store.Event{Filter: webhook.DeploymentQueued, Subject: stackScope("acme", "web", "prod"), Payload: []byte(`{"a":1}`),
		Cause: []string{"acme/web/dev", "acme/web/prod"}, CreatedAt: T0}
	if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.EventInsert(b.ctx, ev) }); err != nil {
		t.Fatal(err)
	}
	got, err := b.st.EventGet(b.ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.Filter != ev.Filter || got.Kind != webhook.KindDeployment || got.Subject != ev.Subject ||
		string(got.Payload) != `{"a":1}` || !slices.Equal(got.Cause, ev.Cause) || !got.CreatedAt.Equal(T0) {
		t.Fatalf("EventGet = %+v, want %+v", got, ev)
	}
	dup := *ev
	err = b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.EventInsert(b.ctx, &dup) })
	wantErr(t, "EventInsert of a taken ID", err, store.ErrAlreadyExists)
	_, err = b.st.EventGet(b.ctx, "no-such-event")
	wantErr(t, "EventGet", err, store.ErrNotFound)
	for _, bad := range []*store.Event{nil, {Filter: webhook.StackCreated, Payload: []byte(`{}`)}, {Filter: webhook.StackCreated, Subject: orgScope("acme")}} {
		if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.EventInsert(b.ctx, bad) }); err == nil {
			t.Fatalf("EventInsert(%+v) succeeded", bad)
		}
	}
}

func testDeliveryInsertMany(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	ev := &store.Event{Filter: webhook.UpdateFailed, Subject: stackScope("acme", "web", "prod"), Payload: []byte(`{}`), CreatedAt: T0}
	const n = 450 // crosses batch boundaries in batching backends
	params := make([]store.DeliveryInsertParams, n)
	for i := range params {
		params[i] = store.DeliveryInsertParams{HookID: h.ID, Format: webhook.FormatSlack, Body: []byte(fmt.Sprintf(`{"i":%d}`, i)),
			Endpoint: fmt.Sprintf("host%d:443", i%7)}
	}
	params[3].State = store.DeliverySucceeded
	params[4].NextAttemptAt = T0.Add(time.Hour)
	params[5].ID = "explicit-id"
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(b.ctx, ev.ID, T0, params)
	})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := b.st.DeliveryListByEvent(b.ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != n {
		t.Fatalf("DeliveryListByEvent = %d deliveries, want %d", len(ds), n)
	}
	for i, d := range ds {
		if d.ID != params[i].ID || string(d.Body) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("delivery %d = %s %s, want %s in insertion order", i, d.ID, d.Body, params[i].ID)
		}
		wantState, wantNext := store.DeliveryPending, T0
		switch i {
		case 3:
			wantState = store.DeliverySucceeded
		case 4:
			wantNext = T0.Add(time.Hour)
		}
		if d.EventID != ev.ID || d.HookID != h.ID || d.Filter != webhook.UpdateFailed || d.Kind != webhook.KindStackUpdate ||
			d.Format != webhook.FormatSlack || d.Endpoint != params[i].Endpoint || d.State != wantState || d.Attempts != 0 ||
			!d.NextAttemptAt.Equal(wantNext) || !d.CreatedAt.Equal(T0) || !d.LeaseUntil.IsZero() || d.ClaimedBy != "" {
			t.Fatalf("delivery %d = %+v", i, d)
		}
	}
	if ds[5].ID != "explicit-id" {
		t.Fatalf("explicit delivery ID not kept: %s", ds[5].ID)
	}
	seen := map[string]bool{}
	for _, d := range ds {
		if seen[d.ID] {
			t.Fatalf("delivery ID %s twice", d.ID)
		}
		seen[d.ID] = true
	}
	if got, err := b.st.DeliveryListByEvent(b.ctx, "no-such-event"); err != nil || len(got) != 0 {
		t.Fatalf("DeliveryListByEvent of an unknown event = %d, %v", len(got), err)
	}
	_, err = b.st.DeliveryGet(b.ctx, "no-such-delivery")
	wantErr(t, "DeliveryGet", err, store.ErrNotFound)
}

func testDeliveryInsertInvalid(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	evID, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	try := func(eventID string, d store.DeliveryInsertParams) error {
		return b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
			return tx.DeliveryInsertMany(b.ctx, eventID, T0, []store.DeliveryInsertParams{d})
		})
	}
	wantErr(t, "DeliveryInsertMany for an unknown event", try("no-such-event", store.DeliveryInsertParams{HookID: h.ID}), store.ErrNotFound)
	wantErr(t, "DeliveryInsertMany with a taken ID", try(evID, store.DeliveryInsertParams{ID: dids[0], HookID: h.ID}), store.ErrAlreadyExists)
	if err := try(evID, store.DeliveryInsertParams{HookID: h.ID, State: store.DeliveryRunning}); err == nil {
		t.Fatal("inserting a running delivery succeeded")
	}
	if err := try(evID, store.DeliveryInsertParams{}); err == nil {
		t.Fatal("inserting a delivery without a hook succeeded")
	}
	if err := try(evID, store.DeliveryInsertParams{HookID: 987654}); err == nil {
		t.Fatal("inserting a delivery for a missing hook succeeded")
	}
	if ds, _ := b.st.DeliveryListByEvent(b.ctx, evID); len(ds) != 1 {
		t.Fatalf("failed inserts left %d deliveries, want 1", len(ds))
	}
}

func testDeploymentRequests(t *testing.T, b *testBundle) {
	h := createHook(t, b, webhook.Spec{Scope: stackScope("acme", "web", "dev"), Name: "deploy", DisplayName: "d", PayloadURL: "web/prod",
		Active: true, Format: webhook.FormatPulumiDeployments})
	ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: stackScope("acme", "web", "dev"), Payload: []byte(`{}`), CreatedAt: T0}
	reqs := []*store.DeploymentRequest{
		{Target: stackScope("acme", "web", "prod"), HookID: h.ID, Cause: []string{"acme/web/prod"}, CreatedAt: T0},
		{Target: stackScope("acme", "web", "prod"), HookID: h.ID, Cause: []string{"acme/web/prod", "acme/web/prod"}, Status: "cycle_detected",
			Reason: "acme/web/prod is already in the chain", CreatedAt: T0.Add(time.Second)},
		{Target: stackScope("acme", "api", "prod"), HookID: h.ID, Status: "skipped",
			Reason: "too many deployments from one event (limit 100)", CreatedAt: T0},
	}
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		for _, r := range reqs {
			r.EventID = ev.ID
			if err := tx.DeploymentRequestInsert(b.ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.st.DeploymentRequestList(b.ctx, stackScope("acme", "web", "prod"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("DeploymentRequestList = %d, want 2", len(got))
	}
	if got[0].ID != reqs[0].ID || got[0].Status != "queued" || got[0].EventID != ev.ID || got[0].HookID != h.ID ||
		!slices.Equal(got[0].Cause, reqs[0].Cause) || !got[0].CreatedAt.Equal(T0) || got[0].Target != reqs[0].Target {
		t.Fatalf("first request = %+v, want %+v", got[0], reqs[0])
	}
	if got[1].Status != "cycle_detected" || got[1].Reason != reqs[1].Reason {
		t.Fatalf("second request = %+v", got[1])
	}
	all, err := b.st.DeploymentRequestList(b.ctx, orgScope("acme"))
	if err != nil || len(all) != 3 {
		t.Fatalf("DeploymentRequestList(org) = %d, %v", len(all), err)
	}
	// A skipped request is recorded with its reason, for the record of what was asked.
	if i := slices.IndexFunc(all, func(r *store.DeploymentRequest) bool { return r.ID == reqs[2].ID }); i < 0 ||
		all[i].Status != "skipped" || all[i].Reason != reqs[2].Reason {
		t.Fatalf("skipped request = %+v", all)
	}
	none, err := b.st.DeploymentRequestList(b.ctx, stackScope("acme", "web", "qa"))
	if err != nil || len(none) != 0 {
		t.Fatalf("DeploymentRequestList of another stack = %d, %v", len(none), err)
	}
	if _, err := b.st.DeploymentRequestList(b.ctx, webhook.Scope{}); err == nil {
		t.Fatal("DeploymentRequestList without an organization succeeded")
	}
	err = b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		return tx.DeploymentRequestInsert(b.ctx, &store.DeploymentRequest{ID: reqs[0].ID, Target: reqs[0].Target, EventID: ev.ID, CreatedAt: T0})
	})
	wantErr(t, "DeploymentRequestInsert of a taken ID", err, store.ErrAlreadyExists)
	err = b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		return tx.DeploymentRequestInsert(b.ctx, &store.DeploymentRequest{Target: orgScope("acme"), EventID: ev.ID, CreatedAt: T0})
	})
	if err == nil {
		t.Fatal("DeploymentRequestInsert without a stack succeeded")
	}
}

func testIdempotency(t *testing.T, b *testBundle) {
	get := func(org, key string, since time.Time) ([]byte, error) {
		var out []byte
		err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
			var err error
			out, err = tx.IdempotencyGet(b.ctx, org, key, since)
			return err
		})
		return out, err
	}
	put := func(org, key, resp string, now time.Time) {
		t.Helper()
		if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.IdempotencyPut(b.ctx, org, key, []byte(resp), now) }); err != nil {
			t.Fatal(err)
		}
	}
	_, err := get("acme", "k1", T0.Add(-24*time.Hour))
	wantErr(t, "IdempotencyGet of an unknown key", err, store.ErrNotFound)
	put("acme", "k1", "first", T0)
	if got, err := get("acme", "k1", T0.Add(-24*time.Hour)); err != nil || string(got) != "first" {
		t.Fatalf("IdempotencyGet inside the window = %q, %v", got, err)
	}
	if got, err := get("acme", "k1", T0); err != nil || string(got) != "first" {
		t.Fatalf("IdempotencyGet at the window's edge = %q, %v", got, err)
	}
	_, err = get("acme", "k1", T0.Add(time.Nanosecond))
	wantErr(t, "IdempotencyGet after the window", err, store.ErrNotFound)
	_, err = get("globex", "k1", T0.Add(-time.Hour))
	wantErr(t, "IdempotencyGet in another org", err, store.ErrNotFound)
	// After the window the key can be used again.
	later := T0.Add(25 * time.Hour)
	put("acme", "k1", "second", later)
	if got, err := get("acme", "k1", later.Add(-24*time.Hour)); err != nil || string(got) != "second" {
		t.Fatalf("IdempotencyGet of a reused key = %q, %v", got, err)
	}
	if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.IdempotencyPut(b.ctx, "", "k", nil, T0) }); err == nil {
		t.Fatal("IdempotencyPut without an organization succeeded")
	}
}

// Claiming.

func testClaimBasics(t *testing.T, b *testBundle) {
	s := spec(orgScope("acme"), "h")
	s.Secret = "claim-secret"
	h := createHook(t, b, s)
	_, dids := emit(t, b, stackScope("acme", "p", "s"), webhook.UpdateSucceeded,
		enqueue{hook: h}, enqueue{hook: h, next: T0.Add(time.Hour)})
	now := T0.Add(time.Second)
	cds := claim(t, b, "worker-1", now, 10, 0)
	if len(cds) != 1 || cds[0].ID != dids[0] {
		t.Fatalf("claimed %v, want only the due %s", ids(cds), dids[0])
	}
	cd := cds[0]
	if cd.State != store.DeliveryRunning || cd.Attempts != 1 || cd.ClaimedBy != "worker-1" || !cd.LeaseUntil.Equal(now.Add(time.Minute)) ||
		!cd.UpdatedAt.Equal(now) || cd.URL != h.PayloadURL || cd.Secret != "claim-secret" || !cd.HookActive ||
		cd.HookID != h.ID || cd.Filter != webhook.UpdateSucceeded || cd.Kind != webhook.KindStackUpdate || string(cd.Body) != `{"n":0}` {
		t.Fatalf("claimed delivery = %+v", cd)
	}
	stored := getDelivery(t, b, cd.ID)
	if stored.State != store.DeliveryRunning || stored.Attempts != 1 || stored.ClaimedBy != "worker-1" {
		t.Fatalf("stored claimed delivery = %+v", stored)
	}
	if again := claim(t, b, "worker-2", now, 10, 0); len(again) != 0 {
		t.Fatalf("a held delivery was claimed again: %v", ids(again))
	}
	if err := complete(b, cd, store.DeliverySucceeded, now); err != nil {
		t.Fatal(err)
	}
	// The hook's URL and secret are read at claim time.
	url2, secret2 := "https://example.net/moved", "rotated"
	s.PayloadURL = url2
	if _, err := b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: s, Secret: &secret2, Now: now}); err != nil {
		t.Fatal(err)
	}
	later := T0.Add(2 * time.Hour)
	cds = claim(t, b, "worker-1", later, 10, 0)
	if len(cds) != 1 || cds[0].ID != dids[1] || cds[0].URL != url2 || cds[0].Secret != secret2 {
		t.Fatalf("claim after update = %+v", cds)
	}
	if got := claim(t, b, "worker-1", later, 0, 0); len(got) != 0 {
		t.Fatalf("Limit 0 claimed %d", len(got))
	}
}

func testClaimInvalid(t *testing.T, b *testBundle) {
	for _, p := range []store.DeliveryClaimParams{
		{Now: T0, Lease: time.Minute, Limit: 1},
		{Worker: "w", Now: T0, Limit: 1},
		{Worker: "w", Now: T0, Lease: time.Minute, Limit: 1, PerEndpointLimit: -1},
	} {
		if _, err := b.st.DeliveryClaim(b.ctx, p); err == nil {
			t.Errorf("DeliveryClaim(%+v) succeeded", p)
		}
	}
}

func testClaimOrder(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	// Three deliveries; the first becomes a retry due earliest. First attempts and retries
	// take turns: a claim of two takes the retry and the first attempt due first.
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h, next: T0})
	cds := claim(t, b, "w", T0, 1, 0)
	if len(cds) != 1 {
		t.Fatal("nothing to claim")
	}
	if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cds[0].ID, Worker: "w", Attempt: 1, State: store.DeliveryPending,
		NextAttemptAt: T0.Add(time.Second), Record: store.Attempt{StartedAt: T0, ResponseCode: 500}, Now: T0}); err != nil {
		t.Fatal(err)
	}
	_, later := emit(t, b, orgScope("acme"), webhook.StackDeleted,
		enqueue{hook: h, next: T0.Add(3 * time.Second)}, enqueue{hook: h, next: T0.Add(2 * time.Second)})
	now := T0.Add(time.Minute)
	got := ids(claim(t, b, "w", now, 2, 0))
	if want := []string{later[1], dids[0]}; !slices.Equal(got, want) {
		t.Fatalf("claim = %v, want the first attempt due first and the retry %v (first attempts listed first)", got, want)
	}
	if got := ids(claim(t, b, "w", now, 5, 0)); !slices.Equal(got, []string{later[0]}) {
		t.Fatalf("then claimed %v, want the other first attempt %s", got, later[0])
	}
}

func testClaimPerEndpointCap(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	var es []enqueue
	for i := range 10 {
		es = append(es, enqueue{hook: h, endpoint: "slow:443", next: T0.Add(time.Duration(i) * time.Millisecond)})
	}
	es = append(es, enqueue{hook: h, endpoint: "fast:443", next: T0.Add(time.Second)}, enqueue{hook: h, endpoint: "fast:443", next: T0.Add(time.Second)})
	emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	now := T0.Add(time.Minute)
	first := claim(t, b, "w1", now, 100, 3)
	count := func(cds []*store.ClaimedDelivery) map[string]int {
		m := map[string]int{}
		for _, cd := range cds {
			m[cd.Endpoint]++
		}
		return m
	}
	if c := count(first); c["slow:443"] != 3 || c["fast:443"] != 2 || len(first) != 5 {
		t.Fatalf("first claim per endpoint = %v, want slow 3 fast 2", c)
	}
	// Another worker sees the held leases: the slow endpoint is full.
	if second := claim(t, b, "w2", now, 100, 3); len(second) != 0 {
		t.Fatalf("second worker claimed %v past the cap", count(second))
	}
	// A raised cap admits more, counting what is held.
	if c := count(claim(t, b, "w2", now, 100, 5)); c["slow:443"] != 2 || len(c) != 1 {
		t.Fatalf("claim with cap 5 = %v, want slow 2", c)
	}
	// Finishing one frees one slot.
	var slow *store.ClaimedDelivery
	for _, cd := range first {
		if cd.Endpoint == "slow:443" {
			slow = cd
			break
		}
	}
	if err := complete(b, slow, store.DeliverySucceeded, now); err != nil {
		t.Fatal(err)
	}
	if c := count(claim(t, b, "w3", now, 100, 5)); c["slow:443"] != 1 || len(c) != 1 {
		t.Fatalf("claim after one finished = %v, want slow 1", c)
	}
	// An expired lease no longer counts against the cap.
	if c := count(claim(t, b, "w4", now.Add(2*time.Minute), 100, 5)); c["slow:443"] != 5 || c["fast:443"] != 2 {
		t.Fatalf("claim after leases expired = %v, want slow 5 fast 2", c)
	}
}

// A slow endpoint with a large backlog due first must not hold back other endpoints' work
// once it is at its cap.
func testClaimBacklogDoesNotBlockOthers(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	es := make([]enqueue, 0, 505)
	for i := range 500 {
		es = append(es, enqueue{hook: h, endpoint: "slow:443", next: T0.Add(time.Duration(i) * time.Microsecond)})
	}
	for range 5 {
		es = append(es, enqueue{hook: h, endpoint: "fast:443", next: T0.Add(time.Second)})
	}
	emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	now := T0.Add(time.Minute)
	counts := map[string]int{}
	for i := range 2 {
		for _, cd := range claim(t, b, fmt.Sprint("w", i), now, 10, 5) {
			counts[cd.Endpoint]++
		}
	}
	if counts["slow:443"] != 5 || counts["fast:443"] != 5 {
		t.Fatalf("two claims took %v, want slow 5 (its cap) and all 5 fast", counts)
	}
}

func testClaimExpiredLease(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd1, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "dead", Now: T0, Lease: 10 * time.Second, Limit: 1})
	if err != nil || len(cd1) != 1 {
		t.Fatalf("first claim = %d, %v", len(cd1), err)
	}
	// Before the lease ends nobody else gets it.
	if got := claim(t, b, "alive", T0.Add(9*time.Second), 10, 0); len(got) != 0 {
		t.Fatal("a live lease was taken")
	}
	cd2 := claim(t, b, "alive", T0.Add(11*time.Second), 10, 0)
	if len(cd2) != 1 || cd2[0].ID != dids[0] || cd2[0].Attempts != 2 || cd2[0].ClaimedBy != "alive" {
		t.Fatalf("reclaim = %+v", cd2)
	}
	err = complete(b, cd1[0], store.DeliverySucceeded, T0.Add(12*time.Second))
	wantErr(t, "DeliveryComplete by the worker whose lease expired", err, store.ErrLeaseLost)
	if err := complete(b, cd2[0], store.DeliverySucceeded, T0.Add(12*time.Second)); err != nil {
		t.Fatalf("DeliveryComplete by the new holder: %v", err)
	}
	if d := getDelivery(t, b, dids[0]); d.State != store.DeliverySucceeded || d.Attempts != 2 {
		t.Fatalf("delivery = %+v", d)
	}
}

func testClaimConcurrent(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	const n = 300
	es := make([]enqueue, n)
	for i := range es {
		es[i] = enqueue{hook: h, endpoint: fmt.Sprintf("e%d:443", i%10)}
	}
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", w)
			for {
				cds, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: worker, Now: T0.Add(time.Second), Lease: time.Hour, Limit: 7, PerEndpointLimit: 0})
				if err != nil {
					errs <- err
					return
				}
				if len(cds) == 0 {
					return
				}
				for _, cd := range cds {
					mu.Lock()
					if prev, ok := seen[cd.ID]; ok {
						mu.Unlock()
						errs <- fmt.Errorf("delivery %s claimed by %s and %s", cd.ID, prev, worker)
						return
					}
					seen[cd.ID] = worker
					mu.Unlock()
					if err := complete(b, cd, store.DeliverySucceeded, T0.Add(time.Second)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != len(dids) {
		t.Fatalf("claimed %d of %d deliveries", len(seen), len(dids))
	}
}

// Completion.

func testComplete(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	rec := store.Attempt{
		StartedAt: T0, Duration: 1500 * time.Millisecond, RequestURL: cd.URL,
		RequestHeaders: map[string][]string{"Pulumi-Webhook-Id": {cd.ID}}, RequestBody: cd.Body,
		ResponseCode: 503, ResponseHeaders: map[string][]string{"Retry-After": {"30"}}, ResponseBody: []byte("busy"),
	}
	retryAt := T0.Add(30 * time.Second)
	if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliveryPending,
		NextAttemptAt: retryAt, Record: rec, Now: T0.Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	d := getDelivery(t, b, dids[0])
	if d.State != store.DeliveryPending || !d.NextAttemptAt.Equal(retryAt) || d.Attempts != 1 || d.LastError == "" || !d.LeaseUntil.IsZero() {
		t.Fatalf("delivery after a retryable failure = %+v", d)
	}
	if got := claim(t, b, "w", retryAt.Add(-time.Nanosecond), 1, 0); len(got) != 0 {
		t.Fatal("a retry was claimed before its time")
	}
	cd = claim(t, b, "w", retryAt, 1, 0)[0]
	if cd.Attempts != 2 {
		t.Fatalf("retry attempt number %d, want 2", cd.Attempts)
	}
	rec.ResponseCode, rec.ResponseBody, rec.ResponseHeaders = 200, []byte("ok"), nil
	if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 2, State: store.DeliverySucceeded,
		Record: rec, Now: retryAt}); err != nil {
		t.Fatal(err)
	}
	if d := getDelivery(t, b, dids[0]); d.State != store.DeliverySucceeded || d.Attempts != 2 || !d.UpdatedAt.Equal(retryAt) {
		t.Fatalf("delivery after success = %+v", d)
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil || len(atts) != 2 {
		t.Fatalf("AttemptList = %d, %v", len(atts), err)
	}
	a1, a2 := atts[1], atts[0]
	if a2.Number != 2 || a2.ResponseCode != 200 || string(a2.ResponseBody) != "ok" || a1.Number != 1 || a1.ResponseCode != 503 ||
		a1.ResponseHeaders["Retry-After"][0] != "30" || a1.RequestHeaders["Pulumi-Webhook-Id"][0] != cd.ID || a1.Duration != 1500*time.Millisecond ||
		!a1.StartedAt.Equal(T0) || a1.DeliveryID != cd.ID || a1.HookID != h.ID || a1.Filter != webhook.StackCreated || a1.Kind != webhook.KindStack ||
		string(a1.RequestBody) != string(cd.Body) || a1.RequestURL != h.PayloadURL || a2.ID <= a1.ID {
		t.Fatalf("attempts = %+v / %+v", a1, a2)
	}
	err = b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 2, State: store.DeliveryRunning, Now: T0})
	if err == nil || errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("DeliveryComplete to running = %v, want a validation error", err)
	}
}

func testCompleteLeaseLost(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	try := func(worker string, attempt int) error {
		return b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: worker, Attempt: attempt, State: store.DeliverySucceeded, Now: T0})
	}
	wantErr(t, "complete by another worker", try("other", 1), store.ErrLeaseLost)
	wantErr(t, "complete with another attempt number", try("w", 2), store.ErrLeaseLost)
	wantErr(t, "complete of an unknown delivery", b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: "nope", Worker: "w", Attempt: 1,
		State: store.DeliverySucceeded, Now: T0}), store.ErrLeaseLost)
	if err := try("w", 1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second completion", try("w", 1), store.ErrLeaseLost)
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 1 {
		t.Fatalf("rejected completions recorded attempts: %d", len(atts))
	}
}

func testCompleteDisableHook(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	other := createHook(t, b, spec(orgScope("acme"), "other"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated,
		enqueue{hook: h}, enqueue{hook: h, endpoint: "held:443"}, enqueue{hook: h, next: T0.Add(time.Hour)}, enqueue{hook: other})
	cds := claim(t, b, "w", T0, 2, 0)
	if len(cds) != 2 {
		t.Fatalf("claimed %d", len(cds))
	}
	reason := "the endpoint answered 410 Gone"
	if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: dids[0], Worker: "w", Attempt: 1, State: store.DeliveryFailed,
		Record: store.Attempt{ResponseCode: 410, StartedAt: T0}, DisableHookReason: reason, Now: T0}); err != nil {
		t.Fatal(err)
	}
	got, _ := b.st.HookGetByID(b.ctx, h.ID)
	if got.Active || got.DisabledReason != reason {
		t.Fatalf("hook after 410 = active %v reason %q", got.Active, got.DisabledReason)
	}
	want := []store.DeliveryState{store.DeliveryFailed, store.DeliveryDiscarded, store.DeliveryDiscarded, store.DeliveryPending}
	for i, id := range dids {
		if d := getDelivery(t, b, id); d.State != want[i] {
			t.Fatalf("delivery %d is %s, want %s", i, d.State, want[i])
		}
	}
	// The other worker's hold on the discarded delivery is gone.
	wantErr(t, "complete of a discarded delivery", complete(b, cds[1], store.DeliverySucceeded, T0), store.ErrLeaseLost)
	if st, _ := b.st.DeliveryStats(b.ctx, T0); st.HooksDisabled != 1 {
		t.Fatalf("HooksDisabled = %d", st.HooksDisabled)
	}
}

func testCompleteAfterHookDeleted(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	if err := b.st.HookDelete(b.ctx, h.Ref()); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "complete after the hook was deleted", complete(b, cd, store.DeliverySucceeded, T0), store.ErrLeaseLost)
}

// testCompleteMany completes a batch in which some items succeed, one retries, and others
// are refused each for its own reason; the refused ones write nothing and do not stop the
// others.
func testCompleteMany(t *testing.T, b *testBundle) {
	if errs := b.st.DeliveryCompleteMany(b.ctx, nil); len(errs) != 0 {
		t.Fatalf("DeliveryCompleteMany(nil) = %v", errs)
	}
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated,
		enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h})
	cds := claim(t, b, "w", T0, 5, 0)
	if len(cds) != 5 {
		t.Fatalf("claimed %d", len(cds))
	}
	byID := map[string]*store.ClaimedDelivery{}
	for _, cd := range cds {
		byID[cd.ID] = cd
	}
	item := func(id string, state store.DeliveryState) store.DeliveryCompleteParams {
		cd := byID[id]
		return store.DeliveryCompleteParams{ID: id, Worker: "w", Attempt: cd.Attempts, State: state, Now: T0.Add(time.Second),
			NextAttemptAt: T0.Add(time.Minute),
			Record: store.Attempt{StartedAt: T0, Duration: time.Millisecond, RequestURL: cd.URL, RequestBody: cd.Body, ResponseCode: 200,
				RequestHeaders: map[string][]string{"Pulumi-Webhook-Id": {id}}}}
	}
	ps := []store.DeliveryCompleteParams{
		item(dids[0], store.DeliverySucceeded),
		item(dids[1], store.DeliveryPending),
		item(dids[2], store.DeliveryRunning), // not a result: invalid
		item(dids[3], store.DeliverySucceeded),
		item(dids[0], store.DeliverySucceeded), // the same delivery again: already completed
		{ID: "no-such-delivery", Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0},
		item(dids[4], store.DeliveryFailed),
	}
	ps[3].Worker = "someone-else"
	ps[6].Record.ResponseCode, ps[6].Record.RequestBody = 500, []byte("a body other than the delivery's")
	errs := b.st.DeliveryCompleteMany(b.ctx, ps)
	if len(errs) != len(ps) {
		t.Fatalf("DeliveryCompleteMany returned %d errors for %d items", len(errs), len(ps))
	}
	for i, want := range []error{nil, nil, nil, store.ErrLeaseLost, store.ErrLeaseLost, store.ErrLeaseLost, nil} {
		switch {
		case i == 2:
			if errs[i] == nil || errors.Is(errs[i], store.ErrLeaseLost) {
				t.Fatalf("item %d (state running) error = %v, want a validation error", i, errs[i])
			}
		case want == nil && errs[i] != nil:
			t.Fatalf("item %d: %v", i, errs[i])
		case want != nil:
			wantErr(t, fmt.Sprintf("item %d", i), errs[i], want)
		}
	}
	wantStates := []store.DeliveryState{store.DeliverySucceeded, store.DeliveryPending, store.DeliveryRunning, store.DeliveryRunning, store.DeliveryFailed}
	for i, id := range dids {
		if d := getDelivery(t, b, id); d.State != wantStates[i] {
			t.Fatalf("delivery %d is %s, want %s", i, d.State, wantStates[i])
		}
	}
	if d := getDelivery(t, b, dids[1]); !d.NextAttemptAt.Equal(T0.Add(time.Minute)) || d.LastError == "" {
		t.Fatalf("retried delivery = %+v", d)
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 3 {
		t.Fatalf("%d attempts recorded, want 3 (refused items record nothing)", len(atts))
	}
	got := map[string]*store.Attempt{}
	for _, a := range atts {
		got[a.DeliveryID] = a
	}
	for _, i := range []int{0, 1, 6} {
		a := got[ps[i].ID]
		if a == nil || a.Number != 1 || a.HookID != h.ID || a.Filter != webhook.StackCreated || string(a.RequestBody) != string(ps[i].Record.RequestBody) ||
			a.RequestHeaders["Pulumi-Webhook-Id"][0] != ps[i].ID || a.ResponseCode != ps[i].Record.ResponseCode {
			t.Fatalf("attempt of item %d = %+v", i, a)
		}
	}
	// The items refused for their lease can still be completed by their holder.
	if errs := b.st.DeliveryCompleteMany(b.ctx, []store.DeliveryCompleteParams{item(dids[2], store.DeliverySucceeded), item(dids[3], store.DeliverySucceeded)}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("completing the refused items = %v", errs)
	}
	// A batch of only invalid items touches nothing.
	errs = b.st.DeliveryCompleteMany(b.ctx, []store.DeliveryCompleteParams{{ID: dids[1], Worker: "w", Attempt: 1, State: "bogus", Now: T0}})
	if len(errs) != 1 || errs[0] == nil {
		t.Fatalf("DeliveryCompleteMany of an invalid item = %v", errs)
	}
}

// testCompleteManyDisableHook: a 410 early in a batch disables the hook and discards its
// other deliveries, so a later item for that hook finds its lease lost, while an item for
// another hook is recorded.
func testCompleteManyDisableHook(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	other := createHook(t, b, spec(orgScope("acme"), "other"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: other})
	cds := claim(t, b, "w", T0, 3, 0)
	if len(cds) != 3 {
		t.Fatalf("claimed %d", len(cds))
	}
	reason := "the endpoint answered 410 Gone"
	ps := []store.DeliveryCompleteParams{
		{ID: dids[0], Worker: "w", Attempt: 1, State: store.DeliveryFailed, Record: store.Attempt{ResponseCode: 410, StartedAt: T0}, DisableHookReason: reason, Now: T0},
		{ID: dids[1], Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Record: store.Attempt{ResponseCode: 200, StartedAt: T0}, Now: T0},
		{ID: dids[2], Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Record: store.Attempt{ResponseCode: 200, StartedAt: T0}, Now: T0},
	}
	errs := b.st.DeliveryCompleteMany(b.ctx, ps)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("DeliveryCompleteMany = %v", errs)
	}
	wantErr(t, "completing a delivery the same batch discarded", errs[1], store.ErrLeaseLost)
	got, _ := b.st.HookGetByID(b.ctx, h.ID)
	if got.Active || got.DisabledReason != reason {
		t.Fatalf("hook after 410 = active %v reason %q", got.Active, got.DisabledReason)
	}
	for i, want := range []store.DeliveryState{store.DeliveryFailed, store.DeliveryDiscarded, store.DeliverySucceeded} {
		if d := getDelivery(t, b, dids[i]); d.State != want {
			t.Fatalf("delivery %d is %s, want %s", i, d.State, want)
		}
	}
}

// testCompleteManyCanceled: when the transaction cannot run, every item gets the error and
// nothing is written.
func testCompleteManyCanceled(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h})
	cds := claim(t, b, "w", T0, 2, 0)
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	ps := []store.DeliveryCompleteParams{
		{ID: cds[0].ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0},
		{ID: cds[1].ID, Worker: "w", Attempt: 1, State: "bogus", Now: T0},
	}
	errs := b.st.DeliveryCompleteMany(ctx, ps)
	if len(errs) != 2 || !errors.Is(errs[0], context.Canceled) || errs[1] == nil || errors.Is(errs[1], context.Canceled) {
		t.Fatalf("DeliveryCompleteMany with a canceled context = %v, want context.Canceled for the valid item and its own error for the invalid one", errs)
	}
	for _, id := range dids {
		if d := getDelivery(t, b, id); d.State != store.DeliveryRunning {
			t.Fatalf("delivery %s is %s after a canceled batch, want running", id, d.State)
		}
	}
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 0 {
		t.Fatalf("a canceled batch recorded %d attempts", len(atts))
	}
}

// testSharedBodies: deliveries whose body equals the event's payload, deliveries sharing one
// rendered body, and deliveries with their own body all read back byte for byte, through
// every read path (get, list, claim, attempts, redelivery), whatever the backend stores.
func testSharedBodies(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	payload := []byte(`{"kind":"stack","raw":true}`)
	slack := []byte(`{"text":"shared slack rendering"}`)
	ev := &store.Event{Filter: webhook.StackCreated, Subject: orgScope("acme"), Payload: payload, CreatedAt: T0}
	bodies := [][]byte{payload, slack, []byte(`{"own":1}`), payload, slack, slack, []byte{}, []byte(`{"own":2}`)}
	params := make([]store.DeliveryInsertParams, len(bodies))
	for i, body := range bodies {
		params[i] = store.DeliveryInsertParams{HookID: h.ID, Format: webhook.FormatRaw, Body: body, Endpoint: fmt.Sprintf("e%d:443", i)}
	}
	params[2].State = store.DeliverySucceeded
	if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(b.ctx, ev.ID, T0, params)
	}); err != nil {
		t.Fatal(err)
	}
	ds, err := b.st.DeliveryListByEvent(b.ctx, ev.ID)
	if err != nil || len(ds) != len(bodies) {
		t.Fatalf("DeliveryListByEvent = %d, %v", len(ds), err)
	}
	for i, d := range ds {
		if string(d.Body) != string(bodies[i]) {
			t.Fatalf("listed delivery %d body = %q, want %q", i, d.Body, bodies[i])
		}
		if g := getDelivery(t, b, d.ID); string(g.Body) != string(bodies[i]) {
			t.Fatalf("DeliveryGet %d body = %q, want %q", i, g.Body, bodies[i])
		}
	}
	want := map[string][]byte{}
	for i, p := range params {
		want[p.ID] = bodies[i]
	}
	cds := claim(t, b, "w", T0, 10, 0)
	if len(cds) != len(bodies)-1 {
		t.Fatalf("claimed %d, want %d", len(cds), len(bodies)-1)
	}
	ps := make([]store.DeliveryCompleteParams, len(cds))
	for i, cd := range cds {
		if string(cd.Body) != string(want[cd.ID]) {
			t.Fatalf("claimed %s body = %q, want %q", cd.ID, cd.Body, want[cd.ID])
		}
		// Every other attempt sends something else than the stored body (say a redacted copy).
		reqBody := cd.Body
		if i%2 == 1 {
			reqBody = []byte(`{"sent":"other"}`)
		}
		ps[i] = store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliveryFailed, Now: T0,
			Record: store.Attempt{StartedAt: T0, RequestBody: reqBody, ResponseCode: 500}}
	}
	for i, err := range b.st.DeliveryCompleteMany(b.ctx, ps) {
		if err != nil {
			t.Fatalf("complete %d: %v", i, err)
		}
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil || len(atts) != len(ps) {
		t.Fatalf("AttemptList = %d, %v", len(atts), err)
	}
	sent := map[string][]byte{}
	for _, p := range ps {
		sent[p.ID] = p.Record.RequestBody
	}
	for _, a := range atts {
		if string(a.RequestBody) != string(sent[a.DeliveryID]) {
			t.Fatalf("attempt of %s request body = %q, want %q", a.DeliveryID, a.RequestBody, sent[a.DeliveryID])
		}
	}
	// A redelivery of a shared-body delivery records the same bytes again.
	var sharedID string
	for id, body := range want {
		if string(body) == string(slack) {
			sharedID = id
		}
	}
	a, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0, Record: store.Attempt{DeliveryID: sharedID, StartedAt: T0,
		RequestBody: slack, ResponseCode: 200}})
	if err != nil {
		t.Fatal(err)
	}
	atts, err = b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Limit: 1})
	if err != nil || len(atts) != 1 || atts[0].ID != a.ID || string(atts[0].RequestBody) != string(slack) {
		t.Fatalf("redelivery attempt = %+v, %v", atts, err)
	}
}

// Attempts outside the worker loop.

func testAttemptRecordPing(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	ev := &store.Event{Filter: webhook.Ping, Kind: webhook.KindPing, Subject: orgScope("acme"), Payload: []byte(`{"ping":true}`), CreatedAt: T0}
	d := &store.DeliveryInsertParams{HookID: h.ID, Format: webhook.FormatRaw, Body: []byte(`{"ping":true}`), Endpoint: "example.com:443"}
	a, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Event: ev, Delivery: d, Now: T0,
		Record: store.Attempt{StartedAt: T0, Duration: time.Millisecond, RequestURL: h.PayloadURL, ResponseCode: 204}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || a.Number != 1 || a.HookID != h.ID || a.DeliveryID == "" || a.DeliveryID != d.ID || a.Filter != webhook.Ping || a.Kind != webhook.KindPing {
		t.Fatalf("ping attempt = %+v", a)
	}
	if _, err := b.st.EventGet(b.ctx, ev.ID); err != nil {
		t.Fatalf("ping event not stored: %v", err)
	}
	got := getDelivery(t, b, a.DeliveryID)
	if got.State != store.DeliverySucceeded || got.Attempts != 1 || got.EventID != ev.ID {
		t.Fatalf("ping delivery = %+v", got)
	}
	if c := claim(t, b, "w", T0.Add(time.Hour), 10, 0); len(c) != 0 {
		t.Fatal("a ping delivery was queued for the workers")
	}
	// A failed ping is recorded as failed.
	ev2 := &store.Event{Filter: webhook.Ping, Kind: webhook.KindPing, Subject: orgScope("acme"), Payload: []byte(`{}`), CreatedAt: T0}
	a2, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Event: ev2, Delivery: &store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{}`)},
		Now: T0, Record: store.Attempt{StartedAt: T0, Error: "connection refused"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := getDelivery(t, b, a2.DeliveryID); got.State != store.DeliveryFailed || got.LastError != "connection refused" {
		t.Fatalf("failed ping delivery = %+v", got)
	}
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 2 || atts[0].ID != a2.ID {
		t.Fatalf("attempt list after pings = %d", len(atts))
	}
	_, err = b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Event: ev, Delivery: nil, Now: T0})
	if err == nil {
		t.Fatal("AttemptRecord with an event and no delivery succeeded")
	}
	_, err = b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Event: &store.Event{ID: ev.ID, Filter: webhook.Ping, Subject: orgScope("acme"), Payload: []byte(`{}`)},
		Delivery: &store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{}`)}, Now: T0})
	wantErr(t, "AttemptRecord reusing an event ID", err, store.ErrAlreadyExists)
}

func testAttemptRecordRedelivery(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	if err := complete(b, cd, store.DeliveryFailed, T0); err != nil {
		t.Fatal(err)
	}
	a, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0.Add(time.Hour),
		Record: store.Attempt{DeliveryID: dids[0], StartedAt: T0.Add(time.Hour), RequestBody: cd.Body, ResponseCode: 200}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Number != 2 || a.HookID != h.ID || a.Filter != webhook.StackCreated || a.Kind != webhook.KindStack {
		t.Fatalf("redelivery attempt = %+v", a)
	}
	if d := getDelivery(t, b, dids[0]); d.Attempts != 2 {
		t.Fatalf("delivery attempts after redelivery = %d", d.Attempts)
	}
	_, err = b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0, Record: store.Attempt{DeliveryID: "missing"}})
	wantErr(t, "AttemptRecord for an unknown delivery", err, store.ErrNotFound)
	if _, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0}); err == nil {
		t.Fatal("AttemptRecord without a delivery ID succeeded")
	}
	if _, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Delivery: &store.DeliveryInsertParams{HookID: h.ID}, Now: T0}); err == nil {
		t.Fatal("AttemptRecord with a delivery and no event succeeded")
	}
}

func testAttemptListPaging(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	other := createHook(t, b, spec(orgScope("acme"), "other"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: other})
	var want []int64
	for i := range 7 {
		a, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0, Record: store.Attempt{DeliveryID: dids[0], StartedAt: T0.Add(time.Duration(i))}})
		if err != nil {
			t.Fatal(err)
		}
		want = append([]int64{a.ID}, want...)
		if _, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0, Record: store.Attempt{DeliveryID: dids[1]}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	var before int64
	pages := 0
	for {
		page, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Limit: 3, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages++
		if len(page) > 3 {
			t.Fatalf("page of %d, limit 3", len(page))
		}
		for _, a := range page {
			if a.HookID != h.ID {
				t.Fatalf("attempt of hook %d in hook %d's list", a.HookID, h.ID)
			}
			got = append(got, a.ID)
		}
		before = page[len(page)-1].ID
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("paged IDs = %v in %d pages, want %v newest first in 3 pages", got, pages, want)
	}
	all, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil || len(all) != 7 {
		t.Fatalf("AttemptList with the default limit = %d, %v", len(all), err)
	}
	if _, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Limit: -1}); err == nil {
		t.Fatal("AttemptList with a negative limit succeeded")
	}
	if _, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Before: -1}); err == nil {
		t.Fatal("AttemptList with a negative cursor succeeded")
	}
	if none, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: 999999}); err != nil || len(none) != 0 {
		t.Fatalf("AttemptList of an unknown hook = %d, %v", len(none), err)
	}
}

func testDeliveryStats(t *testing.T, b *testBundle) {
	st, err := b.st.DeliveryStats(b.ctx, T0)
	if err != nil {
		t.Fatal(err)
	}
	if st != (store.QueueStats{}) {
		t.Fatalf("stats of an empty store = %+v", st)
	}
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated,
		enqueue{hook: h, next: T0.Add(-time.Minute)}, enqueue{hook: h, next: T0.Add(-time.Second)}, enqueue{hook: h, next: T0.Add(time.Hour)},
		enqueue{hook: h, next: T0.Add(-2 * time.Minute)})
	cd := claim(t, b, "w", T0, 1, 0)[0] // the one due at -2m
	st, err = b.st.DeliveryStats(b.ctx, T0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 3 || st.Running != 1 || !st.OldestDue.Equal(T0.Add(-time.Minute)) || !st.NextDue.Equal(T0.Add(-time.Minute)) || st.DeliveriesDone != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if err := complete(b, cd, store.DeliverySucceeded, T0); err != nil {
		t.Fatal(err)
	}
	claimed := claim(t, b, "w", T0, 2, 0)
	for _, c := range claimed {
		if err := complete(b, c, store.DeliveryFailed, T0); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = b.st.DeliveryStats(b.ctx, T0)
	if st.Pending != 1 || st.Running != 0 || !st.OldestDue.IsZero() || !st.NextDue.Equal(T0.Add(time.Hour)) || st.DeliveriesDone != 3 {
		t.Fatalf("stats after completions = %+v", st)
	}
}

func testTokens(t *testing.T, b *testBundle) {
	t1 := &store.Token{Org: "acme", Description: "ci", Hash: sha("token-1"), CreatedAt: T0}
	if err := b.st.TokenCreate(b.ctx, t1); err != nil {
		t.Fatal(err)
	}
	if t1.ID == "" {
		t.Fatal("TokenCreate did not set the ID")
	}
	t2 := &store.Token{ID: "tok-2", Org: "globex", Hash: sha("token-2"), CreatedAt: T0.Add(time.Second)}
	if err := b.st.TokenCreate(b.ctx, t2); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "TokenCreate with a taken ID", b.st.TokenCreate(b.ctx, &store.Token{ID: "tok-2", Org: "acme", Hash: sha("x"), CreatedAt: T0}), store.ErrAlreadyExists)
	wantErr(t, "TokenCreate with a taken hash", b.st.TokenCreate(b.ctx, &store.Token{Org: "acme", Hash: sha("token-1"), CreatedAt: T0}), store.ErrAlreadyExists)
	if err := b.st.TokenCreate(b.ctx, &store.Token{Org: "acme"}); err == nil {
		t.Fatal("TokenCreate without a hash succeeded")
	}
	got, err := b.st.TokenGetByHash(b.ctx, sha("token-1"))
	if err != nil || got.ID != t1.ID || got.Org != "acme" || got.Description != "ci" || !got.CreatedAt.Equal(T0) || !got.RevokedAt.IsZero() || !got.LastUsedAt.IsZero() {
		t.Fatalf("TokenGetByHash = %+v, %v", got, err)
	}
	_, err = b.st.TokenGetByHash(b.ctx, sha("unknown"))
	wantErr(t, "TokenGetByHash", err, store.ErrNotFound)
	acme, err := b.st.TokenList(b.ctx, "acme")
	if err != nil || len(acme) != 1 || acme[0].ID != t1.ID {
		t.Fatalf("TokenList(acme) = %v, %v", acme, err)
	}
	all, err := b.st.TokenList(b.ctx, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("TokenList() = %d, %v", len(all), err)
	}
	used := T0.Add(time.Minute)
	if err := b.st.TokenTouch(b.ctx, t1.ID, used); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "TokenTouch", b.st.TokenTouch(b.ctx, "nope", used), store.ErrNotFound)
	revoked := T0.Add(time.Hour)
	if err := b.st.TokenRevoke(b.ctx, t1.ID, revoked); err != nil {
		t.Fatal(err)
	}
	if err := b.st.TokenRevoke(b.ctx, t1.ID, revoked.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = b.st.TokenGetByHash(b.ctx, sha("token-1"))
	if !got.RevokedAt.Equal(revoked) || !got.LastUsedAt.Equal(used) {
		t.Fatalf("revoked token = %+v", got)
	}
	wantErr(t, "TokenRevoke", b.st.TokenRevoke(b.ctx, "nope", revoked), store.ErrNotFound)
}

// testCompleteManyMixed completes a batch naming each delivery once and disabling no hook, with
// deliveries of two hooks and two events: recorded items, a retry, items refused for their
// lease (another worker, another attempt, an unknown delivery) and an invalid one, in one
// transaction. Each item gets its own result; refused ones write nothing.
func testCompleteManyMixed(t *testing.T, b *testBundle) {
	h1 := createHook(t, b, spec(orgScope("acme"), "h1"))
	h2 := createHook(t, b, spec(orgScope("acme"), "h2"))
	_, d1 := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h1}, enqueue{hook: h2}, enqueue{hook: h1})
	_, d2 := emit(t, b, orgScope("acme"), webhook.StackDeleted, enqueue{hook: h2}, enqueue{hook: h1}, enqueue{hook: h2})
	cds := claim(t, b, "w", T0, 6, 0)
	if len(cds) != 6 {
		t.Fatalf("claimed %d", len(cds))
	}
	byID := map[string]*store.ClaimedDelivery{}
	for _, cd := range cds {
		byID[cd.ID] = cd
	}
	item := func(id string, state store.DeliveryState, code int) store.DeliveryCompleteParams {
		cd := byID[id]
		return store.DeliveryCompleteParams{ID: id, Worker: "w", Attempt: cd.Attempts, State: state, Now: T0.Add(time.Second),
			NextAttemptAt: T0.Add(time.Minute),
			Record: store.Attempt{StartedAt: T0, Duration: 2 * time.Millisecond, RequestURL: cd.URL, RequestBody: cd.Body, ResponseCode: code,
				RequestHeaders: map[string][]string{"Pulumi-Webhook-Id": {id}}, ResponseHeaders: map[string][]string{"X-Seen": {id}},
				ResponseBody: []byte("answer to " + id)}}
	}
	ps := []store.DeliveryCompleteParams{
		item(d1[0], store.DeliverySucceeded, 200),
		item(d2[0], store.DeliveryPending, 503),
		item(d1[1], store.DeliverySucceeded, 200), // held by w, completed by another worker
		item(d2[1], store.DeliverySucceeded, 200), // another attempt number
		{ID: "no-such-delivery", Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0},
		item(d1[2], "bogus", 200), // invalid
		item(d2[2], store.DeliveryFailed, 500),
	}
	ps[2].Worker = "someone-else"
	ps[3].Attempt = 2
	ps[6].Record.RequestBody = []byte("a body other than the delivery's")
	errs := b.st.DeliveryCompleteMany(b.ctx, ps)
	if len(errs) != len(ps) {
		t.Fatalf("DeliveryCompleteMany returned %d errors for %d items", len(errs), len(ps))
	}
	for _, i := range []int{0, 1, 6} {
		if errs[i] != nil {
			t.Fatalf("item %d: %v", i, errs[i])
		}
	}
	for _, i := range []int{2, 3, 4} {
		wantErr(t, fmt.Sprintf("item %d", i), errs[i], store.ErrLeaseLost)
	}
	if errs[5] == nil || errors.Is(errs[5], store.ErrLeaseLost) {
		t.Fatalf("item 5 (state bogus) error = %v, want a validation error", errs[5])
	}
	want := map[string]store.DeliveryState{d1[0]: store.DeliverySucceeded, d2[0]: store.DeliveryPending, d1[1]: store.DeliveryRunning,
		d2[1]: store.DeliveryRunning, d1[2]: store.DeliveryRunning, d2[2]: store.DeliveryFailed}
	for id, st := range want {
		d := getDelivery(t, b, id)
		if d.State != st {
			t.Fatalf("delivery %s is %s, want %s", id, d.State, st)
		}
		if st != store.DeliveryRunning && (!d.LeaseUntil.IsZero() || !d.UpdatedAt.Equal(T0.Add(time.Second))) {
			t.Fatalf("completed delivery %s = %+v", id, d)
		}
	}
	if d := getDelivery(t, b, d2[0]); !d.NextAttemptAt.Equal(T0.Add(time.Minute)) || d.LastError == "" {
		t.Fatalf("retried delivery = %+v", d)
	}
	if d := getDelivery(t, b, d2[2]); d.LastError == "" {
		t.Fatalf("failed delivery has no last error: %+v", d)
	}
	var atts []*store.Attempt
	for _, h := range []*store.Hook{h1, h2} {
		a, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
		if err != nil {
			t.Fatal(err)
		}
		atts = append(atts, a...)
	}
	if len(atts) != 3 {
		t.Fatalf("%d attempts recorded, want 3 (refused items record nothing)", len(atts))
	}
	got := map[string]*store.Attempt{}
	for _, a := range atts {
		got[a.DeliveryID] = a
	}
	for _, i := range []int{0, 1, 6} {
		p, a := ps[i], got[ps[i].ID]
		if a == nil || a.Number != 1 || a.HookID != byID[p.ID].HookID || a.Filter != byID[p.ID].Filter || a.Kind != byID[p.ID].Kind ||
			string(a.RequestBody) != string(p.Record.RequestBody) || a.RequestURL != p.Record.RequestURL ||
			a.RequestHeaders["Pulumi-Webhook-Id"][0] != p.ID || a.ResponseHeaders["X-Seen"][0] != p.ID ||
			string(a.ResponseBody) != "answer to "+p.ID || a.ResponseCode != p.Record.ResponseCode ||
			a.Duration != 2*time.Millisecond || !a.StartedAt.Equal(T0) {
			t.Fatalf("attempt of item %d = %+v", i, a)
		}
	}
	// Attempts are numbered in the order of the items.
	if !(got[ps[0].ID].ID < got[ps[1].ID].ID && got[ps[1].ID].ID < got[ps[6].ID].ID) {
		t.Fatalf("attempt IDs %d, %d, %d are not in item order", got[ps[0].ID].ID, got[ps[1].ID].ID, got[ps[6].ID].ID)
	}
}

// testClaimCrowdedWindow: an endpoint one short of its cap has a backlog due ahead of another
// endpoint's work; the claim takes what the busy endpoint has room for and still reaches the
// other endpoint's deliveries behind the backlog.
func testClaimCrowdedWindow(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	es := make([]enqueue, 0, 43)
	for i := range 40 {
		es = append(es, enqueue{hook: h, endpoint: "busy:443", next: T0.Add(time.Duration(i) * time.Microsecond)})
	}
	for range 3 {
		es = append(es, enqueue{hook: h, endpoint: "calm:443", next: T0.Add(time.Second)})
	}
	emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	now := T0.Add(time.Minute)
	if got := claim(t, b, "w0", now, 1, 3); len(got) != 1 || got[0].Endpoint != "busy:443" {
		t.Fatalf("first claim = %v", ids(got))
	}
	counts := map[string]int{}
	for _, cd := range claim(t, b, "w1", now, 5, 3) {
		counts[cd.Endpoint]++
	}
	if counts["busy:443"] != 2 || counts["calm:443"] != 3 {
		t.Fatalf("claim took %v, want busy 2 (up to its cap of 3 with 1 held) and all 3 calm", counts)
	}
}

// testCycle: one DeliveryCycle records finished attempts and then claims, seeing the endpoint
// capacity the completions freed; with Limit 0 it only records, and with nothing to do it
// does nothing.
func testCycle(t *testing.T, b *testBundle) {
	res, err := b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{})
	if err != nil || len(res.CompleteErrs) != 0 || len(res.Claimed) != 0 {
		t.Fatalf("empty DeliveryCycle = %+v, %v", res, err)
	}
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated,
		enqueue{hook: h, endpoint: "one:443"}, enqueue{hook: h, endpoint: "one:443"}, enqueue{hook: h, endpoint: "one:443"},
		enqueue{hook: h, endpoint: "one:443", next: T0.Add(time.Hour)})
	claimP := store.DeliveryClaimParams{Worker: "w", Now: T0, Lease: time.Minute, Limit: 5, PerEndpointLimit: 2}
	res, err = b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Claim: claimP})
	if err != nil || len(res.Claimed) != 2 || len(res.CompleteErrs) != 0 {
		t.Fatalf("first cycle = %d claimed, %v", len(res.Claimed), err)
	}
	if got := ids(res.Claimed); !slices.Equal(got, dids[:2]) {
		t.Fatalf("first cycle claimed %v, want %v", got, dids[:2])
	}
	first := res.Claimed[0]
	if first.URL != h.PayloadURL || !first.HookActive || string(first.Body) != `{"n":0}` || first.ClaimedBy != "w" || first.Attempts != 1 {
		t.Fatalf("claimed delivery = %+v", first)
	}
	done := store.DeliveryCompleteParams{ID: first.ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0,
		Record: store.Attempt{StartedAt: T0, RequestURL: first.URL, RequestBody: first.Body, ResponseCode: 204}}
	lost := done
	lost.ID, lost.Worker = res.Claimed[1].ID, "someone-else"
	res, err = b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Complete: []store.DeliveryCompleteParams{done, lost}, Claim: claimP})
	if err != nil || len(res.CompleteErrs) != 2 || res.CompleteErrs[0] != nil {
		t.Fatalf("second cycle = %+v, %v", res, err)
	}
	wantErr(t, "completion by another worker in a cycle", res.CompleteErrs[1], store.ErrLeaseLost)
	// The completion freed one of the endpoint's two slots, and the claim in the same
	// transaction took it; the delivery due in an hour stays pending.
	if got := ids(res.Claimed); !slices.Equal(got, dids[2:3]) {
		t.Fatalf("second cycle claimed %v, want %v", got, dids[2:3])
	}
	want := []store.DeliveryState{store.DeliverySucceeded, store.DeliveryRunning, store.DeliveryRunning, store.DeliveryPending}
	for i, id := range dids {
		if d := getDelivery(t, b, id); d.State != want[i] {
			t.Fatalf("delivery %d is %s, want %s", i, d.State, want[i])
		}
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil || len(atts) != 1 || atts[0].DeliveryID != first.ID || atts[0].ResponseCode != 204 || string(atts[0].RequestBody) != `{"n":0}` {
		t.Fatalf("attempts after the cycle = %+v, %v", atts, err)
	}
	// Limit 0: record only.
	second := res.Claimed[0]
	rec := store.DeliveryCompleteParams{ID: second.ID, Worker: "w", Attempt: 1, State: store.DeliveryFailed, Now: T0,
		Record: store.Attempt{StartedAt: T0, ResponseCode: 500}}
	res, err = b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Complete: []store.DeliveryCompleteParams{rec}})
	if err != nil || len(res.CompleteErrs) != 1 || res.CompleteErrs[0] != nil || len(res.Claimed) != 0 {
		t.Fatalf("record-only cycle = %+v, %v", res, err)
	}
	if d := getDelivery(t, b, second.ID); d.State != store.DeliveryFailed {
		t.Fatalf("delivery after a record-only cycle is %s", d.State)
	}
	if d := getDelivery(t, b, dids[1]); d.State != store.DeliveryRunning {
		t.Fatalf("a record-only cycle claimed: delivery is %s", d.State)
	}
}

// testCycleInvalidClaim: an invalid claim fails the whole cycle before anything is written.
func testCycleInvalidClaim(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	done := store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0,
		Record: store.Attempt{StartedAt: T0, ResponseCode: 200}}
	for _, bad := range []store.DeliveryClaimParams{
		{Worker: "", Now: T0, Lease: time.Minute, Limit: 1},
		{Worker: "w", Now: T0, Lease: 0, Limit: 1},
		{Worker: "w", Now: T0, Lease: time.Minute, Limit: 1, PerEndpointLimit: -1},
	} {
		res, err := b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Complete: []store.DeliveryCompleteParams{done}, Claim: bad})
		if err == nil {
			t.Fatalf("DeliveryCycle with claim %+v succeeded", bad)
		}
		if len(res.CompleteErrs) != 1 || res.CompleteErrs[0] == nil || len(res.Claimed) != 0 {
			t.Fatalf("DeliveryCycle with claim %+v = %+v, want the error for the completion too and no claim", bad, res)
		}
	}
	if d := getDelivery(t, b, dids[0]); d.State != store.DeliveryRunning {
		t.Fatalf("a refused cycle completed the delivery: %s", d.State)
	}
	if d := getDelivery(t, b, dids[1]); d.State != store.DeliveryPending {
		t.Fatalf("a refused cycle claimed: delivery is %s", d.State)
	}
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 0 {
		t.Fatalf("a refused cycle recorded %d attempts", len(atts))
	}
}

// testCycleCanceled: when the transaction cannot run, the cycle returns the error, sets it for
// every valid completion, and writes and claims nothing; an invalid completion keeps its own
// error.
func testCycleCanceled(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	res, err := b.st.DeliveryCycle(ctx, store.DeliveryCycleParams{
		Complete: []store.DeliveryCompleteParams{
			{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0},
			{ID: cd.ID, Worker: "w", Attempt: 1, State: "bogus", Now: T0},
		},
		Claim: store.DeliveryClaimParams{Worker: "w", Now: T0, Lease: time.Minute, Limit: 5},
	})
	if !errors.Is(err, context.Canceled) || len(res.CompleteErrs) != 2 || !errors.Is(res.CompleteErrs[0], context.Canceled) ||
		res.CompleteErrs[1] == nil || errors.Is(res.CompleteErrs[1], context.Canceled) || len(res.Claimed) != 0 {
		t.Fatalf("DeliveryCycle with a canceled context = %+v, %v", res, err)
	}
	if d := getDelivery(t, b, dids[0]); d.State != store.DeliveryRunning {
		t.Fatalf("a canceled cycle completed the delivery: %s", d.State)
	}
	if d := getDelivery(t, b, dids[1]); d.State != store.DeliveryPending {
		t.Fatalf("a canceled cycle claimed: delivery is %s", d.State)
	}
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 0 {
		t.Fatalf("a canceled cycle recorded %d attempts", len(atts))
	}
}

// testCompleteManyLarge completes a batch larger than a backend may write in one statement,
// with one refused item late in it.
func testCompleteManyLarge(t *testing.T, b *testBundle) {
	const n = 75
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	es := make([]enqueue, n)
	for i := range es {
		es[i] = enqueue{hook: h}
	}
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	cds := claim(t, b, "w", T0, n, 0)
	if len(cds) != n {
		t.Fatalf("claimed %d", len(cds))
	}
	ps := make([]store.DeliveryCompleteParams, n)
	for i, cd := range cds {
		ps[i] = store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0,
			Record: store.Attempt{StartedAt: T0, RequestBody: cd.Body, ResponseCode: 200}}
	}
	ps[n-3].Attempt = 7
	errs := b.st.DeliveryCompleteMany(b.ctx, ps)
	for i, err := range errs {
		if i == n-3 {
			wantErr(t, "the refused item", err, store.ErrLeaseLost)
		} else if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	succeeded := 0
	for _, id := range dids {
		if getDelivery(t, b, id).State == store.DeliverySucceeded {
			succeeded++
		}
	}
	if d := getDelivery(t, b, ps[n-3].ID); succeeded != n-1 || d.State != store.DeliveryRunning {
		t.Fatalf("%d succeeded and the refused one is %s, want %d and running", succeeded, d.State, n-1)
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Limit: 1000})
	if err != nil || len(atts) != n-1 {
		t.Fatalf("AttemptList = %d, %v; want %d", len(atts), err, n-1)
	}
	for _, a := range atts {
		if a.DeliveryID == ps[n-3].ID {
			t.Fatal("the refused item's attempt was recorded")
		}
	}
}
