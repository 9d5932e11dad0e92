package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The same workloads on the SQLite store and on the PostgreSQL store, with one server and with
// three: each "server" is an engine with its own store handle (its own connections, session
// and holder locks), as a `pulumi-webhooks serve` process has. BenchmarkServersShareOnePostgres
// (provider/cmd/pulumi-webhooks) runs real processes.

// storeKind opens the stores of one backend: a fresh database, then as many handles on it as
// there are servers.
type storeKind struct {
	name string
	// fresh returns the location of a new, empty database.
	fresh func(t testing.TB) string
	open  func(t testing.TB, loc string) store.Store
}

var benchSQLite = storeKind{name: "sqlite",
	fresh: func(t testing.TB) string { return filepath.Join(t.TempDir(), "bench.db") },
	open: func(t testing.TB, loc string) store.Store {
		st, err := sqlite.Open(context.Background(), sqlite.Config{Path: loc, Key: testKey})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}}

var benchPostgres = storeKind{name: "postgres",
	fresh: func(t testing.TB) string { return pgtest.Shared(t).NewDatabase(t) },
	open: func(t testing.TB, loc string) store.Store {
		st, err := postgres.Open(context.Background(), postgres.Config{URL: loc, Key: testKey, Getenv: func(string) string { return "" }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}}

// servers is a backend's database with n engines on it, each on its own store handle.
type servers struct {
	engines []*Engine
	stores  []store.Store
}

func newServers(t testing.TB, kind storeKind, n int, mods ...func(*Config)) *servers {
	t.Helper()
	loc := kind.fresh(t)
	s := &servers{}
	for range n {
		st := kind.open(t, loc)
		cfg := Config{Store: st, AllowTargets: loopback, PollInterval: 50 * time.Millisecond}
		for _, m := range mods {
			m(&cfg)
		}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.engines, s.stores = append(s.engines, e), append(s.stores, st)
	}
	return s
}

// storeThroughput stores events x hooks deliveries (the hooks spread over endpoints
// receivers), then starts every server and returns deliveries per second from Start until
// the receivers have every delivery and the queue is empty; each delivery must arrive once.
func storeThroughput(t testing.TB, kind storeKind, nServers, endpoints, hooks, events int) float64 {
	t.Helper()
	const workers = 8
	s := newServers(t, kind, nServers, func(c *Config) { c.Workers = workers; c.PerEndpointLimit = workers })
	rcs := make([]*benchReceiver, endpoints)
	for i := range rcs {
		rcs[i] = newBenchReceiver(t)
	}
	specs := make([]webhook.Spec, hooks)
	for i := range specs {
		specs[i] = hookSpec("h"+strconv.Itoa(i), rcs[i%endpoints].srv.URL+"/hook", func(s *webhook.Spec) { s.Secret = "bench-secret" })
	}
	e0, ctx := s.engines[0], context.Background()
	benchCreateHooks(t, e0, specs)
	ids := map[string]bool{}
	for range events {
		res, err := e0.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := s.stores[0].DeliveryListByEvent(ctx, res.EventID)
		if err != nil || len(ds) != hooks {
			t.Fatalf("an event to %d hooks stored %d deliveries (%v)", hooks, len(ds), err)
		}
		for _, d := range ds {
			ids[d.ID] = true
		}
	}
	start := time.Now()
	for _, e := range s.engines {
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitfor.NoError(t, func() error {
		var n int64
		for _, r := range rcs {
			n += r.n.Load()
		}
		if n < int64(len(ids)) {
			return fmt.Errorf("%d of %d deliveries arrived", n, len(ids))
		}
		st, err := e0.QueueStats(ctx)
		if err == nil && (st.Pending != 0 || st.Running != 0) {
			err = fmt.Errorf("queue not empty: %+v", st)
		}
		return err
	})
	elapsed := time.Since(start)
	for _, e := range s.engines {
		if err := e.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	for _, r := range rcs {
		r.mu.Lock()
		for id, n := range r.byID {
			seen[id] += n
		}
		r.mu.Unlock()
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("delivery %s arrived %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("%d distinct deliveries arrived, want the %d stored", len(seen), len(ids))
	}
	return float64(len(ids)) / elapsed.Seconds()
}

// BenchmarkStoresDeliveryThroughput: BenchmarkDeliveryThroughput's workload (5,000 signed
// deliveries stored before the clock starts, 8 workers per server, a cap of 8 per endpoint),
// spread over 5 endpoints, delivered by one server and by three on one SQLite file, and by one
// and three on one PostgreSQL database. Ratios are against one server on SQLite.
func BenchmarkStoresDeliveryThroughput(b *testing.B) {
	for range b.N {
		sq := storeThroughput(b, benchSQLite, 1, 5, 50, 100)
		sq3 := storeThroughput(b, benchSQLite, 3, 5, 50, 100)
		pg1 := storeThroughput(b, benchPostgres, 1, 5, 50, 100)
		pg3 := storeThroughput(b, benchPostgres, 3, 5, 50, 100)
		b.ReportMetric(sq, "sqlite-1-deliveries/s")
		b.ReportMetric(sq3, "sqlite-3-deliveries/s")
		b.ReportMetric(pg1, "postgres-1-deliveries/s")
		b.ReportMetric(pg3, "postgres-3-deliveries/s")
		b.ReportMetric(pg1/sq, "postgres-1/sqlite")
		b.ReportMetric(pg3/sq, "postgres-3/sqlite")
	}
}

// TestStoresDeliveryThroughputCounts runs BenchmarkStoresDeliveryThroughput's three-server
// PostgreSQL half at a bounded size: every delivery arrives exactly once.
func TestStoresDeliveryThroughputCounts(t *testing.T) {
	t.Parallel()
	storeThroughput(t, benchPostgres, 3, 3, 9, 30)
}

// emitLatencies emits events through one server (no workers) from emitters goroutines and
// returns the sorted latencies of Emit and the events per second.
func emitLatencies(t testing.TB, kind storeKind, emitters, events int) ([]time.Duration, float64) {
	t.Helper()
	s := newServers(t, kind, 1)
	rc := newBenchReceiver(t)
	benchCreateHooks(t, s.engines[0], []webhook.Spec{hookSpec("lat", rc.srv.URL+"/lat")})
	ctx := context.Background()
	lat := make([]time.Duration, events)
	var wg sync.WaitGroup
	errs := make(chan error, emitters)
	start := time.Now()
	for w := range emitters {
		wg.Go(func() {
			for i := w; i < events; i += emitters {
				t0 := time.Now()
				if _, err := s.engines[0].Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject}); err != nil {
					errs <- err
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	rate := float64(events) / time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	slices.Sort(lat)
	return lat, rate
}

// BenchmarkStoresEmitLatency: Emit (matching, the event and its delivery stored and durable
// before it returns) one after another, and from 16 emitters at once, on SQLite and on
// PostgreSQL: p50 and p99 latency and events per second.
func BenchmarkStoresEmitLatency(b *testing.B) {
	for range b.N {
		for _, kind := range []storeKind{benchSQLite, benchPostgres} {
			for _, emitters := range []int{1, 16} {
				lat, rate := emitLatencies(b, kind, emitters, 2000)
				name := kind.name + "-" + strconv.Itoa(emitters)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, name+"-p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, name+"-p99-ms")
				b.ReportMetric(rate, name+"-events/s")
			}
		}
	}
}
