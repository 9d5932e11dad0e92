package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/migration"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// emitTo stores one event with a delivery per endpoint of eps, all to hook.
func emitTo(t *testing.T, st *Store, hook int64, eps ...string) {
	t.Helper()
	ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{"p":1}`), CreatedAt: t0}
	ds := make([]store.DeliveryInsertParams, len(eps))
	for i, ep := range eps {
		ds[i] = store.DeliveryInsertParams{HookID: hook, Body: []byte(`{"p":1}`), Endpoint: ep, NextAttemptAt: t0}
	}
	if err := st.EventEmit(t.Context(), func(tx store.EmitTx) error {
		if err := tx.EventInsert(t.Context(), ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(t.Context(), ev.ID, t0, ds)
	}); err != nil {
		t.Fatalf("emit: %v", err)
	}
}

func createHook(t *testing.T, st *Store, name, secret string) *store.Hook {
	t.Helper()
	h, err := st.HookCreate(t.Context(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: name,
		PayloadURL: "https://example.com/" + name, Active: true, Secret: secret}, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// sessionPID is the server process of st's session connection (its holder locks).
func sessionPID(st *Store) uint32 {
	st.session.mu.Lock()
	defer st.session.mu.Unlock()
	return st.session.conn.PgConn().PID()
}

// TestDeadSessionReleasedByOtherServer: a server's session connection dies (the server
// process was killed, or its network went); another server's DeliveryReleaseDead puts its
// claims back at once, while a live holder's claims stay.
func TestDeadSessionReleasedByOtherServer(t *testing.T) {
	t.Parallel()
	url := newDatabase(t)
	a, b := openURL(t, url, Config{}), openURL(t, url, Config{})
	h := createHook(t, a, "h", "")
	emitTo(t, a, h.ID, "x:443", "x:443", "y:443")
	cds, err := a.DeliveryClaim(t.Context(), store.DeliveryClaimParams{Worker: "a", Now: t0, Lease: time.Hour, Limit: 2})
	if err != nil || len(cds) != 2 {
		t.Fatalf("claim = %d, %v", len(cds), err)
	}
	if _, err := b.DeliveryClaim(t.Context(), store.DeliveryClaimParams{Worker: "b", Now: t0, Lease: time.Hour, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	res, err := b.DeliveryReleaseDead(t.Context(), store.DeliveryReleaseDeadParams{Now: t0})
	if err != nil || res.Deliveries != 0 || len(res.Holders) != 0 {
		t.Fatalf("release while a lives = %+v, %v", res, err)
	}
	if _, err := b.Pool().Exec(t.Context(), `SELECT pg_terminate_backend($1)`, sessionPID(a)); err != nil {
		t.Fatal(err)
	}
	// The lock goes when the backend has ended: wait for that, not for a time.
	deadline := time.Now().Add(time.Minute)
	for {
		res, err = b.DeliveryReleaseDead(t.Context(), store.DeliveryReleaseDeadParams{Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		if res.Deliveries > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res.Deliveries != 2 || len(res.Holders) != 1 || res.Holders[0] != "a" {
		t.Fatalf("release after a's session died = %+v", res)
	}
	for _, cd := range cds {
		d, err := b.DeliveryGet(t.Context(), cd.ID)
		if err != nil || d.State != store.DeliveryPending || !strings.HasPrefix(d.LastError, store.ReleasedDeadReason) {
			t.Fatalf("released delivery = %+v, %v", d, err)
		}
	}
	// a notices its lost session on its next claim and holds its locks again: it is alive.
	if _, err := a.DeliveryClaim(t.Context(), store.DeliveryClaimParams{Worker: "a", Now: t0, Lease: time.Hour, Limit: 1}); err != nil {
		t.Fatalf("claim after the session was lost: %v", err)
	}
	res, err = b.DeliveryReleaseDead(t.Context(), store.DeliveryReleaseDeadParams{Now: t0})
	if err != nil || res.Deliveries != 0 {
		t.Fatalf("release after a reconnected = %+v, %v", res, err)
	}
}

// TestServerRestartLosesNothing: the database server restarts (fast shutdown: every session
// is terminated, as in a failover) while emits run; every emit returns success exactly once
// stored, and the store recovers by itself, holder locks included.
func TestServerRestartLosesNothing(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	st := openURL(t, srv.NewDatabase(t), Config{})
	h := createHook(t, st, "h", "")
	if _, err := st.DeliveryClaim(t.Context(), store.DeliveryClaimParams{Worker: "w", Now: t0, Lease: time.Hour, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	var emitted atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: t0}
				err := st.EventEmit(t.Context(), func(tx store.EmitTx) error {
					if err := tx.EventInsert(t.Context(), ev); err != nil {
						return err
					}
					return tx.DeliveryInsertMany(t.Context(), ev.ID, t0, []store.DeliveryInsertParams{{HookID: h.ID, Body: []byte(`{}`), Endpoint: "e:1"}})
				})
				if err != nil {
					errs <- err
					return
				}
				emitted.Add(1)
			}
		}()
	}
	waitEmitted := func(n int64) {
		deadline := time.Now().Add(time.Minute)
		for emitted.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitEmitted(20)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitEmitted(emitted.Load() + 20)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("an emit failed across the restart: %v", err)
	}
	var events, deliveries int64
	if err := st.Pool().QueryRow(t.Context(), `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries)`).Scan(&events, &deliveries); err != nil {
		t.Fatal(err)
	}
	if events != emitted.Load() || deliveries != emitted.Load() {
		t.Fatalf("stored %d events and %d deliveries, %d emits succeeded", events, deliveries, emitted.Load())
	}
	// Claims work again, on a session that took its holder lock again.
	cds, err := st.DeliveryClaim(t.Context(), store.DeliveryClaimParams{Worker: "w", Now: t0.Add(time.Hour), Lease: time.Hour, Limit: 5})
	if err != nil || len(cds) != 5 {
		t.Fatalf("claim after the restart = %d, %v", len(cds), err)
	}
	var held bool
	if err := st.Pool().QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN holders h ON l.objid = (h.lock_key & 4294967295)::oid
		WHERE l.locktype = 'advisory' AND l.granted AND h.name = 'w')`).Scan(&held); err != nil || !held {
		t.Fatalf("holder lock after the restart held = %v, %v", held, err)
	}
}

