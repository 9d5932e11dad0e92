package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/migration"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestEmitCommitLostIsStoredOnce: the connection drops while the COMMIT's answer is on its
// way, so the emit cannot tell whether it was stored. It checks, finds its event, and returns
// success without storing it a second time.
func TestEmitCommitLostIsStoredOnce(t *testing.T) {
	t.Parallel()
	st := openURL(t, newDatabase(t), Config{})
	h := createHook(t, st, "h", "")
	faults := 1
	st.faultAfterCommit = func() error {
		if faults > 0 {
			faults--
			return fmt.Errorf("read answer: %w", io.ErrUnexpectedEOF)
		}
		return nil
	}
	emitTo(t, st, h.ID, "e:1", "e:2")
	st.faultAfterCommit = nil
	var events, deliveries int
	if err := st.Pool().QueryRow(t.Context(), `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries)`).Scan(&events, &deliveries); err != nil {
		t.Fatal(err)
	}
	if events != 1 || deliveries != 2 || faults != 0 {
		t.Fatalf("stored %d events and %d deliveries (faults left %d), want 1 and 2", events, deliveries, faults)
	}
}

// TestEmitNotStoredRetried: a COMMIT that failed before reaching the server (nothing stored)
// is run again and stored once.
func TestEmitNotStoredRetried(t *testing.T) {
	t.Parallel()
	st := openURL(t, newDatabase(t), Config{})
	h := createHook(t, st, "h", "")
	calls := 0
	err := st.EventEmit(t.Context(), func(tx store.EmitTx) error {
		calls++
		ev := &store.Event{ID: "ev-1", Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: t0}
		if err := tx.EventInsert(t.Context(), ev); err != nil {
			return err
		}
		if err := tx.DeliveryInsertMany(t.Context(), ev.ID, t0, []store.DeliveryInsertParams{{HookID: h.ID, Body: []byte(`{}`)}}); err != nil {
			return err
		}
		if calls == 1 {
			return &pgconn.PgError{Code: "40001", Message: "could not serialize access"} // rolled back: run again
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("EventEmit = %v after %d runs", err, calls)
	}
	if _, err := st.EventGet(t.Context(), "ev-1"); err != nil {
		t.Fatal(err)
	}
}

// TestRetryGivesUp: a failure that lasts past the retry window, or an error that retrying
// cannot cure, is returned.
func TestRetryGivesUp(t *testing.T) {
	t.Parallel()
	s := &Store{retry: 50 * time.Millisecond, logger: discard()}
	calls := 0
	err := s.retrying(t.Context(), func(context.Context) error { calls++; return syscall.ECONNREFUSED })
	if !errors.Is(err, syscall.ECONNREFUSED) || calls < 2 {
		t.Fatalf("retrying a refused connection = %v after %d calls", err, calls)
	}
	calls = 0
	err = s.retrying(t.Context(), func(context.Context) error { calls++; return store.ErrNotFound })
	if !errors.Is(err, store.ErrNotFound) || calls != 1 {
		t.Fatalf("retrying ErrNotFound = %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls = 0
	s.retry = time.Hour
	err = s.retrying(ctx, func(context.Context) error { calls++; return io.EOF })
	if !errors.Is(err, io.EOF) || calls != 1 {
		t.Fatalf("retrying with an ended context = %v after %d calls", err, calls)
	}
}

func TestTransient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "42P01"}, false},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{io.ErrUnexpectedEOF, true},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{store.ErrNotFound, false},
		{nil, false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestScrubbed(t *testing.T) {
	t.Parallel()
	err := scrubbed(fmt.Errorf("connect to postgres://u:pw123@h: %w", store.ErrNotFound), "pw123")
	if strings.Contains(err.Error(), "pw123") || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("scrubbed = %v", err)
	}
	if scrubbed(nil, "x") != nil || scrubbed(store.ErrNotFound, "") != store.ErrNotFound {
		t.Fatal("scrubbed changed an error it had nothing to take out of")
	}
	if m, p := MaskURL("postgres://u@h/db"); m != "postgres://u@h/db" || p != "" {
		t.Fatalf("MaskURL without a password = %q, %q", m, p)
	}
	if m, _ := MaskURL("postgres://%zz"); strings.Contains(m, "%zz") {
		t.Fatalf("MaskURL of an unparsable URL = %q", m)
	}
	for dsn, pw := range map[string]string{
		"host=127.0.0.1 user=u password=pw123 dbname=d": "pw123",
		"host=127.0.0.1 password='pw 123' dbname=d":     "pw 123",
		"host=127.0.0.1 password = pw123":               "pw123",
		"host=127.0.0.1 dbname=d":                       "",
	} {
		m, p := MaskURL(dsn)
		if p != pw || (pw != "" && strings.Contains(m, pw)) {
			t.Errorf("MaskURL(%q) = %q, %q", dsn, m, p)
		}
	}
}

func TestEmbeddedMigrationsLoad(t *testing.T) {
	t.Parallel()
	ms, err := migration.Load(migrationFS)
	if err != nil || ms[0].Version != 1 || ms[0].Up == "" || ms[0].Down == "" {
		t.Fatalf("embedded migrations = %+v, %v", ms, err)
	}
}

// TestSharedBodyStoredOnce: a body several deliveries of one event share is stored once, and
// a body equal to the event's payload not at all; retention deletes the shared one.
func TestSharedBodyStoredOnce(t *testing.T) {
	t.Parallel()
	st := openURL(t, newDatabase(t), Config{})
	h := createHook(t, st, "h", "")
	ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{"raw":1}`), CreatedAt: t0}
	slack := []byte(`{"text":"shared"}`)
	ds := []store.DeliveryInsertParams{{HookID: h.ID, Body: slack, State: store.DeliverySucceeded}, {HookID: h.ID, Body: slack, State: store.DeliverySucceeded},
		{HookID: h.ID, Body: slack, State: store.DeliverySucceeded}, {HookID: h.ID, Body: ev.Payload, State: store.DeliverySucceeded}}
	if err := st.EventEmit(t.Context(), func(tx store.EmitTx) error {
		if err := tx.EventInsert(t.Context(), ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(t.Context(), ev.ID, t0, ds)
	}); err != nil {
		t.Fatal(err)
	}
	var bodies, inline int
	if err := st.Pool().QueryRow(t.Context(), `SELECT (SELECT count(*) FROM delivery_bodies), (SELECT count(*) FROM deliveries WHERE body IS NOT NULL)`).
		Scan(&bodies, &inline); err != nil {
		t.Fatal(err)
	}
	if bodies != 1 || inline != 0 {
		t.Fatalf("stored %d shared bodies and %d inline ones, want 1 and 0", bodies, inline)
	}
	res, err := st.HistoryDeleteBefore(t.Context(), store.HistoryDeleteBeforeParams{Before: t0.Add(time.Hour)})
	if err != nil || res.Bodies != 1 || res.Deliveries != 4 || res.Events != 1 {
		t.Fatalf("HistoryDeleteBefore = %+v, %v", res, err)
	}
}

// TestHookCreateCommitLostIsCreatedOnce: a hook whose COMMIT answer was lost is created once and
// returned, not refused as a duplicate of itself.
func TestHookCreateCommitLostIsCreatedOnce(t *testing.T) {
	t.Parallel()
	st := openURL(t, newDatabase(t), Config{})
	faults := 1
	st.faultAfterCommit = func() error {
		if faults > 0 {
			faults--
			return fmt.Errorf("read answer: %w", syscall.ECONNRESET)
		}
		return nil
	}
	h, err := st.HookCreate(t.Context(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "once",
		PayloadURL: "https://example.com", Active: true}, Now: t0})
	st.faultAfterCommit = nil
	if err != nil || h.Name != "once" || faults != 0 {
		t.Fatalf("HookCreate = %+v, %v (faults left %d)", h, err, faults)
	}
	if hs, err := st.HookList(t.Context(), store.HookListParams{}); err != nil || len(hs) != 1 {
		t.Fatalf("HookList = %d, %v", len(hs), err)
	}
}

// TestLoopTransactionsRelaxCommit: the delivery loop's transactions do not wait for the WAL
// flush; acknowledged writes do.
func TestLoopTransactionsRelaxCommit(t *testing.T) {
	t.Parallel()
	st := openURL(t, newDatabase(t), Config{})
	setting := func(with func(context.Context, func(pgx.Tx) error) error) string {
		var v string
		if err := with(t.Context(), func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), `SELECT current_setting('synchronous_commit')`).Scan(&v)
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := setting(st.withLoopTx); got != "off" {
		t.Fatalf("loop transaction synchronous_commit = %q, want off", got)
	}
	if got := setting(st.withTx); got != "on" {
		t.Fatalf("acknowledged write synchronous_commit = %q, want on", got)
	}
}

// TestSessionKeepalives: the session asks the server to probe its connection soon, so that a
// holder whose machine vanished is judged dead within seconds.
func TestSessionKeepalives(t *testing.T) {
	t.Parallel()
	st := openURL(t, newDatabase(t), Config{})
	st.session.mu.Lock()
	defer st.session.mu.Unlock()
	var idle, interval, count string
	if err := st.session.conn.QueryRow(t.Context(), `SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'),
		current_setting('tcp_keepalives_count')`).Scan(&idle, &interval, &count); err != nil {
		t.Fatal(err)
	}
	if idle != "5" || interval != "2" || count != "3" {
		t.Fatalf("keepalives idle %s interval %s count %s, want 5, 2, 3", idle, interval, count)
	}
}

// TestClosedStoreFailsAtOnce: a closed store's methods fail at once instead of retrying.
func TestClosedStoreFailsAtOnce(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	var mu sync.Mutex
	st := openURL(t, newDatabase(t), Config{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	st.Close()
	if _, err := st.HookList(t.Context(), store.HookListParams{}); err == nil {
		t.Fatal("HookList on a closed store succeeded")
	}
	if _, err := st.DeliveryClaim(t.Context(), store.DeliveryClaimParams{Worker: "w", Now: t0, Lease: time.Hour, Limit: 1}); err == nil {
		t.Fatal("DeliveryClaim on a closed store succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "retrying") {
		t.Fatalf("a closed store retried:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
