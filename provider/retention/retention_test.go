package retention

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type testBundle struct {
	st    *sqlite.Store
	path  string
	hook  *store.Hook
	clock *clock
}

func setup(tb testing.TB) *testBundle {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "webhooks.db")
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, Getenv: func(string) string { return "" }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	h, err := st.HookCreate(context.Background(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		DisplayName: "h", PayloadURL: "https://example.com/h", Active: true}, Now: t0})
	if err != nil {
		tb.Fatal(err)
	}
	return &testBundle{st: st, path: path, hook: h, clock: &clock{now: t0}}
}

// deliverEvents stores n events at the clock's time, each with one delivery, and records a
// successful attempt with a response body of respBytes for every one.
func (b *testBundle) deliverEvents(tb testing.TB, n, respBytes int) {
	tb.Helper()
	ctx := context.Background()
	now := b.clock.Now()
	body := []byte(fmt.Sprintf(`{"payload":"%s"}`, strings.Repeat("x", 512)))
	for range n {
		ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: body, CreatedAt: now}
		err := b.st.EventEmit(ctx, func(tx store.EmitTx) error {
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			if err := tx.IdempotencyPut(ctx, "acme", ev.ID, []byte(`{}`), now); err != nil {
				return err
			}
			return tx.DeliveryInsertMany(ctx, ev.ID, now, []store.DeliveryInsertParams{{HookID: b.hook.ID, Body: body, Endpoint: "example.com:443", State: store.DeliveryPending, NextAttemptAt: now}})
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	resp := []byte(strings.Repeat("r", respBytes))
	for {
		cds, err := b.st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Minute, Limit: 64})
		if err != nil {
			tb.Fatal(err)
		}
		if len(cds) == 0 {
			return
		}
		ps := make([]store.DeliveryCompleteParams, len(cds))
		for i, cd := range cds {
			ps[i] = store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: cd.Attempts, State: store.DeliverySucceeded, Now: now,
				Record: store.Attempt{StartedAt: now, ResponseCode: 200, RequestBody: cd.Body, ResponseBody: resp}}
		}
		for _, err := range b.st.DeliveryCompleteMany(ctx, ps) {
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
}

func (b *testBundle) count(tb testing.TB, table string) int {
	tb.Helper()
	var n int
	if err := b.st.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Store is required"},
		{Config{Store: b.st, Retention: -time.Hour}, "Retention"},
		{Config{Store: b.st, Interval: -time.Second}, "Interval"},
		{Config{Store: b.st, Batch: -1}, "Batch"},
		{Config{Store: b.st, Pause: -time.Second}, "Pause"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

func TestRunOnceInBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deliverEvents(t, 25, 100)
	b.clock.Set(t0.Add(2 * time.Hour))
	b.deliverEvents(t, 5, 100)
	p, err := New(Config{Store: b.st, Now: b.clock.Now, Retention: time.Hour, Batch: 10, Pause: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run := p.RunOnce(t.Context())
	if run.Err != nil || run.Deleted.Events != 25 || run.Deleted.Attempts != 25 || run.Deleted.IdempotencyKeys != 25 || run.Batches < 3 {
		t.Fatalf("RunOnce = %+v; want 25 events, attempts and keys deleted in at least 3 batches of 10", run)
	}
	if n := b.count(t, "events"); n != 5 {
		t.Fatalf("%d events left, want the 5 recent ones", n)
	}
	if p.Last().Deleted.Events != 25 {
		t.Fatalf("Last = %+v", p.Last())
	}
	// A canceled run stops and says why.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if run := p.RunOnce(ctx); run.Err == nil {
		t.Fatal("RunOnce with a canceled context reported no error")
	}
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deliverEvents(t, 10, 100)
	b.clock.Set(t0.Add(31 * 24 * time.Hour))
	p, err := New(Config{Store: b.st, Now: b.clock.Now, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.Stop() // before Start: nothing
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err == nil {
		t.Fatal("a second Start succeeded")
	}
	deadline := time.Now().Add(30 * time.Second)
	for b.count(t, "events") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the running pruner did not delete the old events")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Stop()
	// Stopped: nothing more is deleted.
	b.deliverEvents(t, 3, 100)
	b.clock.Set(t0.Add(62 * 24 * time.Hour))
	time.Sleep(50 * time.Millisecond)
	if n := b.count(t, "events"); n != 3 {
		t.Fatalf("%d events after Stop, want 3: the pruner kept running", n)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	p.Stop()
}

// fileSize is the database's size on disk, main file and WAL.
func fileSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// BenchmarkStoreSizeUnderRetention runs many simulated hours of traffic (events delivered
// with a 4 KiB response body recorded per attempt), pruning with a 6-hour retention after
// each hour, and prints the store's size on disk per hour beside the same run without
// pruning: with retention the size levels off once six hours are stored.
func BenchmarkStoreSizeUnderRetention(b *testing.B) {
	const hours, perHour, retentionHours = 36, 400, 6
	for range b.N {
		for _, prune := range []bool{false, true} {
			tb := setup(b)
			p, err := New(Config{Store: tb.st, Now: tb.clock.Now, Retention: retentionHours * time.Hour, Pause: time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			var sizes []string
			var last int64
			var longest time.Duration
			batches := 0
			for h := range hours {
				tb.clock.Set(t0.Add(time.Duration(h) * time.Hour))
				tb.deliverEvents(b, perHour, 4<<10)
				if prune {
					run := p.RunOnce(context.Background())
					if run.Err != nil {
						b.Fatal(run.Err)
					}
					longest, batches = max(longest, run.Longest), batches+run.Batches
				}
				if _, err := tb.st.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
					b.Fatal(err)
				}
				last = fileSize(tb.path)
				if h%3 == 2 {
					sizes = append(sizes, fmt.Sprintf("h%d=%.1fMiB", h+1, float64(last)/(1<<20)))
				}
			}
			b.Logf("retention %v: %d events/hour for %d hours, store size: %s (events stored: %d; %d prune batches, longest %s)",
				map[bool]string{false: "off", true: fmt.Sprint(retentionHours, "h")}[prune], perHour, hours,
				strings.Join(sizes, " "), tb.count(b, "events"), batches, longest.Round(time.Microsecond))
			b.ReportMetric(float64(last)/(1<<20), map[bool]string{false: "MiB-no-retention", true: "MiB-retention"}[prune])
		}
	}
}

func TestCollector(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deliverEvents(t, 4, 10)
	b.clock.Set(t0.Add(31 * 24 * time.Hour))
	p, err := New(Config{Store: b.st, Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector())
	p.RunOnce(t.Context())
	want := `
# HELP pulumi_webhooks_retention_deleted_total Rows the history pruner deleted, by kind.
# TYPE pulumi_webhooks_retention_deleted_total counter
pulumi_webhooks_retention_deleted_total{kind="attempts"} 4
pulumi_webhooks_retention_deleted_total{kind="bodies"} 0
pulumi_webhooks_retention_deleted_total{kind="deliveries"} 4
pulumi_webhooks_retention_deleted_total{kind="deployment_requests"} 0
pulumi_webhooks_retention_deleted_total{kind="deployments"} 0
pulumi_webhooks_retention_deleted_total{kind="events"} 4
pulumi_webhooks_retention_deleted_total{kind="idempotency_keys"} 4
# HELP pulumi_webhooks_retention_runs_total Runs of the history pruner, by result (ok or failed).
# TYPE pulumi_webhooks_retention_runs_total counter
pulumi_webhooks_retention_runs_total{result="failed"} 0
pulumi_webhooks_retention_runs_total{result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pulumi_webhooks_retention_deleted_total", "pulumi_webhooks_retention_runs_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "pulumi_webhooks_retention_last_run_timestamp_seconds"); err != nil || n != 1 {
		t.Fatalf("last run gauge: %d, %v", n, err)
	}
}

func TestRunOnceFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, err := New(Config{Store: b.st, Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	b.st.Close()
	if run := p.RunOnce(t.Context()); run.Err == nil {
		t.Fatal("RunOnce on a closed store reported no error")
	}
	if tot := p.Totals(); tot.Runs != 1 || tot.Failures != 1 {
		t.Fatalf("Totals = %+v, want one failed run", tot)
	}
}