// TestKeys: a store refuses a key other than its own, naming where the key came from; a lost
// key can be given up (ForgetSecretsOfLostKey); with no key at all Open says how to make one.
func TestKeys(t *testing.T) {
	t.Parallel()
	url := newDatabase(t)
	first := openURL(t, url, Config{})
	h := createHook(t, first, "signed", "s3cret")
	if sec, err := first.HookSecretGet(t.Context(), h.ID); err != nil || sec != "s3cret" {
		t.Fatalf("secret = %q, %v", sec, err)
	}
	other, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == secretbox.EnvKey {
			return secretbox.EncodeKey(other)
		}
		return ""
	}
	_, err = Open(t.Context(), Config{URL: url, Getenv: env})
	if !errors.Is(err, store.ErrKeyMismatch) || !strings.Contains(err.Error(), "the environment variable "+secretbox.EnvKey) {
		t.Fatalf("Open with another key = %v, want ErrKeyMismatch naming the variable", err)
	}
	if strings.Contains(err.Error(), secretbox.EncodeKey(other)) {
		t.Fatal("the error quotes the key")
	}
	// The same key from a key file opens it.
	keyFile := filepath.Join(t.TempDir(), "webhooks.key")
	if err := secretbox.WriteKeyFile(keyFile, testKey); err != nil {
		t.Fatal(err)
	}
	viaFile, err := Open(t.Context(), Config{URL: url, KeyFile: keyFile, Getenv: noEnv})
	if err != nil {
		t.Fatalf("Open with the key file: %v", err)
	}
	viaFile.Close()
	// No key anywhere.
	_, err = Open(t.Context(), Config{URL: url, Getenv: noEnv})
	if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), secretbox.EnvKey) || !strings.Contains(err.Error(), "head -c 32 /dev/urandom | base64") {
		t.Fatalf("Open without a key = %v", err)
	}
	// A key file that does not exist is not created.
	missing := filepath.Join(t.TempDir(), "none.key")
	if _, err = Open(t.Context(), Config{URL: url, KeyFile: missing, Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Open with a missing key file = %v", err)
	}
	if _, statErr := os.Stat(missing); statErr == nil {
		t.Fatal("Open created the key file")
	}
	// A bad key in the environment.
	bad := func(k string) string {
		if k == secretbox.EnvKey {
			return "not base64!"
		}
		return ""
	}
	if _, err = Open(t.Context(), Config{URL: url, Getenv: bad}); err == nil || !strings.Contains(err.Error(), secretbox.EnvKey) {
		t.Fatalf("Open with a bad key = %v", err)
	}
	// The operator gives up the lost key.
	first.Close()
	reset, err := Open(t.Context(), Config{URL: url, Key: other, Getenv: noEnv, ForgetSecretsOfLostKey: true})
	if err != nil {
		t.Fatalf("Open forgetting secrets: %v", err)
	}
	defer reset.Close()
	if got := reset.ForgottenSecrets(); len(got) != 1 || got[0].Name != "signed" {
		t.Fatalf("ForgottenSecrets = %v", got)
	}
	g, err := reset.HookGetByID(t.Context(), h.ID)
	if err != nil || g.Active || g.HasSecret || g.DisabledReason != ForgottenSecretReason {
		t.Fatalf("forgotten hook = %+v, %v", g, err)
	}
}

