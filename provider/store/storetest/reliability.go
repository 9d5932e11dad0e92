package storetest

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Harness opens stores for the tests that need more than one fresh store: a second handle on
// the same database, as another process would open it, or a way to damage a stored value.
type Harness struct {
	// Open opens a fresh, empty store for one test; the suite closes it.
	Open Opener
	// Reopen opens another handle on st's database, as a second process would (same key).
	// The suite closes it, possibly earlier, to stand for that process ending.
	Reopen func(t *testing.T, st store.Store) store.Store
	// CorruptSecret damages the sealed secret of hook id in st's database so that it no longer
	// opens, as a flipped bit on disk would.
	CorruptSecret func(t *testing.T, st store.Store, id int64)
}

// RunReliability runs the tests of crash recovery, secret handling and retention. Subtests run
// in parallel, each on its own store.
func RunReliability(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness, b *testBundle)
	}{
		{"ReleaseDeadHolder", testReleaseDeadHolder},
		{"ReleaseDeadHolderInCycle", testReleaseDeadHolderInCycle},
		{"ReleaseLiveHolderKept", testReleaseLiveHolderKept},
		{"ReleaseDeadDirectClaimer", testReleaseDeadDirectClaimer},
		{"UndecryptableSecretFailsOnlyItsDelivery", testUndecryptableSecretFailsOnlyItsDelivery},
		{"EmitClaimUndecryptableSecret", testEmitClaimUndecryptableSecret},
		{"KeyRotate", testKeyRotate},
		{"KeyRotateRefusals", testKeyRotateRefusals},
		{"HistoryDeleteBefore", testHistoryDeleteBefore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h, setup(t, h.Open))
		})
	}
}

// reopen opens a second handle on b's database.
func reopen(t *testing.T, h Harness, b *testBundle) *testBundle {
	t.Helper()
	st := h.Reopen(t, b.st)
	t.Cleanup(func() { _ = st.Close() })
	return &testBundle{st: st, ctx: b.ctx}
}

// testReleaseDeadHolder: a process claims a delivery to an endpoint capped at one and dies
// (its store closes) long before its lease ends. The next claim by anyone takes the delivery
// at once, counted as a retry, with the reason recorded, instead of waiting for the lease.
func testReleaseDeadHolder(t *testing.T, h Harness, b *testBundle) {
	hook := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: hook}, enqueue{hook: hook})
	other := reopen(t, h, b)
	held, err := other.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "doomed/1", Now: T0, Lease: time.Hour, Limit: 1, PerEndpointLimit: 1})
	if err != nil || len(held) != 1 {
		t.Fatalf("the second process claimed %d deliveries, %v; want 1", len(held), err)
	}
	// While it lives, its claim fills the endpoint's cap.
	if got := claim(t, b, "survivor", T0.Add(time.Second), 2, 1); len(got) != 0 {
		t.Fatalf("claimed %v while a live process holds the endpoint's only slot", ids(got))
	}
	if err := other.st.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := b.st.DeliveryReleaseDead(b.ctx, store.DeliveryReleaseDeadParams{Now: T0.Add(2 * time.Second)})
	if err != nil {
		t.Fatalf("DeliveryReleaseDead: %v", err)
	}
	if res.Deliveries != 1 || len(res.Holders) != 1 || res.Holders[0] != "doomed/1" {
		t.Fatalf("DeliveryReleaseDead = %+v, want the one delivery of doomed/1", res)
	}
	d := getDelivery(t, b, held[0].ID)
	if d.State != store.DeliveryPending || d.Attempts != 1 || !strings.HasPrefix(d.LastError, store.ReleasedDeadReason) || !strings.Contains(d.LastError, "doomed/1") {
		t.Fatalf("released delivery: state %s attempts %d last error %q", d.State, d.Attempts, d.LastError)
	}
	got := claim(t, b, "survivor", T0.Add(2*time.Second), 2, 1)
	if len(got) != 1 {
		t.Fatalf("claimed %d deliveries after the holder died, want 1 (the endpoint's one slot)", len(got))
	}
	if again, err := b.st.DeliveryReleaseDead(b.ctx, store.DeliveryReleaseDeadParams{Now: T0.Add(3 * time.Second)}); err != nil || again.Deliveries != 0 {
		t.Fatalf("second DeliveryReleaseDead = %+v, %v; want nothing (the survivor is alive)", again, err)
	}
}

