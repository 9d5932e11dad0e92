package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// candidateURLs asks s for the candidates of an event about the stack acme/web/prod inside an
// emit's transaction and returns their payload URLs, sorted.
func candidateURLs(t *testing.T, s *Store) []string {
	t.Helper()
	var urls []string
	err := s.EventEmit(context.Background(), func(tx store.EmitTx) error {
		hs, err := tx.HookCandidates(context.Background(), webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, false)
		for _, h := range hs {
			urls = append(urls, h.PayloadURL)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(urls)
	return urls
}

func candidateSpec(name, url string, scope webhook.Scope) webhook.Spec {
	return webhook.Spec{Scope: scope, Name: name, DisplayName: name, PayloadURL: url, Active: true}
}

// TestCandidateCacheSeesChangesOfOtherProcesses: emits keep each scope's candidate hooks, and
// a hook created, changed, deactivated or deleted through another store on the same file
// (another process) is seen by the very next emit.
func TestCandidateCacheSeesChangesOfOtherProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	a := openAt(t, path, Config{})
	b := openAt(t, path, Config{})
	org := webhook.Scope{Org: "acme"}
	stack := webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
	if _, err := a.HookCreate(ctx, store.HookCreateParams{Spec: candidateSpec("o", "https://org.example.com/", org), Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second emit is answered from the cache
		if got := candidateURLs(t, a); !slices.Equal(got, []string{"https://org.example.com/"}) {
			t.Fatalf("candidates %v, want the organization's hook", got)
		}
	}
	sh, err := b.HookCreate(ctx, store.HookCreateParams{Spec: candidateSpec("s", "https://stack.example.com/", stack), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got := candidateURLs(t, a); !slices.Equal(got, []string{"https://org.example.com/", "https://stack.example.com/"}) {
		t.Fatalf("after another process created a stack hook, candidates %v; want both hooks", got)
	}
	spec := candidateSpec("s", "https://stack2.example.com/", stack)
	if _, err := b.HookUpdate(ctx, store.HookUpdateParams{Ref: sh.Ref(), Spec: spec, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := candidateURLs(t, a); !slices.Equal(got, []string{"https://org.example.com/", "https://stack2.example.com/"}) {
		t.Fatalf("after another process changed the stack hook, candidates %v; want its new URL", got)
	}
	if err := b.HookDisable(ctx, store.HookDisableParams{ID: sh.ID, Reason: "test", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := candidateURLs(t, a); !slices.Equal(got, []string{"https://org.example.com/"}) {
		t.Fatalf("after another process deactivated the stack hook, candidates %v; want only the organization's", got)
	}
	if err := b.HookDelete(ctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "o"}); err != nil {
		t.Fatal(err)
	}
	if got := candidateURLs(t, a); len(got) != 0 {
		t.Fatalf("after another process deleted the organization's hook, candidates %v; want none", got)
	}
}

// TestCandidateCacheServesUnchangedHooks: while the hooks' counters stay the same, emits do
// not read the hooks again (a row changed behind the triggers' back is not seen); once a
// counter moves they do. Without the inserts counter (a schema migrated below 013) nothing is
// kept.
func TestCandidateCacheServesUnchangedHooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t).st
	if _, err := s.HookCreate(ctx, store.HookCreateParams{Spec: candidateSpec("o", "https://org.example.com/", webhook.Scope{Org: "acme"}), Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	candidateURLs(t, s)
	if _, err := s.db.ExecContext(ctx, `DROP TRIGGER hooks_changes_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE hooks SET payload_url = 'https://uncounted.example.com/'`); err != nil {
		t.Fatal(err)
	}
	if got := candidateURLs(t, s); !slices.Equal(got, []string{"https://org.example.com/"}) {
		t.Fatalf("candidates %v: the hooks were read again although no counted change happened", got)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE store_counts SET n = n + 1 WHERE name = 'hooks_inserts'`); err != nil {
		t.Fatal(err)
	}
	if got := candidateURLs(t, s); !slices.Equal(got, []string{"https://uncounted.example.com/"}) {
		t.Fatalf("candidates %v after the inserts count moved, want the row's URL", got)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM store_counts WHERE name = 'hooks_inserts'`); err != nil {
		t.Fatal(err)
	}
	candidateURLs(t, s)
	if _, err := s.db.ExecContext(ctx, `UPDATE hooks SET payload_url = 'https://unkept.example.com/'`); err != nil {
		t.Fatal(err)
	}
	if got := candidateURLs(t, s); !slices.Equal(got, []string{"https://unkept.example.com/"}) {
		t.Fatalf("candidates %v without the inserts counter, want the row as it is (nothing kept)", got)
	}
}