// TestURLErrorsMaskPassword: the URL's password never shows in an error.
func TestURLErrorsMaskPassword(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-very-secret"
	srv := pgtest.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	cases := map[string]string{
		"wrong database": fmt.Sprintf("postgres://pulumi:%s@127.0.0.1:%d/no_such_db?sslmode=disable", pw, srv.Port()),
		"bad port":       fmt.Sprintf("postgres://pulumi:%s@127.0.0.1:99999/db?sslmode=disable", pw),
		"bad option":     fmt.Sprintf("postgres://pulumi:%s@127.0.0.1:%d/db?sslmode=sometimes", pw, srv.Port()),
		"query password": fmt.Sprintf("postgres://pulumi@127.0.0.1:%d/no_such_db?sslmode=disable&password=%s", srv.Port(), pw),
		"keyword/value":  fmt.Sprintf("host=127.0.0.1 port=%d user=pulumi password=%s dbname=no_such_db sslmode=disable", srv.Port(), pw),
	}
	for name, url := range cases {
		_, err := Open(ctx, Config{URL: url, Key: testKey, Getenv: noEnv})
		if err == nil {
			t.Fatalf("%s: Open succeeded", name)
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("%s: the error shows the password: %v", name, err)
		}
	}
	if m, p := MaskURL("postgres://u:" + pw + "@h/db"); strings.Contains(m, pw) || p != pw || !strings.Contains(m, "u:xxxxx@h") {
		t.Fatalf("MaskURL = %q, %q", m, p)
	}
}

