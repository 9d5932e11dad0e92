package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestEmitBatch: emits queued while another is being written go in one transaction, each in
// its own savepoint. The one that fails (or panics) leaves nothing and gets its own error; a
// caller whose context ended before its turn gets that error and leaves nothing; the others are stored,
// counted and synced before they return, with fewer syncs than emits.
func TestEmitBatch(t *testing.T) {
	var mu sync.Mutex
	syncs := 0
	prev := syncFile
	syncFile = func(f *os.File) error {
		mu.Lock()
		syncs++
		mu.Unlock()
		return prev(f)
	}
	t.Cleanup(func() { syncFile = prev })

	b := setup(t)
	ctx := t.Context()
	h, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		PayloadURL: "https://example.com", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	errBroken := errors.New("this emit fails after storing its event")
	emit := func(ctx context.Context, ev *store.Event, fail bool) error {
		return b.st.EventEmit(ctx, func(tx store.EmitTx) error {
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			if err := tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), []store.DeliveryInsertParams{{HookID: h.ID, Body: []byte(`{}`)}}); err != nil {
				return err
			}
			if fail {
				return errBroken
			}
			return nil
		})
	}
	newEvent := func(i int) *store.Event {
		return &store.Event{ID: fmt.Sprintf("ev-%02d", i), Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"},
			Payload: []byte(`{}`), CreatedAt: time.Now()}
	}

	// Hold the write lock so that the first emit waits with the rest queued behind it.
	b.st.writeSlot <- struct{}{}
	const emits = 12
	const failing, canceled, panicking = 3, 5, 8
	canceledCtx, cancel := context.WithCancel(ctx)
	cancel()
	errs := make([]error, emits)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = emit(ctx, newEvent(0), false) })
	waitfor.NoError(t, func() error { return queued(b.st, 0) })
	for i := 1; i < emits; i++ {
		c := ctx
		if i == canceled {
			c = canceledCtx
		}
		if i == panicking {
			wg.Go(func() {
				errs[i] = b.st.EventEmit(c, func(tx store.EmitTx) error {
					if err := tx.EventInsert(c, newEvent(i)); err != nil {
						return err
					}
					panic("a bug in the emit function")
				})
			})
			continue
		}
		wg.Go(func() { errs[i] = emit(c, newEvent(i), i == failing) })
	}
	waitfor.NoError(t, func() error { return queued(b.st, emits-1) })
	mu.Lock()
	before := syncs
	mu.Unlock()
	<-b.st.writeSlot
	wg.Wait()

	mu.Lock()
	n := syncs - before
	mu.Unlock()
	if n == 0 || n >= emits {
		t.Errorf("%d emits took %d WAL syncs, want at least one and fewer than one each", emits, n)
	}
	stored := 0
	for i, err := range errs {
		_, gerr := b.st.EventGet(ctx, newEvent(i).ID)
		switch i {
		case failing:
			if !errors.Is(err, errBroken) {
				t.Errorf("the failing emit returned %v, want its own error", err)
			}
		case canceled:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("the canceled emit returned %v, want context.Canceled", err)
			}
		case panicking:
			if err == nil || !strings.Contains(err.Error(), "panicked") {
				t.Errorf("the panicking emit returned %v, want an error saying it panicked", err)
			}
		default:
			if err != nil {
				t.Errorf("emit %d: %v", i, err)
			}
			if gerr != nil {
				t.Errorf("emit %d returned but its event is not stored: %v", i, gerr)
			}
			stored++
			continue
		}
		if !errors.Is(gerr, store.ErrNotFound) {
			t.Errorf("emit %d failed but its event was read back: %v", i, gerr)
		}
	}
	stats, err := b.st.DeliveryStats(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Pending != stored {
		t.Errorf("%d pending deliveries counted, want the %d stored", stats.Pending, stored)
	}
}

// queued reports an error until n emits wait in the queue behind the one being written.
func queued(s *Store, n int) error {
	s.emits.mu.Lock()
	defer s.emits.mu.Unlock()
	if !s.emits.writing || len(s.emits.queue) != n {
		return fmt.Errorf("%d emits queued (a batch being written: %t), want %d", len(s.emits.queue), s.emits.writing, n)
	}
	return nil
}

// TestEmitBatchTakenEventID: a batch inserts its events and deliveries at its end; when one of
// them fails there (an event ID already taken), the batch is written again with each emit in
// its own savepoint, so that emit alone fails, with ErrAlreadyExists, and the others are stored
// with their deliveries.
func TestEmitBatchTakenEventID(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	h, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		PayloadURL: "https://example.com", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	newEvent := func(id string) *store.Event {
		return &store.Event{ID: id, Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: time.Now()}
	}
	emit := func(ev *store.Event) error {
		return b.st.EventEmit(ctx, func(tx store.EmitTx) error {
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			return tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), []store.DeliveryInsertParams{{HookID: h.ID, Body: []byte(`{}`)}})
		})
	}
	if err := emit(newEvent("taken")); err != nil {
		t.Fatal(err)
	}
	b.st.writeSlot <- struct{}{} // hold the write lock so that the emits queue into one batch
	const emits, dup = 6, 3
	errs := make([]error, emits)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = emit(newEvent("ev-0")) })
	waitfor.NoError(t, func() error { return queued(b.st, 0) })
	for i := 1; i < emits; i++ {
		id := fmt.Sprintf("ev-%d", i)
		if i == dup {
			id = "taken"
		}
		wg.Go(func() { errs[i] = emit(newEvent(id)) })
	}
	waitfor.NoError(t, func() error { return queued(b.st, emits-1) })
	<-b.st.writeSlot
	wg.Wait()
	for i, err := range errs {
		if i == dup {
			if !errors.Is(err, store.ErrAlreadyExists) {
				t.Errorf("the emit of a taken event ID returned %v, want ErrAlreadyExists", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("emit %d: %v", i, err)
		}
		if _, err := b.st.EventGet(ctx, fmt.Sprintf("ev-%d", i)); err != nil {
			t.Errorf("emit %d returned but its event is not stored: %v", i, err)
		}
	}
	stats, err := b.st.DeliveryStats(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Pending != emits { // the first emit's and the 5 stored by the batch
		t.Errorf("%d pending deliveries, want %d", stats.Pending, emits)
	}
}
