// Package servertest starts real parts for tests of the server, the CLI and the remote
// client: a pulumi-webhooks API server on a loopback listener over a SQLite store in a
// temporary directory, with its delivery workers running and allowed to reach loopback, API
// tokens for a few organizations, and webhook receivers that record what they get.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
)

// Loopback is the allow-list that lets deliveries reach test receivers.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// Opts configures Start.
type Opts struct {
	// Orgs get one API token each (default "acme" and "globex").
	Orgs []string
	// Engine, when set, adjusts the engine's configuration before it is built.
	Engine func(*engine.Config)
	// Server, when set, adjusts the server's configuration before it is built.
	Server func(*server.Config)
	// NoWorkers leaves the delivery workers stopped.
	NoWorkers bool
	// Verbose sends the server's logs to the test log.
	Verbose bool
	// StorePath, when set, opens that store file instead of a fresh one, as another server on
	// the same store would, and issues no tokens: Tokens is empty.
	StorePath string
}

// Bundle is a running server and what it runs on.
type Bundle struct {
	// URL is the server's base URL, http://127.0.0.1:port.
	URL       string
	StorePath string
	Store     *sqlite.Store
	Engine    *engine.Engine
	Server    *server.Server
	Metrics   *server.Metrics
	HTTP      *httptest.Server
	// Tokens maps each organization to its API token.
	Tokens map[string]string
}

// Start builds and starts everything; t.Cleanup stops it.
func Start(t testing.TB, o Opts) *Bundle {
	t.Helper()
	if len(o.Orgs) == 0 {
		o.Orgs = []string{"acme", "globex"}
	}
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	if o.Verbose {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	path := o.StorePath
	if path == "" {
		path = filepath.Join(t.TempDir(), "webhooks.db")
	} else {
		o.Orgs = nil
	}
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path, Logger: log})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	metrics := server.NewMetrics()
	ecfg := engine.Config{
		Store: st, Logger: log, AllowTargets: Loopback, Workers: 4, Timeout: 5 * time.Second,
		RetrySchedule: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond},
		PollInterval:  20 * time.Millisecond, Observer: metrics, Version: "test",
	}
	if o.Engine != nil {
		o.Engine(&ecfg)
	}
	e, err := engine.New(ecfg)
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	metrics.WatchQueue(e.QueueStats)
	// No rate limit unless a test sets one: tests fire requests as fast as they can.
	scfg := server.Config{Engine: e, Store: st, Logger: log, Metrics: metrics, RateLimit: rate.Inf}
	if o.Server != nil {
		o.Server(&scfg)
	}
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	b := &Bundle{StorePath: path, Store: st, Engine: e, Server: srv, Metrics: metrics, Tokens: map[string]string{}}
	for _, org := range o.Orgs {
		tok, _, err := server.IssueToken(ctx, st, server.IssueTokenParams{Org: org, Description: "test"})
		if err != nil {
			t.Fatalf("token for %s: %v", org, err)
		}
		b.Tokens[org] = tok
	}
	b.HTTP = httptest.NewServer(srv.Handler())
	b.URL = b.HTTP.URL
	if !o.NoWorkers {
		if err := e.Start(ctx); err != nil {
			t.Fatalf("start workers: %v", err)
		}
	}
	t.Cleanup(func() {
		b.HTTP.Close()
		sctx, cancel := context.WithTimeout(ctx, waitfor.Limit)
		defer cancel()
		if err := e.Stop(sctx); err != nil {
			t.Errorf("stop workers: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return b
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Request is one request a Receiver got.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// Receiver is a webhook endpoint on loopback that records every request and answers with a
// configurable status after a configurable delay.
type Receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	changed chan struct{}
	reqs    []Request
	status  int
	delay   time.Duration
	hold    chan struct{}
	started chan struct{}
}

// NewReceiver starts a receiver answering 200; t.Cleanup stops it.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{status: http.StatusOK, changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.Release()
		r.srv.Close()
	})
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	status, delay, hold, started := r.status, r.delay, r.hold, r.started
	r.started = nil
	r.mu.Unlock()
	if started != nil {
		close(started)
	}
	if hold != nil {
		<-hold
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, Request{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body, At: time.Now()})
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write([]byte("ok"))
}

// URL is the receiver's URL (with path /hook).
func (r *Receiver) URL() string { return r.srv.URL + "/hook" }

// SetStatus sets the status code of later answers.
func (r *Receiver) SetStatus(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = code
}

// SetDelay makes later answers wait d.
func (r *Receiver) SetDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// Hold makes later requests wait until Release, and returns a channel closed when the next
// request arrives.
func (r *Receiver) Hold() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hold = make(chan struct{})
	r.started = make(chan struct{})
	return r.started
}

// Release lets held requests answer.
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hold != nil {
		close(r.hold)
		r.hold = nil
	}
}

// Requests returns the requests answered so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// Wait returns once n requests have been answered, or fails t after waitfor.Limit.
func (r *Receiver) Wait(t testing.TB, n int) []Request {
	t.Helper()
	deadline := time.NewTimer(waitfor.Limit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, changed := len(r.reqs), r.changed
		r.mu.Unlock()
		if got >= n {
			return r.Requests()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("receiver got %d requests within %s, want %d", got, waitfor.Limit, n)
			return nil
		}
	}
}
