package engine

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// loopCounting is the SQLite store with a count of the deliveries the claim loop claimed
// (DeliveryCycle), to tell them from those an emit handed to idle workers directly.
type loopCounting struct {
	*sqlite.Store
	claimed atomic.Int64
}

func (s *loopCounting) DeliveryCycle(ctx context.Context, p store.DeliveryCycleParams) (store.DeliveryCycleResult, error) {
	res, err := s.Store.DeliveryCycle(ctx, p)
	s.claimed.Add(int64(len(res.Claimed)))
	return res, err
}

func setupLoopCounting(t *testing.T) (*testBundle, *loopCounting) {
	t.Helper()
	var ls *loopCounting
	b := setup(t, func(c *Config) {
		ls = &loopCounting{Store: c.Store.(*sqlite.Store)}
		c.Store = ls
	})
	return b, ls
}

// TestEmitHandsDeliveriesToIdleWorkers: while workers are idle and nothing else is due, an
// emitted event's deliveries go straight to them, without the claim loop, and arrive signed,
// with every attempt recorded as after a claim.
func TestEmitHandsDeliveriesToIdleWorkers(t *testing.T) {
	t.Parallel()
	b, ls := setupLoopCounting(t)
	rc := newReceiver(t, nil)
	b.createHook(t, hookSpec("a", rc.url("/a"), func(s *webhook.Spec) { s.Secret = "topsecret" }))
	b.createHook(t, hookSpec("b", rc.url("/b")))
	b.start(t)
	ctx := context.Background()
	for i := range 10 {
		res, err := b.eng.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
		if err != nil {
			t.Fatal(err)
		}
		if res.Deliveries != 2 {
			t.Fatalf("emit %d: %d deliveries, want 2", i, res.Deliveries)
		}
		got := map[string]received{}
		for range 2 {
			r := rc.next(t)
			got[r.path] = r
		}
		if got["/a"].header.Get("Pulumi-Webhook-Signature") == "" || got["/b"].header.Get("Pulumi-Webhook-Signature") != "" {
			t.Fatalf("emit %d: signature headers %q and %q; want one for the hook with a secret only", i,
				got["/a"].header.Get("Pulumi-Webhook-Signature"), got["/b"].header.Get("Pulumi-Webhook-Signature"))
		}
		waitfor.NoError(t, func() error {
			ds, err := b.store.DeliveryListByEvent(ctx, res.EventID)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if d.State != store.DeliverySucceeded || d.Attempts != 1 {
					return fmt.Errorf("delivery %s is %s after %d attempts, want succeeded after 1", d.ID, d.State, d.Attempts)
				}
			}
			return nil
		})
	}
	if n := ls.claimed.Load(); n != 0 {
		t.Fatalf("the claim loop claimed %d deliveries; want none: idle workers took each emit's", n)
	}
}

// TestEmitLeavesDeliveriesToTheLoop: without running workers, or once the queue has due
// work, emits store their deliveries pending and the claim loop delivers them.
func TestEmitLeavesDeliveriesToTheLoop(t *testing.T) {
	t.Parallel()
	b, ls := setupLoopCounting(t)
	rc := newReceiver(t, nil)
	b.createHook(t, hookSpec("a", rc.url("/a")))
	ctx := context.Background()
	for range 3 {
		if _, err := b.eng.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject}); err != nil {
			t.Fatal(err)
		}
	}
	b.start(t)
	for range 3 {
		rc.next(t)
	}
	if n := ls.claimed.Load(); n != 3 {
		t.Fatalf("the claim loop claimed %d deliveries, want the 3 emitted before the workers started", n)
	}
}

// TestEmitWhileStopping: emits racing the workers' Stop and Start lose nothing and leave no
// slot taken: every delivery arrives, the queue empties, and Stop returns each time.
func TestEmitWhileStopping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var arrived sync.Map
	var n atomic.Int64
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if _, dup := arrived.LoadOrStore(r.Header.Get("Pulumi-Webhook-ID"), true); !dup {
			n.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	})
	b.createHook(t, hookSpec("a", rc.url("/a")))
	ctx := context.Background()
	const emitters, each = 4, 25
	var wg sync.WaitGroup
	for range emitters {
		wg.Go(func() {
			for range each {
				if _, err := b.eng.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 5 {
		if err := b.eng.Start(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		stopCtx, cancel := context.WithTimeout(ctx, waitfor.Limit)
		if err := b.eng.Stop(stopCtx); err != nil {
			t.Fatalf("Stop while emitting: %v", err)
		}
		cancel()
	}
	wg.Wait()
	b.start(t)
	waitfor.NoError(t, func() error {
		if got := n.Load(); got < emitters*each {
			return fmt.Errorf("%d of %d deliveries arrived", got, emitters*each)
		}
		s, err := b.eng.QueueStats(ctx)
		if err == nil && (s.Pending != 0 || s.Running != 0) {
			err = fmt.Errorf("queue not empty: %+v", s)
		}
		return err
	})
}
