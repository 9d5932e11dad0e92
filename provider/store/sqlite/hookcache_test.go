package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// claimOne stores one delivery to h and claims it through s, returning the claim.
func claimOne(t *testing.T, s *Store, h *store.Hook) *store.ClaimedDelivery {
	t.Helper()
	now := time.Now()
	emitDeliveries(t, s, []byte(`{"n":1}`), now, spread(h.ID, nil, 1, 1, time.Time{}))
	cds, err := s.DeliveryClaim(context.Background(), store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Hour, Limit: 8})
	if err != nil {
		t.Fatal(err)
	}
	if len(cds) != 1 {
		t.Fatalf("claimed %d deliveries, want 1", len(cds))
	}
	if err := s.DeliveryCompleteMany(context.Background(), []store.DeliveryCompleteParams{succeeded(cds[0], now)})[0]; err != nil {
		t.Fatal(err)
	}
	return cds[0]
}

// TestHookCacheSeesChangesOfOtherProcesses: the claims of one store keep hooks between rounds,
// and a change to the hook made through another store on the same file (another process) is
// seen by the very next claim: URL, secret, active flag and deletion.
func TestHookCacheSeesChangesOfOtherProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	a := openAt(t, path, Config{})
	b := openAt(t, path, Config{})
	spec := webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h", PayloadURL: "https://one.example.com/hook", Active: true, Secret: "first"}
	h, err := a.HookCreate(ctx, store.HookCreateParams{Spec: spec, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second claim is served from the cache
		if cd := claimOne(t, a, h); cd.URL != "https://one.example.com/hook" || cd.Secret != "first" || !cd.HookActive {
			t.Fatalf("claim: URL %q, secret right %v, active %v; want the hook as created", cd.URL, cd.Secret == "first", cd.HookActive)
		}
	}
	spec.PayloadURL = "https://two.example.com/hook"
	second := "second"
	if _, err := b.HookUpdate(ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: spec, Secret: &second, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if cd := claimOne(t, a, h); cd.URL != "https://two.example.com/hook" || cd.Secret != "second" {
		t.Fatalf("after another process changed the hook, the claim has URL %q (secret updated: %v); want the new URL and secret", cd.URL, cd.Secret == "second")
	}
	if err := b.HookDisable(ctx, store.HookDisableParams{ID: h.ID, Reason: "test", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if cd := claimOne(t, a, h); cd.HookActive {
		t.Fatal("after another process deactivated the hook, the claim still has it active")
	}
}

// TestHookCacheServesUnchangedHooks: while no hook changes, claims do not read the hooks
// again. Changing the row behind the triggers' back (they are dropped for this) is not seen
// until a counted change; a counted one is.
func TestHookCacheServesUnchangedHooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t).st
	h := benchHook(t, s, time.Now())
	if cd := claimOne(t, s, h); cd.URL != "https://example.com/hook" {
		t.Fatalf("claim has URL %q, want the hook's", cd.URL)
	}
	if _, err := s.db.ExecContext(ctx, `DROP TRIGGER hooks_changes_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE hooks SET payload_url = 'https://uncounted.example.com/hook' WHERE id = ?`, h.ID); err != nil {
		t.Fatal(err)
	}
	if cd := claimOne(t, s, h); cd.URL != "https://example.com/hook" {
		t.Fatalf("claim has URL %q: the hook was read again although no counted change happened", cd.URL)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE store_counts SET n = n + 1 WHERE name = 'hooks_changes'`); err != nil {
		t.Fatal(err)
	}
	if cd := claimOne(t, s, h); cd.URL != "https://uncounted.example.com/hook" {
		t.Fatalf("claim has URL %q after the change count moved, want the row's", cd.URL)
	}
}

// TestHookCacheAcrossKeyRotation: after the store's key is rotated, claims still hand out the
// hook's secret (opened with the new key), not one kept from before.
func TestHookCacheAcrossKeyRotation(t *testing.T) {
	t.Parallel()
	s := setup(t).st
	h := benchHook(t, s, time.Now())
	if cd := claimOne(t, s, h); cd.Secret != "s" {
		t.Fatal("claim before the rotation does not have the hook's secret")
	}
	newKey := make([]byte, 32)
	for i := range newKey {
		newKey[i] = byte(i + 1)
	}
	if _, err := s.KeyRotate(context.Background(), store.KeyRotateParams{NewKey: newKey}); err != nil {
		t.Fatal(err)
	}
	if cd := claimOne(t, s, h); cd.Secret != "s" || cd.URL != "https://example.com/hook" {
		t.Fatal("claim after the key rotation does not have the hook's secret and URL")
	}
	if got := s.hooks.box; got != s.currentBox() {
		t.Fatal("the hook cache still holds hooks opened under the old key")
	}
}
