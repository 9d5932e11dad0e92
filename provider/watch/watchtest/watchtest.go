// Package watchtest is what tests of the backend watcher share: a store, an engine with its
// delivery workers, and an HTTP receiver on 127.0.0.1 subscribed to every event of the DIY
// backends' organization, so a test sees the events as a webhook endpoint does.
package watchtest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Org is the organization DIY backends report.
const Org = "organization"

// Server is one process's share of the product: a store (possibly shared with other Servers
// through the same file) and an engine delivering from it.
type Server struct {
	Store  *sqlite.Store
	Engine *engine.Engine
}

// NewServer opens the store at path and starts an engine on it, stopped at cleanup.
func NewServer(t testing.TB, path string, log *slog.Logger) *Server {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Getenv: func(string) string { return "" }, Logger: log})
	if err != nil {
		t.Fatalf("open store %s: %v", path, err)
	}
	e, err := engine.New(engine.Config{
		Store: st, Logger: log, Version: "test", Workers: 4, PollInterval: 20 * time.Millisecond,
		AllowTargets: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	t.Cleanup(func() {
		_ = e.Stop(t.Context())
		_ = st.Close()
	})
	return &Server{Store: st, Engine: e}
}

// Subscribe creates an organization webhook sending every event to r.
func (s *Server) Subscribe(t testing.TB, r *Receiver) {
	t.Helper()
	if _, err := s.Engine.HookCreate(t.Context(), webhook.Spec{
		Scope: webhook.Scope{Org: Org}, Name: "all", DisplayName: "every event", PayloadURL: r.URL(), Active: true,
	}); err != nil {
		t.Fatalf("create hook: %v", err)
	}
}

// Delivery is one request the receiver got.
type Delivery struct {
	// Event is the event's name as a filter: stack_created, update_failed, ...
	Event   string
	Kind    string
	Payload map[string]any
}

// Stack is the payload's "projectName/stackName".
func (d Delivery) Stack() string {
	return fmt.Sprint(d.Payload["projectName"], "/", d.Payload["stackName"])
}

// Receiver is an HTTP endpoint on 127.0.0.1 that records what it gets.
type Receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []Delivery
	ch  chan struct{}
}

// NewReceiver starts a receiver, closed at cleanup.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{ch: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := Delivery{Kind: req.Header.Get(signature.HeaderKind)}
		if err := json.Unmarshal(body, &d.Payload); err != nil {
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		d.Event = eventName(d.Kind, d.Payload)
		r.mu.Lock()
		r.got = append(r.got, d)
		r.mu.Unlock()
		select {
		case r.ch <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is where the receiver listens.
func (r *Receiver) URL() string { return r.srv.URL + "/hook" }

// Got returns what the receiver got so far.
func (r *Receiver) Got() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// WaitFor waits until the receiver holds at least n deliveries (failing the test after
// limit), then returns them all.
func (r *Receiver) WaitFor(t testing.TB, n int, limit time.Duration) []Delivery {
	t.Helper()
	deadline := time.After(limit)
	for {
		if got := r.Got(); len(got) >= n {
			return got
		}
		select {
		case <-r.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("receiver got %d deliveries after %s, want %d: %s", len(r.Got()), limit, n, Events(r.Got()))
		}
	}
}

// Quiet checks that nothing more arrives for d (a test of "nothing else", not of speed).
func (r *Receiver) Quiet(t testing.TB, n int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if got := r.Got(); len(got) != n {
		t.Fatalf("receiver got %d deliveries, want exactly %d: %s", len(got), n, Events(got))
	}
}

// Events lists the deliveries as "event project/stack" lines.
func Events(ds []Delivery) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "\n  %s %s", d.Event, d.Stack())
	}
	return b.String()
}

// eventName rebuilds the filter of a raw payload from its kind and fields.
func eventName(kind string, p map[string]any) string {
	switch webhook.Kind(kind) {
	case webhook.KindStack:
		return fmt.Sprint("stack_", p["action"])
	case webhook.KindStackUpdate:
		return fmt.Sprint(p["kind"], "_", p["result"])
	case webhook.KindStackPreview:
		return fmt.Sprint("preview_", p["result"])
	}
	return kind
}
