package engine

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestStoreWakeStartsOtherServersWorkers: two servers share a PostgreSQL store; one emits, the
// other, whose workers poll only once an hour, delivers at once because the store's NOTIFY
// wakes it (store.Waker). Without the wake-up the delivery would wait for the poll.
func TestStoreWakeStartsOtherServersWorkers(t *testing.T) {
	t.Parallel()
	url := pgtest.Start(t).NewDatabase(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(context.Background(), postgres.Config{URL: url, Key: testKey, Getenv: func(string) string { return "" }})
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	newEngine := func(st store.Store) *Engine {
		eng, err := New(Config{Store: st, Logger: slog.New(slog.DiscardHandler), Version: "test", AllowTargets: loopback,
			Workers: 2, Timeout: 5 * time.Second, PollInterval: time.Hour})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return eng
	}
	emitter, deliverer := newEngine(open()), newEngine(open())
	rc := newReceiver(t, nil)
	if _, err := emitter.store.HookCreate(t.Context(), store.HookCreateParams{Spec: hookSpec("h", rc.url("/hook")), Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := deliverer.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitfor.Limit)
		defer cancel()
		_ = deliverer.Stop(ctx)
	})
	// Let the deliverer finish its first (empty) round and go to sleep for its hour.
	time.Sleep(200 * time.Millisecond)
	res, err := emitter.Emit(t.Context(), EmitParams{Filter: webhook.StackCreated, Subject: stackSubject})
	if err != nil || res.Deliveries != 1 {
		t.Fatalf("Emit = %+v, %v", res, err)
	}
	got := rc.next(t)
	if got.path != "/hook" || got.header.Get("Pulumi-Webhook-ID") == "" {
		t.Fatalf("received %+v", got)
	}
}

// TestPostgresRestartDeliversEverything: the database server restarts (every session is
// terminated, as in a failover) while events are emitted and delivered; every event's delivery
// arrives, and emits made during the restart wait for it instead of failing.
func TestPostgresRestartDeliversEverything(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	st, err := postgres.Open(context.Background(), postgres.Config{URL: srv.NewDatabase(t), Key: testKey, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := New(Config{Store: st, Logger: slog.New(slog.DiscardHandler), Version: "test", AllowTargets: loopback,
		Workers: 4, Timeout: 5 * time.Second, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, nil)
	if _, err := st.HookCreate(t.Context(), store.HookCreateParams{Spec: hookSpec("h", rc.url("/hook")), Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitfor.Limit)
		defer cancel()
		_ = eng.Stop(ctx)
	})
	const n = 40
	emitted := make(chan error, n)
	go func() {
		for i := range n {
			if i == n/2 {
				if err := srv.Stop(); err != nil {
					emitted <- err
					return
				}
				go func() {
					time.Sleep(300 * time.Millisecond) // down for a moment, as in a failover
					if err := srv.Start(); err != nil {
						t.Errorf("restart: %v", err)
					}
				}()
			}
			_, err := eng.Emit(context.Background(), EmitParams{Filter: webhook.StackCreated, Subject: stackSubject})
			emitted <- err
		}
	}()
	for range n {
		if err := waitfor.Receive(t, "an emit", emitted); err != nil {
			t.Fatalf("emit: %v", err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < n {
		got := rc.next(t)
		seen[got.header.Get("Pulumi-Webhook-ID")] = true
	}
}
