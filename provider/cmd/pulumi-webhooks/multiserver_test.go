package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
)

// Several `pulumi-webhooks serve` processes on one PostgreSQL database, as README "Running
// several servers" describes them: real processes of the built binary, a real PostgreSQL
// server (pgtest) and receivers on 127.0.0.1 that count the requests they hold at once.

// secretKeyEnv returns the environment entry of a fresh secret key, shared by every process of
// a test as the servers of one database must share theirs.
func secretKeyEnv(t testing.TB) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return "PULUMI_WEBHOOKS_SECRET_KEY=" + base64.StdEncoding.EncodeToString(k)
}

// countingReceiver is an endpoint that answers 200 after hold, counting the requests it holds
// at once (and the most it ever held), and every delivery ID it answered.
type countingReceiver struct {
	srv      *httptest.Server
	hold     time.Duration
	inflight atomic.Int64
	peak     atomic.Int64
	answered atomic.Int64

	mu   sync.Mutex
	byID map[string]int
	at   map[string][]time.Time // when each delivery was answered
}

func newCountingReceiver(t testing.TB, hold time.Duration) *countingReceiver {
	r := &countingReceiver{hold: hold, byID: map[string]int{}, at: map[string][]time.Time{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.inflight.Add(1)
		defer r.inflight.Add(-1)
		for {
			p := r.peak.Load()
			if n <= p || r.peak.CompareAndSwap(p, n) {
				break
			}
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if r.hold > 0 {
			select {
			case <-time.After(r.hold):
			case <-req.Context().Done(): // the sender died: not answered
				return
			}
		}
		id := req.Header.Get(signature.HeaderID)
		r.mu.Lock()
		r.byID[id]++
		r.at[id] = append(r.at[id], time.Now())
		r.mu.Unlock()
		r.answered.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *countingReceiver) URL() string { return r.srv.URL + "/hook" }

// distinct returns how many deliveries were answered and how many answers were repeats.
func (r *countingReceiver) distinct() (n, repeats int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.byID {
		n++
		repeats += c - 1
	}
	return n, repeats
}

// answeredAfter returns when delivery id was first answered after t.
func (r *countingReceiver) answeredAfter(id string, t time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, at := range r.at[id] {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// cluster is N servers on one store, with a token and hooks to its receivers.
type cluster struct {
	t       testing.TB
	store   string
	env     []string
	token   string
	servers []*serverProc
	rcvs    []*countingReceiver
}

// newCluster starts n servers on store (a postgres:// URL), each with a per-endpoint cap of
// perEndpoint, and creates one stack hook per receiver: stack s<i> of acme/web goes to rcvs[i].
func newCluster(t testing.TB, store string, n, perEndpoint int, rcvs []*countingReceiver, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, store: store, env: append(cleanEnv(t), secretKeyEnv(t)), rcvs: rcvs}
	c.token = strings.TrimSpace(c.cli(0, "token", "create", "--org", "acme", "--store", store))
	for range n {
		c.servers = append(c.servers, startServerEnv(t, c.env, store, append([]string{"--per-endpoint-limit", strconv.Itoa(perEndpoint),
			"--rate-limit", "0", "--retention", "0"}, extra...)...))
	}
	for i, r := range rcvs {
		c.servers[0].call(c.token, "POST", fmt.Sprintf("/api/stacks/acme/web/s%d/hooks", i), map[string]any{
			"organizationName": "acme", "projectName": "web", "stackName": fmt.Sprintf("s%d", i), "name": "h",
			"displayName": "h", "payloadUrl": r.URL(), "active": true, "secret": "multi-server-secret",
		}, http.StatusCreated, nil)
	}
	return c
}

func (c *cluster) cli(want int, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run %v: %v", args, err)
	}
	if code != want {
		c.t.Fatalf("pulumi-webhooks %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String()
}

// alive returns the servers that have not exited.
func (c *cluster) alive() []*serverProc {
	var out []*serverProc
	for _, s := range c.servers {
		select {
		case <-s.exited:
		default:
			out = append(out, s)
		}
	}
	return out
}

// emitter posts events through the servers, round-robin, with `clients` requests at once.
// Each event has its own Idempotency-Key; a request that fails (its server died, the
// database is restarting) is sent again, to another server, until it is answered 202.
type emitter struct {
	c        *cluster
	client   *http.Client
	accepted atomic.Int64
	retried  atomic.Int64
	latency  []time.Duration // of the first try of each event, when it was answered 202
	mu       sync.Mutex
}

func newEmitter(c *cluster) *emitter {
	return &emitter{c: c, client: &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// emit sends events [from, to) and returns once every one is accepted (or the test fails).
func (em *emitter) emit(ctx context.Context, from, to, clients int) error {
	work := make(chan int, to-from)
	for i := from; i < to; i++ {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := range clients {
		wg.Go(func() {
			for i := range work {
				if err := em.one(ctx, i, w); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (em *emitter) one(ctx context.Context, i, w int) error {
	body, _ := json.Marshal(map[string]any{"filter": "update_succeeded", "projectName": "web",
		"stackName": fmt.Sprintf("s%d", i%len(em.c.rcvs))})
	deadline := time.Now().Add(waitfor.Limit)
	for try := 0; ; try++ {
		alive := em.c.alive()
		if len(alive) == 0 {
			return fmt.Errorf("event %d: no server left", i)
		}
		srv := alive[(i+w+try)%len(alive)]
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+srv.addr+"/api/orgs/acme/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "token "+em.c.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "event-"+strconv.Itoa(i))
		start := time.Now()
		resp, err := em.client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				em.accepted.Add(1)
				if try == 0 {
					em.mu.Lock()
					em.latency = append(em.latency, time.Since(start))
					em.mu.Unlock()
				}
				return nil
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("event %d: %w", i, err)
		}
		em.retried.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pgConn connects the test itself to the servers' database, to look at what they stored.
func pgConn(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// pgCount runs a query of one integer.
func pgCount(t testing.TB, conn *pgx.Conn, q string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// heldBy returns the IDs of the deliveries running under the workers of process pid (worker
// names are host/pid/suffix).
func heldBy(t testing.TB, conn *pgx.Conn, pid int) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT id FROM deliveries WHERE state = 'running' AND claimed_by LIKE $1`,
		"%/"+strconv.Itoa(pid)+"/%")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// multiServerEvents is the size of TestServersShareOnePostgres; BenchmarkServersShareOnePostgres
// runs the same workload at 10,000.
const multiServerEvents = 4000

// TestServersShareOnePostgres: three servers on one PostgreSQL database deliver events emitted
// through all of them to four endpoints, one server SIGKILLed midway. Every delivery arrives;
// no endpoint ever holds more requests at once than --per-endpoint-limit, across the servers;
// the killed server's deliveries are taken over by the others (the time is printed); repeats
// are at most the deliveries it held.
func TestServersShareOnePostgres(t *testing.T) {
	t.Parallel()
	res := runServersShare(t, pgtest.Shared(t).NewDatabase(t), multiServerEvents)
	t.Logf("%d events through 3 servers (one SIGKILLed): %s", multiServerEvents, res)
}

// shareResult is what runServersShare measured.
type shareResult struct {
	events        int
	elapsed       time.Duration
	takeover      time.Duration
	held, repeats int
	peak          int64
	emitP50       time.Duration
	emitP99       time.Duration
}

func (r shareResult) String() string {
	return fmt.Sprintf("all delivered in %s (%.0f deliveries/s); the killed server held %d deliveries, the others had delivered "+
		"every one %s after the kill; %d repeated; highest concurrency at one endpoint %d; emit p50 %s, p99 %s",
		r.elapsed.Round(time.Millisecond), float64(r.events)/r.elapsed.Seconds(), r.held, r.takeover.Round(time.Millisecond), r.repeats, r.peak, r.emitP50, r.emitP99)
}

func runServersShare(t testing.TB, url string, events int) shareResult {
	t.Helper()
	const perEndpoint = 4
	rcvs := make([]*countingReceiver, 4)
	for i := range rcvs {
		rcvs[i] = newCountingReceiver(t, 2*time.Millisecond)
	}
	c := newCluster(t, url, 3, perEndpoint, rcvs, "--workers", "8")
	conn := pgConn(t, url)
	em := newEmitter(c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	emitted := make(chan error, 1)
	go func() { emitted <- em.emit(ctx, 0, events, 16) }()

	answered := func() int64 {
		var n int64
		for _, r := range rcvs {
			n += r.answered.Load()
		}
		return n
	}
	waitfor.Condition(t, "a third of the deliveries", func() bool { return answered() >= int64(events/3) })
	// The victim is stopped first, so that what it holds can be read exactly (a stopped
	// process changes nothing, and its session, still open, keeps the others from releasing
	// it), then killed.
	victim := c.servers[1]
	pid := victim.cmd.Process.Pid
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for _, id := range heldBy(t, conn, pid) {
		held[id] = true
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitfor.Receive(t, "the killed server to exit", victim.exited)
	// Taken over: every delivery the killed server still held is finished by the others (the
	// ones it had posted without recording the answer are posted again). The takeover time is
	// that of the last of them to be answered after the kill.
	var takeover time.Duration
	ids := make([]string, 0, len(held))
	for id := range held {
		ids = append(ids, id)
	}
	waitfor.Condition(t, "the killed server's deliveries to be finished by the others", func() bool {
		return pgCount(t, conn, `SELECT count(*) FROM deliveries WHERE id = ANY($1) AND state <> 'succeeded'`, ids) == 0
	})
	for _, id := range ids {
		for _, r := range rcvs {
			if at, ok := r.answeredAfter(id, killed); ok {
				takeover = max(takeover, at.Sub(killed))
			}
		}
	}
	if err := <-emitted; err != nil {
		t.Fatalf("emitting: %v", err)
	}
	waitfor.NoError(t, func() error {
		n := 0
		for _, r := range rcvs {
			d, _ := r.distinct()
			n += d
		}
		if n < events {
			return fmt.Errorf("%d of %d deliveries answered", n, events)
		}
		return nil
	})
	elapsed := time.Since(start)
	res := shareResult{events: events, elapsed: elapsed, takeover: takeover, held: len(held)}
	total := 0
	for i, r := range rcvs {
		n, rep := r.distinct()
		total += n
		res.repeats += rep
		res.peak = max(res.peak, r.peak.Load())
		if p := r.peak.Load(); p > perEndpoint {
			t.Errorf("endpoint %d held %d requests at once; the cap is %d across the servers", i, p, perEndpoint)
		}
	}
	if total != events {
		t.Errorf("%d distinct deliveries answered, want %d", total, events)
	}
	if got := int(em.accepted.Load()); got != events {
		t.Errorf("%d events accepted, want %d", got, events)
	}
	waitfor.Condition(t, "every delivery recorded as succeeded", func() bool {
		return pgCount(t, conn, `SELECT count(*) FROM deliveries WHERE state = 'succeeded'`) == events
	})
	if n := pgCount(t, conn, `SELECT count(*) FROM deliveries`); n != events {
		t.Errorf("%d deliveries stored, want one per event (%d): an event was stored twice", n, events)
	}
	if res.repeats > res.held {
		t.Errorf("%d deliveries arrived more than once; at most the %d the killed server held may", res.repeats, res.held)
	}
	em.mu.Lock()
	res.emitP50, res.emitP99 = percentile(em.latency, 50), percentile(em.latency, 99)
	em.mu.Unlock()
	for _, s := range c.alive() {
		if code := s.terminate(); code != 0 {
			t.Errorf("a server exited %d after SIGTERM", code)
		}
	}
	return res
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}

// TestDatabaseRestartUnderLoad: the PostgreSQL server is stopped (sessions terminated, as in
// a failover) and started again while two servers deliver and clients emit. Nothing is lost:
// every accepted event is delivered; the servers keep running and resume on their own.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	const events = 2000
	rcvs := []*countingReceiver{newCountingReceiver(t, 2*time.Millisecond), newCountingReceiver(t, 2*time.Millisecond)}
	c := newCluster(t, url, 2, 4, rcvs, "--workers", "8")
	em := newEmitter(c)
	answered := func() int64 { return rcvs[0].answered.Load() + rcvs[1].answered.Load() }
	emitted := make(chan error, 1)
	go func() { emitted <- em.emit(context.Background(), 0, events, 8) }()
	waitfor.Condition(t, "a quarter of the deliveries", func() bool { return answered() >= events/4 })
	stopped := time.Now()
	if err := pg.Stop(); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
	atStop := answered()
	// Down until the servers have met the outage (their store retries, and says so).
	waitfor.Condition(t, "the servers to notice the database is down", func() bool {
		for _, s := range c.servers {
			if !s.logged("a database operation failed for a reason that passes; retrying") {
				return false
			}
		}
		return true
	})
	if err := pg.Start(); err != nil {
		t.Fatalf("start PostgreSQL again: %v", err)
	}
	restarted := time.Now()
	// Requests the receivers were answering when the database went away may still land; the
	// resumption is the first answer after the restart beyond those.
	waitfor.Condition(t, "deliveries to resume after the restart", func() bool { return answered() > atStop+16 })
	resumed := time.Since(restarted)
	if err := <-emitted; err != nil {
		t.Fatalf("emitting across the restart: %v", err)
	}
	waitfor.NoError(t, func() error {
		n0, _ := rcvs[0].distinct()
		n1, _ := rcvs[1].distinct()
		if n0+n1 < events {
			return fmt.Errorf("%d of %d deliveries answered", n0+n1, events)
		}
		return nil
	})
	conn := pgConn(t, url)
	waitfor.Condition(t, "every delivery recorded as succeeded", func() bool {
		return pgCount(t, conn, `SELECT count(*) FROM deliveries WHERE state = 'succeeded'`) == events
	})
	if n := pgCount(t, conn, `SELECT count(*) FROM deliveries`); n != events {
		t.Errorf("%d deliveries stored, want %d", n, events)
	}
	if alive := len(c.alive()); alive != 2 {
		t.Errorf("%d of 2 servers still running after the restart", alive)
	}
	_, r0 := rcvs[0].distinct()
	_, r1 := rcvs[1].distinct()
	if r0+r1 > 2*8 {
		t.Errorf("%d deliveries repeated; at most the 16 the workers held at the restart may", r0+r1)
	}
	t.Logf("database down %s (from stop to accepting connections again); deliveries resumed %s after it accepted connections again; "+
		"%d events accepted (%d requests retried by the clients), %d repeated deliveries",
		restarted.Sub(stopped).Round(time.Millisecond), resumed.Round(time.Millisecond), em.accepted.Load(), em.retried.Load(), r0+r1)
}

// BenchmarkServersShareOnePostgres: TestServersShareOnePostgres at 10,000 events (three
// servers, four endpoints, one server SIGKILLed a third of the way): deliveries per second
// from the first emit to the last delivery, the time until the killed server's deliveries were
// delivered by the others, repeats, and the emit latency through the API.
func BenchmarkServersShareOnePostgres(b *testing.B) {
	for range b.N {
		res := runServersShare(b, pgtest.Shared(b).NewDatabase(b), 10000)
		b.ReportMetric(float64(res.events)/res.elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(float64(res.takeover.Milliseconds()), "takeover-ms")
		b.ReportMetric(float64(res.held), "held-by-killed")
		b.ReportMetric(float64(res.repeats), "repeats")
		b.ReportMetric(float64(res.emitP50.Microseconds())/1000, "emit-p50-ms")
		b.ReportMetric(float64(res.emitP99.Microseconds())/1000, "emit-p99-ms")
	}
}