// testReleaseDeadHolderInCycle: the claim itself releases a dead holder's deliveries, with no
// separate call, within its lease.
func testReleaseDeadHolderInCycle(t *testing.T, h Harness, b *testBundle) {
	hook := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: hook})
	other := reopen(t, h, b)
	held, err := other.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "doomed/2", Now: T0, Lease: time.Hour, Limit: 1, PerEndpointLimit: 1})
	if err != nil || len(held) != 1 {
		t.Fatalf("the second process claimed %d deliveries, %v; want 1", len(held), err)
	}
	_ = other.st.Close()
	res, err := b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Claim: store.DeliveryClaimParams{
		Worker: "survivor", Now: T0.Add(time.Second), Lease: time.Hour, Limit: 1, PerEndpointLimit: 1}})
	if err != nil {
		t.Fatalf("DeliveryCycle: %v", err)
	}
	if len(res.Claimed) != 1 || res.Claimed[0].ID != held[0].ID || res.Claimed[0].Attempts != 2 {
		t.Fatalf("DeliveryCycle claimed %v, want %s as attempt 2", ids(res.Claimed), held[0].ID)
	}
	// The dead holder's late completion, were it to come, is refused.
	err = b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: held[0].ID, Worker: "doomed/2", Attempt: 1,
		State: store.DeliverySucceeded, Now: T0.Add(time.Second), Record: store.Attempt{StartedAt: T0, ResponseCode: 200}})
	wantErr(t, "completion by the dead holder", err, store.ErrLeaseLost)
}

// testReleaseLiveHolderKept: a holder whose store is open keeps its claims, however many
// times others look.
func testReleaseLiveHolderKept(t *testing.T, h Harness, b *testBundle) {
	hook := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: hook})
	other := reopen(t, h, b)
	held, err := other.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "alive/1", Now: T0, Lease: time.Hour, Limit: 1})
	if err != nil || len(held) != 1 {
		t.Fatalf("the second process claimed %d deliveries, %v; want 1", len(held), err)
	}
	for i := range 3 {
		res, err := b.st.DeliveryReleaseDead(b.ctx, store.DeliveryReleaseDeadParams{Now: T0.Add(time.Duration(i) * time.Second)})
		if err != nil || res.Deliveries != 0 {
			t.Fatalf("DeliveryReleaseDead = %+v, %v; want nothing released from a live holder", res, err)
		}
	}
	if d := getDelivery(t, b, held[0].ID); d.State != store.DeliveryRunning || d.ClaimedBy != "alive/1" {
		t.Fatalf("the live holder's delivery is %s by %q", d.State, d.ClaimedBy)
	}
	if err := complete(other, held[0], store.DeliverySucceeded, T0.Add(5*time.Second)); err != nil {
		t.Fatalf("the live holder could not complete its claim: %v", err)
	}
}

