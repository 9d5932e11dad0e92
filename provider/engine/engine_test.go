package engine

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// testKey seals secrets in test stores; a fixed key spares a key file per test.
var testKey = bytes.Repeat([]byte{7}, 32)

// loopback is the allow-list that lets deliveries reach the test receivers.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// fakeClock is the injectable clock: it only moves when a test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().UTC().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// observed is one Observer call.
type observed struct {
	outcome  string
	disabled string
}

// recordingObserver passes every Observer call to a channel, so tests wait on signals.
type recordingObserver struct{ ch chan observed }

func (o *recordingObserver) AttemptFinished(outcome string, _ time.Duration) {
	o.ch <- observed{outcome: outcome}
}
func (o *recordingObserver) HookDisabled(reason string) { o.ch <- observed{disabled: reason} }

// next returns the next Observer call, failing the test after a while.
func (o *recordingObserver) next(t *testing.T) observed {
	t.Helper()
	return waitfor.Receive(t, "a delivery attempt to finish", o.ch)
}

// wantOutcome waits for the next finished attempt and checks its outcome.
func (o *recordingObserver) wantOutcome(t *testing.T, want string) {
	t.Helper()
	if got := o.next(t); got.outcome != want {
		t.Fatalf("attempt outcome = %+v, want %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a slog handler.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testBundle struct {
	eng   *Engine
	store *sqlite.Store
	path  string
	clock *fakeClock
	obs   *recordingObserver
	logs  *syncBuffer
}

// openStore opens a SQLite store at path, closed when the test ends.
func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, Key: testKey})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// setup builds an engine over a fresh SQLite file with a fake clock, loopback allowed, quick
// polling and JSON logs captured; mods adjust the configuration.
func setup(t *testing.T, mods ...func(*Config)) *testBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	b := &testBundle{
		store: openStore(t, path),
		path:  path,
		clock: newFakeClock(),
		obs:   &recordingObserver{ch: make(chan observed, 1024)},
		logs:  &syncBuffer{},
	}
	cfg := Config{
		Store:         b.store,
		Logger:        slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           b.clock.Now,
		Version:       "test",
		AllowTargets:  loopback,
		Workers:       4,
		Timeout:       5 * time.Second,
		RetrySchedule: []time.Duration{time.Minute, 10 * time.Minute, time.Hour},
		PollInterval:  10 * time.Millisecond,
		Observer:      b.obs,
	}
	for _, m := range mods {
		m(&cfg)
	}
	eng, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.eng = eng
	return b
}

// start runs the workers until the test ends.
func (b *testBundle) start(t *testing.T) {
	t.Helper()
	if err := b.eng.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitfor.Limit)
		defer cancel()
		if err := b.eng.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

// received is one request a receiver got.
type received struct {
	path   string
	header http.Header
	body   []byte
}

// receiver is a real HTTP server on 127.0.0.1 that records what it gets and answers with
// respond (200 when nil).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []received
	arrived chan received
	respond func(w http.ResponseWriter, r *http.Request, n int)
}

func newReceiver(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	t.Helper()
	rc := &receiver{arrived: make(chan received, 1024), respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got := received{path: r.URL.Path, header: r.Header.Clone(), body: body}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, got)
		n := len(rc.reqs)
		rc.mu.Unlock()
		select {
		case rc.arrived <- got:
		default:
		}
		if rc.respond != nil {
			rc.respond(w, r, n)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	if !strings.HasPrefix(rc.srv.URL, "http://127.0.0.1:") {
		t.Fatalf("receiver listens on %s, want 127.0.0.1", rc.srv.URL)
	}
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) url(path string) string { return rc.srv.URL + path }

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// next waits for the next request the receiver gets.
func (rc *receiver) next(t *testing.T) received {
	t.Helper()
	return waitfor.Receive(t, "a request at the receiver", rc.arrived)
}

// stackSubject is the stack most tests emit events about.
var stackSubject = webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}

// hookSpec is an active raw org hook of acme posting to url; mods adjust it.
func hookSpec(name, url string, mods ...func(*webhook.Spec)) webhook.Spec {
	s := webhook.Spec{
		Scope: webhook.Scope{Org: "acme"}, Name: name, DisplayName: "hook " + name,
		PayloadURL: url, Active: true,
	}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func (b *testBundle) createHook(t *testing.T, spec webhook.Spec) *store.Hook {
	t.Helper()
	h, err := b.eng.HookCreate(context.Background(), spec)
	if err != nil {
		t.Fatalf("HookCreate(%s): %v", spec.Name, err)
	}
	return h
}

func (b *testBundle) emit(t *testing.T, p EmitParams) *EmitResult {
	t.Helper()
	res, err := b.eng.Emit(context.Background(), p)
	if err != nil {
		t.Fatalf("Emit(%s, %s): %v", p.Filter, p.Subject.String(), err)
	}
	return res
}

// deliveriesOf returns the deliveries of an event.
func (b *testBundle) deliveriesOf(t *testing.T, eventID string) []*store.Delivery {
	t.Helper()
	ds, err := b.store.DeliveryListByEvent(context.Background(), eventID)
	if err != nil {
		t.Fatalf("DeliveryListByEvent: %v", err)
	}
	return ds
}

// onlyDelivery returns the single delivery of an event.
func (b *testBundle) onlyDelivery(t *testing.T, eventID string) *store.Delivery {
	t.Helper()
	ds := b.deliveriesOf(t, eventID)
	if len(ds) != 1 {
		t.Fatalf("event %s has %d deliveries, want 1", eventID, len(ds))
	}
	return ds[0]
}

func (b *testBundle) delivery(t *testing.T, id string) *store.Delivery {
	t.Helper()
	d, err := b.store.DeliveryGet(context.Background(), id)
	if err != nil {
		t.Fatalf("DeliveryGet: %v", err)
	}
	return d
}

// wantFieldError checks that err is a webhook.FieldErrors naming field.
func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var fe webhook.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want webhook.FieldErrors naming %q", err, err, field)
	}
	for _, e := range fe {
		if e.Field == field {
			if e.Message == "" {
				t.Fatalf("field error for %q has no message", field)
			}
			return
		}
	}
	t.Fatalf("error = %v, want one naming field %q", err, field)
}

// independent signature checks, written from the reference docs without package signature.

func pulumiSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func standardSignature(secret, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// checkSigned verifies both signatures of a received request with independent code.
func checkSigned(t *testing.T, r received, secret string) {
	t.Helper()
	got := r.header.Get("Pulumi-Webhook-Signature")
	if want := pulumiSignature(secret, r.body); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("Pulumi-Webhook-Signature = %q, want %q", got, want)
	}
	id, ts := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
	if id == "" || ts == "" {
		t.Fatalf("missing Standard Webhooks headers: id %q timestamp %q", id, ts)
	}
	if got, want := r.header.Get("webhook-signature"), standardSignature(secret, id, ts, r.body); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("webhook-signature = %q, want %q", got, want)
	}
}
