package engine

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres"
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
