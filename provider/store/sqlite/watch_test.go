package sqlite

import (
	"errors"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

func TestWatchCursorAdvanceOnlyMovesForward(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, now := t.Context(), time.Unix(1700000000, 0)
	for _, n := range []int64{20, 10, 30} {
		if err := b.st.WatchCursorAdvance(ctx, store.WatchCursorAdvanceParams{
			Backend: "file:///state", Stack: "web/dev", Nanos: n, Key: "k" + string(rune('0'+n/10)), Now: now,
		}); err != nil {
			t.Fatalf("advance to %d: %v", n, err)
		}
	}
	cs, err := b.st.WatchCursorList(ctx, "file:///state")
	if err != nil || len(cs) != 1 {
		t.Fatalf("list = %v, %v; want one cursor", cs, err)
	}
	if c := cs[0]; c.LastNanos != 30 || c.LastKey != "k3" || c.Stack != "web/dev" {
		t.Fatalf("cursor = %+v; want last 30 k3", c)
	}
	other, err := b.st.WatchCursorList(ctx, "s3://other")
	if err != nil || len(other) != 0 {
		t.Fatalf("other backend's cursors = %v, %v; want none", other, err)
	}
	if err := b.st.WatchCursorAdvance(ctx, store.WatchCursorAdvanceParams{Stack: "x"}); err == nil {
		t.Fatal("advance without a backend: no error")
	}
}

func TestWatchCursorPresenceIsFencedByGeneration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, now := t.Context(), time.Unix(1700000000, 0)
	p := store.WatchCursorPresenceParams{Backend: "file:///s", Stack: "web/dev", Present: true, Now: now}
	if err := b.st.WatchCursorPresence(ctx, p); err != nil {
		t.Fatalf("appear: %v", err)
	}
	// A second watcher that saw the same generation records the same appearance: harmless.
	if err := b.st.WatchCursorPresence(ctx, p); err != nil {
		t.Fatalf("appear again: %v", err)
	}
	p.Present = false
	if err := b.st.WatchCursorPresence(ctx, p); err != nil {
		t.Fatalf("disappear: %v", err)
	}
	// The second watcher's disappearance of generation 0 lost the race.
	if err := b.st.WatchCursorPresence(ctx, p); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("disappear twice = %v; want ErrLeaseLost", err)
	}
	cs, err := b.st.WatchCursorList(ctx, "file:///s")
	if err != nil || len(cs) != 1 || cs[0].Present || cs[0].Generation != 1 {
		t.Fatalf("cursors = %+v, %v; want absent at generation 1", cs, err)
	}
	// A stale appearance (generation 0) does not resurrect it; generation 1 does.
	p.Present = true
	if err := b.st.WatchCursorPresence(ctx, p); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("stale appearance = %v; want ErrLeaseLost", err)
	}
	p.Generation = 1
	if err := b.st.WatchCursorPresence(ctx, p); err != nil {
		t.Fatalf("appear at generation 1: %v", err)
	}
	// A first sighting at a generation above 0 of a stack never stored is refused too.
	if err := b.st.WatchCursorPresence(ctx, store.WatchCursorPresenceParams{Backend: "file:///s", Stack: "new", Present: true, Generation: 3, Now: now}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("unknown stack at generation 3 = %v; want ErrLeaseLost", err)
	}
	if err := b.st.WatchCursorPresence(ctx, store.WatchCursorPresenceParams{Stack: "x"}); err == nil {
		t.Fatal("presence without a backend: no error")
	}
}