// TestConfigErrors: bad configuration is refused with the field named.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.URL is required"},
		{Config{URL: "postgres://x@127.0.0.1/db", MaxConns: 1}, "Config.MaxConns is 1"},
		{Config{URL: "postgres://x@127.0.0.1/db", Key: []byte("short"), MaxConns: 2}, "32"},
	} {
		if _, err := Open(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestConcurrentOpenMigratesOnce: servers starting at once on a fresh database apply each
// migration once; reverting and opening again brings the schema back.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	url := newDatabase(t)
	var wg sync.WaitGroup
	stores := make([]*Store, 6)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(t.Context(), Config{URL: url, Key: testKey, Getenv: noEnv, MaxConns: 2})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ms, err := migration.Load(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	var rows, distinct int
	if err := stores[0].Pool().QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != len(ms) || distinct != len(ms) {
		t.Fatalf("schema_migrations has %d rows (%d versions), want %d", rows, distinct, len(ms))
	}
	for _, s := range stores {
		s.Close()
	}
	down := openURL(t, url, Config{})
	if err := down.migrateDown(t.Context(), 0); err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	down.Close()
	again := openURL(t, url, Config{})
	createHook(t, again, "h", "x")
}

// TestMigrationsRefuseNewerSchema: a database migrated by a newer build is refused.
func TestMigrationsRefuseNewerSchema(t *testing.T) {
	t.Parallel()
	url := newDatabase(t)
	st := openURL(t, url, Config{})
	if _, err := st.Pool().Exec(t.Context(), `INSERT INTO schema_migrations VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), Config{URL: url, Key: testKey, Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), "upgrade pulumi-webhooks") {
		t.Fatalf("Open of a newer schema = %v", err)
	}
}

// TestKeyRotateBusyWhileOthersOpen: KeyRotate refuses while another store has the database
// open, and works once it is alone.
func TestKeyRotateBusyWhileOthersOpen(t *testing.T) {
	t.Parallel()
	url := newDatabase(t)
	a, b := openURL(t, url, Config{}), openURL(t, url, Config{})
	createHook(t, a, "h", "s3cret")
	key, _ := secretbox.GenerateKey()
	if _, err := a.KeyRotate(t.Context(), store.KeyRotateParams{NewKey: key}); !errors.Is(err, store.ErrStoreBusy) {
		t.Fatalf("KeyRotate with another store open = %v", err)
	}
	b.Close()
	// b's server process ends (and drops its lock) a moment after b closes its connection.
	var res store.KeyRotateResult
	var err error
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		res, err = a.KeyRotate(t.Context(), store.KeyRotateParams{NewKey: key})
		if !errors.Is(err, store.ErrStoreBusy) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || res.Secrets != 1 {
		t.Fatalf("KeyRotate = %+v, %v", res, err)
	}
	if _, err := Open(t.Context(), Config{URL: url, Key: testKey, Getenv: noEnv}); !errors.Is(err, store.ErrKeyMismatch) {
		t.Fatalf("Open with the old key after rotation = %v", err)
	}
	c := openURL(t, url, Config{Key: key})
	if sec, err := c.HookSecretGet(t.Context(), 1); err != nil || sec != "s3cret" {
		t.Fatalf("secret under the new key = %q, %v", sec, err)
	}
}

// TestStaleHoldersForgotten: Open forgets holders that ended long ago holding nothing, and
// keeps live ones and dead ones with claims (their claims are released first).
func TestStaleHoldersForgotten(t *testing.T) {
	t.Parallel()
	url := newDatabase(t)
	a := openURL(t, url, Config{})
	h := createHook(t, a, "h", "")
	emitTo(t, a, h.ID, "x:1")
	if _, err := a.DeliveryClaim(t.Context(), store.DeliveryClaimParams{Worker: "live", Now: t0, Lease: time.Hour, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * holderStaleAfter).UnixNano()
	for _, q := range []string{`UPDATE holders SET registered_at = $1`,
		`INSERT INTO holders (kind, name, lock_key, registered_at) VALUES ('delivery', 'gone', 42, $1)`} {
		if _, err := a.Pool().Exec(t.Context(), q, old); err != nil {
			t.Fatal(err)
		}
	}
	b := openURL(t, url, Config{})
	rows, err := b.Pool().Query(t.Context(), `SELECT name FROM holders ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if strings.Join(names, ",") != "live" {
		t.Fatalf("holders after a start = %v, want only the live one", names)
	}
}