// testUndecryptableSecretFailsOnlyItsDelivery: one hook's sealed secret is damaged. Its
// delivery fails alone, with the reason in its log; the completion recorded in the same round
// stands and the other hook's delivery is claimed with its secret.
func testUndecryptableSecretFailsOnlyItsDelivery(t *testing.T, h Harness, b *testBundle) {
	goodSpec, badSpec := spec(orgScope("acme"), "good"), spec(orgScope("acme"), "bad")
	goodSpec.Secret, badSpec.Secret = "good-secret", "bad-secret"
	good, bad := createHook(t, b, goodSpec), createHook(t, b, badSpec)
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: good})
	held := claim(t, b, "w", T0, 1, 0)
	if len(held) != 1 {
		t.Fatalf("claimed %d, want 1", len(held))
	}
	_, ds := emit(t, b, orgScope("acme"), webhook.StackDeleted, enqueue{hook: bad, endpoint: "a:443"}, enqueue{hook: good, endpoint: "b:443"})
	h.CorruptSecret(t, b.st, bad.ID)

	res, err := b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{
		Complete: []store.DeliveryCompleteParams{{ID: held[0].ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0,
			Record: store.Attempt{StartedAt: T0, ResponseCode: 200}}},
		Claim: store.DeliveryClaimParams{Worker: "w", Now: T0.Add(time.Second), Lease: time.Minute, Limit: 5},
	})
	if err != nil || res.CompleteErrs[0] != nil {
		t.Fatalf("DeliveryCycle with one undecryptable secret = %v, completion %v; want both to go ahead", err, res.CompleteErrs[0])
	}
	if d := getDelivery(t, b, held[0].ID); d.State != store.DeliverySucceeded {
		t.Fatalf("the completion recorded in the same round is %s, want succeeded", d.State)
	}
	if len(res.Claimed) != 1 || res.Claimed[0].ID != ds[1] || res.Claimed[0].Secret != "good-secret" {
		t.Fatalf("claimed %v, want only %s with its secret", ids(res.Claimed), ds[1])
	}
	d := getDelivery(t, b, ds[0])
	if d.State != store.DeliveryFailed || d.LastError != store.UndecryptableSecretReason {
		t.Fatalf("the delivery of the damaged hook is %s (%q), want failed with the reason", d.State, d.LastError)
	}
	log, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: bad.ID})
	if err != nil || len(log) != 1 || log[0].Error != store.UndecryptableSecretReason || log[0].DeliveryID != ds[0] {
		t.Fatalf("the damaged hook's delivery log = %+v, %v; want one attempt saying why", log, err)
	}
	for _, a := range log {
		if strings.Contains(a.Error, "bad-secret") {
			t.Fatal("the log quotes the secret")
		}
	}
	// Setting the secret again mends the hook.
	fresh := "new-secret"
	if _, err := b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: bad.Ref(), Spec: badSpec, Secret: &fresh, Now: T0}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.st.HookSecretGet(b.ctx, bad.ID); err != nil || got != fresh {
		t.Fatalf("HookSecretGet after setting it again = %v", err)
	}
}

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// testKeyRotate: every secret is re-sealed under the new key and still reads back; digests
// change with the key, stay keyed, and deliveries are claimed with their secrets.
func testKeyRotate(t *testing.T, h Harness, b *testBundle) {
	var hooks []*store.Hook
	for _, name := range []string{"a", "b"} {
		s := spec(orgScope("acme"), name)
		s.Secret = "secret-" + name
		hooks = append(hooks, createHook(t, b, s))
	}
	plain := createHook(t, b, spec(orgScope("acme"), "plain"))
	res, err := b.st.KeyRotate(b.ctx, store.KeyRotateParams{NewKey: newKey(t)})
	if err != nil || res.Secrets != 2 {
		t.Fatalf("KeyRotate = %+v, %v; want 2 secrets re-sealed", res, err)
	}
	for _, old := range hooks {
		got, err := b.st.HookGet(b.ctx, old.Ref())
		if err != nil {
			t.Fatal(err)
		}
		if !got.HasSecret || got.SecretDigest == old.SecretDigest || len(got.SecretDigest) != 64 || got.SecretDigest == sha(old.Name) {
			t.Fatalf("hook %s after rotation: HasSecret %v digest %q (before %q)", old.Name, got.HasSecret, got.SecretDigest, old.SecretDigest)
		}
		if secret, err := b.st.HookSecretGet(b.ctx, old.ID); err != nil || secret != "secret-"+old.Name {
			t.Fatalf("HookSecretGet(%s) after rotation = %v", old.Name, err)
		}
	}
	if got, _ := b.st.HookGet(b.ctx, plain.Ref()); got.HasSecret {
		t.Fatal("rotation gave a secret to a hook without one")
	}
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: hooks[0]})
	cds := claim(t, b, "w", T0, 1, 0)
	if len(cds) != 1 || cds[0].Secret != "secret-a" {
		t.Fatalf("claim after rotation = %v", ids(cds))
	}
	// A new secret is sealed under the new key too.
	s := spec(orgScope("acme"), "c")
	s.Secret = "secret-c"
	c := createHook(t, b, s)
	if secret, err := b.st.HookSecretGet(b.ctx, c.ID); err != nil || secret != "secret-c" {
		t.Fatalf("secret stored after rotation = %v", err)
	}
}

// testKeyRotateRefusals: rotation refuses, changing nothing, while another process has the
// store open, and when a secret cannot be opened with the current key.
func testKeyRotateRefusals(t *testing.T, h Harness, b *testBundle) {
	s := spec(orgScope("acme"), "a")
	s.Secret = "secret-a"
	a := createHook(t, b, s)
	s = spec(orgScope("acme"), "damaged")
	s.Secret = "secret-d"
	d := createHook(t, b, s)
	if _, err := b.st.KeyRotate(b.ctx, store.KeyRotateParams{NewKey: []byte("short")}); err == nil || strings.Contains(err.Error(), "short") {
		t.Fatalf("KeyRotate with a short key = %v", err)
	}
	other := reopen(t, h, b)
	_, err := b.st.KeyRotate(b.ctx, store.KeyRotateParams{NewKey: newKey(t)})
	wantErr(t, "KeyRotate while another process has the store open", err, store.ErrStoreBusy)
	// The refused rotation left the first store counted as open: the other one cannot rotate.
	_, err = other.st.KeyRotate(b.ctx, store.KeyRotateParams{NewKey: newKey(t)})
	wantErr(t, "KeyRotate by the other process while the first is open", err, store.ErrStoreBusy)
	_ = other.st.Close()

	h.CorruptSecret(t, b.st, d.ID)
	_, err = b.st.KeyRotate(b.ctx, store.KeyRotateParams{NewKey: newKey(t)})
	if err == nil || errors.Is(err, store.ErrStoreBusy) || !strings.Contains(err.Error(), d.Ref().String()) {
		t.Fatalf("KeyRotate with a damaged secret = %v; want a refusal naming %s", err, d.Ref())
	}
	got, _ := b.st.HookGet(b.ctx, a.Ref())
	if secret, err := b.st.HookSecretGet(b.ctx, a.ID); err != nil || secret != "secret-a" || got.SecretDigest != a.SecretDigest {
		t.Fatalf("a refused rotation changed hook a: %v", err)
	}
}
