package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/migration"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func noEnv(string) string { return "" }

type testBundle struct {
	path string
	st   *Store
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	return &testBundle{path: path, st: openAt(t, path, Config{})}
}

func openAt(t *testing.T, path string, cfg Config) *Store {
	t.Helper()
	cfg.Path = path
	if cfg.Getenv == nil {
		cfg.Getenv = noEnv
	}
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustMigrations(t *testing.T) []migration.Migration {
	t.Helper()
	ms, err := migration.Load(migrationFS)
	if err != nil || len(ms) == 0 {
		t.Fatalf("migration.Load = %d, %v", len(ms), err)
	}
	return ms
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "webhooks.db"), Config{})
	})
}

func TestDefaultPath(t *testing.T) {
	t.Parallel()
	home := func() (string, error) { return "/home/jane", nil }
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	cases := []struct {
		name    string
		env     map[string]string
		home    func() (string, error)
		want    string
		wantErr string
	}{
		{"override", map[string]string{EnvStorePath: "/srv/hooks.db", "XDG_DATA_HOME": "/xdg"}, home, "/srv/hooks.db", ""},
		{"xdg", map[string]string{"XDG_DATA_HOME": "/xdg"}, home, "/xdg/pulumi-webhooks/webhooks.db", ""},
		{"home", nil, home, "/home/jane/.local/share/pulumi-webhooks/webhooks.db", ""},
		{"no home", nil, noHome, "", EnvStorePath},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := defaultPath(func(k string) string { return c.env[k] }, c.home)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("defaultPath error = %v, want mention of %s", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("defaultPath = %q, %v; want %q", got, err, c.want)
			}
		})
	}
	if p, err := DefaultPath(); err != nil || !strings.HasSuffix(p, ".db") {
		t.Fatalf("DefaultPath() = %q, %v", p, err)
	}
}

func TestOpenCreatesFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "webhooks.db")
	var logs bytes.Buffer
	st := openAt(t, path, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for p, want := range map[string]os.FileMode{filepath.Join(dir, "a"): 0o700, filepath.Join(dir, "a", "b"): 0o700, path: 0o600, path + ".key": 0o600} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", p, info.Mode().Perm(), want)
		}
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if info, err := os.Stat(path + suffix); err == nil && info.Mode().Perm() != 0o600 {
			t.Errorf("%s%s has mode %04o, want 0600", path, suffix, info.Mode().Perm())
		}
	}
	var mode string
	if err := st.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	keyText, _ := os.ReadFile(path + ".key")
	if !strings.Contains(logs.String(), "key file") || strings.Contains(logs.String(), strings.TrimSpace(string(keyText))) {
		t.Fatalf("logs do not announce the key file, or contain the key: %s", logs.String())
	}
	s := webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h", PayloadURL: "https://example.com", Secret: "persisted", Active: true}
	h, err := st.HookCreate(t.Context(), store.HookCreateParams{Spec: s, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// Reopening reads the key file and the data back.
	st2 := openAt(t, path, Config{})
	if got, err := st2.HookSecretGet(t.Context(), h.ID); err != nil || got != "persisted" {
		t.Fatalf("secret after reopen = %q, %v", got, err)
	}
	var versions int
	if err := st2.DB().QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&versions); err != nil || versions != len(mustMigrations(t)) {
		t.Fatalf("schema_migrations rows = %d, %v", versions, err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	badPerm := filepath.Join(dir, "perm.db")
	key, _ := secretbox.GenerateKey()
	if err := os.WriteFile(badPerm+".key", []byte(secretbox.EncodeKey(key)), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(badPerm+".key", 0o644)
	newer := filepath.Join(dir, "newer.db")
	{
		st := openAt(t, newer, Config{})
		if _, err := st.DB().Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no path", Config{}, []string{"Config.Path is required"}},
		{"path is a directory", Config{Path: dir}, []string{"is a directory"}},
		{"parent is a file", Config{Path: filepath.Join(dir, "file", "x.db")}, []string{"create the store directory", EnvStorePath}},
		{"bad env key", Config{Path: filepath.Join(dir, "env.db"), Getenv: func(k string) string {
			if k == EnvSecretKey {
				return "short"
			}
			return ""
		}}, []string{EnvSecretKey, "base64"}},
		{"short config key", Config{Path: filepath.Join(dir, "cfg.db"), Key: []byte("short")}, []string{"32"}},
		{"key file readable by others", Config{Path: badPerm}, []string{"chmod 600"}},
		{"newer schema", Config{Path: newer}, []string{"schema version 999", "upgrade pulumi-webhooks"}},
		{"one connection", Config{Path: filepath.Join(dir, "c.db"), MaxOpenConns: 1}, []string{"MaxOpenConns"}},
		{"negative busy timeout", Config{Path: filepath.Join(dir, "b.db"), BusyTimeout: -time.Second}, []string{"BusyTimeout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.cfg.Getenv == nil {
				c.cfg.Getenv = noEnv
			}
			st, err := Open(t.Context(), c.cfg)
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestOperatorKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, _ := secretbox.GenerateKey()
	getenv := func(k string) string {
		if k == EnvSecretKey {
			return secretbox.EncodeKey(key)
		}
		return ""
	}
	path := filepath.Join(dir, "op.db")
	st := openAt(t, path, Config{Getenv: getenv})
	if _, err := os.Stat(path + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a key file was created although the operator gave a key")
	}
	h, err := st.HookCreate(t.Context(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, DisplayName: "h",
		PayloadURL: "https://example.com", Secret: "operator-sealed", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// The same key through Config reads it; another key cannot, and says how to fix it.
	st2 := openAt(t, path, Config{Key: key})
	if got, err := st2.HookSecretGet(t.Context(), h.ID); err != nil || got != "operator-sealed" {
		t.Fatalf("secret with the same key = %q, %v", got, err)
	}
	st2.Close()
	// Another key is refused at Open, naming where it came from and never quoting a key.
	other, _ := secretbox.GenerateKey()
	_, err = Open(t.Context(), Config{Path: path, Key: other, Getenv: noEnv})
	wantKeyMismatch(t, err, "Config.Key", key, other)
	otherEnv := func(k string) string {
		if k == EnvSecretKey {
			return secretbox.EncodeKey(other)
		}
		return ""
	}
	_, err = Open(t.Context(), Config{Path: path, Getenv: otherEnv})
	wantKeyMismatch(t, err, "environment variable "+EnvSecretKey, key, other)
	// No key given and no key file: the key file created now cannot be the store's; it is
	// refused and removed again.
	_, err = Open(t.Context(), Config{Path: path, Getenv: noEnv})
	wantKeyMismatch(t, err, "key file "+path+".key", key, nil)
	if _, statErr := os.Stat(path + ".key"); !errors.Is(statErr, os.ErrNotExist) {
		t.Fatalf("the key file made for a store with another key was left behind: %v", statErr)
	}
	// A key file with another key is named by its path.
	if err := secretbox.WriteKeyFile(path+".key", other); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), Config{Path: path, Getenv: noEnv})
	wantKeyMismatch(t, err, "key file "+path+".key", key, other)
}

func wantKeyMismatch(t *testing.T, err error, origin string, keys ...[]byte) {
	t.Helper()
	if !errors.Is(err, store.ErrKeyMismatch) || !strings.Contains(err.Error(), origin) {
		t.Fatalf("Open with another key = %v; want ErrKeyMismatch naming %q", err, origin)
	}
	for _, k := range keys {
		if k != nil && (strings.Contains(err.Error(), secretbox.EncodeKey(k)) || strings.Contains(err.Error(), fmt.Sprintf("%x", k))) {
			t.Fatal("the error quotes a key")
		}
	}
}

func TestMigrateDownUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	if err := b.st.migrateDown(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var tables int
	if err := b.st.DB().QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations', 'sqlite_sequence')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("%d tables left after migrating down", tables)
	}
	// Reverting again is a no-op, and migrating up restores a working schema.
	if err := b.st.migrateDown(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.st.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, DisplayName: "h", PayloadURL: "https://example.com"}, Now: time.Now()}); err != nil {
		t.Fatalf("HookCreate after down and up: %v", err)
	}
}

func TestConcurrentOpenOfFreshFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fresh", "webhooks.db")
	const n = 6
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = Open(t.Context(), Config{Path: path, Getenv: noEnv})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("opener %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var versions int
	if err := stores[0].DB().QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&versions); err != nil || versions != len(mustMigrations(t)) {
		t.Fatalf("schema_migrations rows = %d, %v", versions, err)
	}
	// Every opener sealed with the same key: a secret stored through one opens through another.
	h, err := stores[1].HookCreate(t.Context(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, DisplayName: "h",
		PayloadURL: "https://example.com", Secret: "shared"}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range stores {
		if got, err := st.HookSecretGet(t.Context(), h.ID); err != nil || got != "shared" {
			t.Fatalf("opener %d reads the secret as %q, %v", i, got, err)
		}
	}
}

// queryPlan returns the EXPLAIN QUERY PLAN detail lines of q.
func queryPlan(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, detail)
	}
	return out
}

func TestHookCandidatesUsesIndex(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{hookCandidatesOrg, []any{"acme"}},
		{hookCandidatesScoped, []any{"acme", "web", "prod", ""}},
	} {
		plan := queryPlan(t, b.st.DB(), q.sql, q.args...)
		searches := 0
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN") {
				t.Fatalf("HookCandidates scans a table: %q in plan %q", line, plan)
			}
			if strings.Contains(line, "SEARCH hooks USING INDEX hooks_scope_name") {
				searches++
			}
		}
		if searches == 0 {
			t.Fatalf("HookCandidates does not search the scope index: plan %q", plan)
		}
	}
}

// TestHookListPageUsesIndex: a page of one scope's hooks searches hooks_scope_name from the
// cursor and reads in index order (no sort), so it stops after the page.
func TestHookListPageUsesIndex(t *testing.T) {
	t.Parallel()
	b := setup(t)
	scope := webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
	for _, p := range []store.HookListParams{
		{Scope: scope, Exact: true, Limit: 101},
		{Scope: scope, Exact: true, After: "h0500", Limit: 101},
	} {
		q, args := hookListSQL(p)
		plan := queryPlan(t, b.st.DB(), q, args...)
		joined := strings.Join(plan, "\n")
		want := "SEARCH hooks USING INDEX hooks_scope_name (org=? AND project=? AND stack=? AND environment=?"
		if p.After != "" {
			want += " AND name>?"
		}
		if len(plan) != 1 || !strings.HasPrefix(joined, want) || strings.Contains(joined, "TEMP B-TREE") {
			t.Fatalf("HookList page (After %q) plan %q, want only %q...", p.After, plan, want)
		}
	}
}

func TestDeliveryClaimUsesIndexes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Now().UnixNano()
	for _, q := range []struct {
		sql   string
		index string
		args  []any
	}{
		{claimHeldSQL, "deliveries_running", []any{now, "w"}},
		{claimFirstSQL, "deliveries_first", []any{now, `["a:443"]`, 64, `["acme"]`}},
		{claimRetrySQL, "deliveries_retry", []any{now, `[]`, 64, `[]`}},
		{claimExpiredSQL, "deliveries_running", []any{now, `[]`, 64, `["acme"]`}},
		{claimAgainSQL, "deliveries_retry", []any{now, `[]`, 64, `["acme"]`}},
		{claimAgainSQL, "deliveries_running", []any{now, `[]`, 64, `["acme"]`}},
		{claimUpdateSQL, "INTEGER PRIMARY KEY", []any{now, now, "w", `[1, 2]`}},
		{claimFirstOpenSQL, "deliveries_first", []any{now, 64}},
		{claimAgainOpenSQL, "deliveries_retry", []any{now, 64}},
		{claimAgainOpenSQL, "deliveries_running", []any{now, 64}},
		{claimUpdateListSQL(2), "INTEGER PRIMARY KEY", []any{now, now, "w", 1, 2}},
	} {
		plan := queryPlan(t, b.st.DB(), q.sql, q.args...)
		joined := strings.Join(plan, "\n")
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN deliveries") && !strings.Contains(line, "USING") {
				t.Fatalf("claim query scans the deliveries table: %q in plan %q", line, plan)
			}
		}
		if !strings.Contains(joined, q.index) {
			t.Fatalf("claim query does not use %s: plan %q", q.index, plan)
		}
		if q.sql != claimHeldSQL && !strings.HasPrefix(q.sql, "UPDATE") && strings.Contains(joined, "TEMP B-TREE FOR ORDER BY") {
			t.Fatalf("claim query sorts its candidates instead of reading them in index order: plan %q", plan)
		}
	}
}

// TestCompletionAndDiscardUseIndexes: a batched completion finds each delivery by its ID, and
// discarding a hook's queued deliveries reads the queue's partial indexes, never the whole table
// (nor the hook's whole delivery history).
func TestCompletionAndDiscardUseIndexes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Now().UnixNano()
	plan := queryPlan(t, b.st.DB(), completeUpdateSQL(2), "a", "succeeded", 0, "", now, 1, "w", "b", "failed", 0, "", now, 1, "w")
	joined := strings.Join(plan, "\n")
	if !strings.Contains(joined, "SEARCH deliveries USING INDEX sqlite_autoindex_deliveries_1 (id=?)") {
		t.Fatalf("batched completion does not find deliveries by ID: plan %q", plan)
	}
	plan = queryPlan(t, b.st.DB(), discardPendingSQL, "why", now, 1, "")
	joined = strings.Join(plan, "\n")
	for _, index := range []string{"deliveries_first", "deliveries_retry", "deliveries_running"} {
		if !strings.Contains(joined, index) {
			t.Fatalf("discard does not read %s: plan %q", index, plan)
		}
	}
	for _, line := range plan {
		if strings.HasPrefix(line, "SCAN deliveries") && !strings.Contains(line, "USING") || strings.Contains(line, "deliveries_hook") {
			t.Fatalf("discard reads %q: plan %q", line, plan)
		}
	}
}

func TestSecretsNotInDatabaseFiles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	secrets := []string{"plaintext-secret-one-4f9a2c", "plaintext-secret-two-b81e07", "rotated-secret-three-77d0aa"}
	var hooks []*store.Hook
	for i, sec := range secrets[:2] {
		h, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: fmt.Sprint("h", i),
			DisplayName: "h", PayloadURL: "https://example.com", Secret: sec, Active: true}, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, h)
	}
	if _, err := b.st.HookUpdate(ctx, store.HookUpdateParams{Ref: hooks[0].Ref(), Spec: hooks[0].Spec, Secret: &secrets[2], Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: time.Now()}
	if err := b.st.EventEmit(ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), []store.DeliveryInsertParams{{HookID: hooks[0].ID, Body: []byte(`{}`)}, {HookID: hooks[1].ID, Body: []byte(`{}`)}})
	}); err != nil {
		t.Fatal(err)
	}
	cds, err := b.st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: time.Now().Add(time.Second), Lease: time.Minute, Limit: 10})
	if err != nil || len(cds) != 2 {
		t.Fatalf("claim = %d, %v", len(cds), err)
	}
	keyText, err := os.ReadFile(b.path + ".key")
	if err != nil {
		t.Fatal(err)
	}
	key, err := secretbox.ParseKey(string(keyText))
	if err != nil {
		t.Fatal(err)
	}
	// Read the files while the store is open (the WAL holds the recent writes), then again
	// after a checkpoint and close.
	check := func(when string) {
		found := 0
		for _, suffix := range []string{"", "-wal", "-shm"} {
			data, err := os.ReadFile(b.path + suffix)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			found += len(data)
			for _, sec := range secrets {
				if bytes.Contains(data, []byte(sec)) {
					t.Fatalf("%s: a plaintext secret is in %s%s", when, filepath.Base(b.path), suffix)
				}
			}
			if bytes.Contains(data, key) || bytes.Contains(data, bytes.TrimSpace(keyText)) {
				t.Fatalf("%s: the key is in %s%s", when, filepath.Base(b.path), suffix)
			}
		}
		if found == 0 {
			t.Fatalf("%s: no database files to inspect", when)
		}
	}
	check("open")
	if _, err := b.st.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	b.st.Close()
	check("closed")
}

func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.st.Close()
	_, err := b.st.HookCreate(context.Background(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, DisplayName: "h"}, Now: time.Now()})
	if err == nil {
		t.Fatal("HookCreate on a closed store succeeded")
	}
}

// TestBodiesStoredOnce checks the storage behind the conformance suite's SharedBodies: a raw
// body is not copied from the event, a body several deliveries share is stored once, an
// attempt that sent the delivery's body does not store it again; and migrating down to
// version 1 copies every body back into its rows.
func TestBodiesStoredOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	h, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, DisplayName: "h",
		PayloadURL: "https://example.com/h", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	payload, slack, own := []byte(`{"raw":1}`), []byte(`{"text":"slack"}`), []byte(`{"own":1}`)
	bodies := [][]byte{payload, payload, slack, slack, slack, own}
	ds := make([]store.DeliveryInsertParams, len(bodies))
	for i, body := range bodies {
		ds[i] = store.DeliveryInsertParams{HookID: h.ID, Body: body, Endpoint: "example.com:443"}
	}
	ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: payload, CreatedAt: time.Now()}
	if err := b.st.EventEmit(ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), ds)
	}); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		t.Helper()
		var n int
		if err := b.st.DB().QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if n := count(`SELECT COUNT(*) FROM delivery_bodies`); n != 1 {
		t.Fatalf("%d shared bodies stored, want 1 (the slack body)", n)
	}
	if n := count(`SELECT COALESCE(SUM(LENGTH(body)), 0) FROM deliveries`); n != len(own) {
		t.Fatalf("deliveries hold %d body bytes, want %d (only the body one delivery has)", n, len(own))
	}
	now := time.Now()
	cds, err := b.st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Minute, Limit: 10})
	if err != nil || len(cds) != len(bodies) {
		t.Fatalf("claim = %d, %v", len(cds), err)
	}
	ps := make([]store.DeliveryCompleteParams, len(cds))
	for i, cd := range cds {
		ps[i] = store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: now,
			Record: store.Attempt{StartedAt: now, RequestBody: cd.Body, ResponseCode: 200}}
	}
	for i, err := range b.st.DeliveryCompleteMany(ctx, ps) {
		if err != nil {
			t.Fatalf("complete %d: %v", i, err)
		}
	}
	if n := count(`SELECT COUNT(*) FROM attempts WHERE request_body IS NULL AND request_body_ref = 1`); n != len(bodies) {
		t.Fatalf("%d attempts read their body from the delivery, want %d", n, len(bodies))
	}

	if err := b.st.migrateDown(ctx, 1); err != nil {
		t.Fatal(err)
	}
	rows, err := b.st.DB().Query(`SELECT d.body, a.request_body FROM deliveries d JOIN attempts a ON a.delivery_id = d.id ORDER BY d.rowid`)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for rows.Next() {
		var body, req []byte
		if err := rows.Scan(&body, &req); err != nil {
			t.Fatal(err)
		}
		if string(body) != string(req) {
			t.Fatalf("after migrating down, attempt body %q differs from delivery body %q", req, body)
		}
		got = append(got, body)
	}
	rows.Close()
	for i := range bodies {
		if i >= len(got) || string(got[i]) != string(bodies[i]) {
			t.Fatalf("after migrating down, bodies = %q, want %q", got, bodies)
		}
	}
	if err := b.st.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i, d := range mustList(t, b.st, ev.ID) {
		if string(d.Body) != string(bodies[i]) {
			t.Fatalf("after migrating up again, delivery %d body = %q, want %q", i, d.Body, bodies[i])
		}
	}
}

func mustList(t testing.TB, st *Store, eventID string) []*store.Delivery {
	t.Helper()
	ds, err := st.DeliveryListByEvent(t.Context(), eventID)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestConformanceReliability(t *testing.T) {
	t.Parallel()
	storetest.RunReliability(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openAt(t, filepath.Join(t.TempDir(), "webhooks.db"), Config{})
		},
		Reopen: func(t *testing.T, st store.Store) store.Store {
			s, err := Open(t.Context(), Config{Path: st.(*Store).Path(), Getenv: noEnv})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			return s
		},
		CorruptSecret: func(t *testing.T, st store.Store, id int64) {
			if _, err := st.(*Store).DB().ExecContext(t.Context(), `UPDATE hooks SET secret_box = CAST(zeroblob(length(secret_box)) AS BLOB) WHERE id = ?`, id); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestDigestMigration: a store from before migration 004 holds plain sha256 digests; opening
// it recomputes them as keyed digests once, and the key check value is recorded.
func TestDigestMigration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	h, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		PayloadURL: "https://example.com", Secret: "weak", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	keyed := h.SecretDigest
	if err := b.st.migrateDown(ctx, 3); err != nil {
		t.Fatal(err)
	}
	plain := sha256.Sum256([]byte("weak"))
	if _, err := b.st.DB().ExecContext(ctx, `UPDATE hooks SET secret_sha256 = ?`, hex.EncodeToString(plain[:])); err != nil {
		t.Fatal(err)
	}
	b.st.Close()
	st := openAt(t, b.path, Config{})
	got, err := st.HookGet(ctx, h.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if got.SecretDigest != keyed || got.SecretDigest == hex.EncodeToString(plain[:]) {
		t.Fatalf("digest after migration %q, want the keyed %q", got.SecretDigest, keyed)
	}
	var check string
	if err := st.DB().QueryRowContext(ctx, `SELECT value FROM store_meta WHERE name = 'key_check'`).Scan(&check); err != nil || check != st.currentBox().Check() {
		t.Fatalf("key check value %q, %v", check, err)
	}
}

// TestFinishInterruptedRotation: a rotation committed but the process died before the new key
// file replaced the old one; the next Open finds <key file>.next and finishes the job.
func TestFinishInterruptedRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	h, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		PayloadURL: "https://example.com", Secret: "s", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	newKey, _ := secretbox.GenerateKey()
	if err := secretbox.WriteKeyFile(b.path+".key"+KeyFileNextSuffix, newKey); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.KeyRotate(ctx, store.KeyRotateParams{NewKey: newKey}); err != nil {
		t.Fatal(err)
	}
	b.st.Close() // "crash" before the rename
	st := openAt(t, b.path, Config{})
	if got, err := st.HookSecretGet(ctx, h.ID); err != nil || got != "s" {
		t.Fatalf("secret after finishing the rotation = %v", err)
	}
	if k, err := secretbox.ReadKeyFile(b.path + ".key"); err != nil || !bytes.Equal(k, newKey) {
		t.Fatalf("the key file does not hold the new key: %v", err)
	}
	if _, err := os.Stat(b.path + ".key" + KeyFileNextSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the .next key file is still there: %v", err)
	}
}

// TestAcknowledgedWritesAreSynced: an event is on disk before EventEmit returns (the WAL is
// fsynced after the commit, group-committed), while a recorded completion is not synced on its
// own (synchronous=NORMAL: losing one only causes a duplicate). A power loss cannot be
// simulated here, so the test watches the fsyncs themselves. Not parallel: it replaces syncFile.
func TestAcknowledgedWritesAreSynced(t *testing.T) {
	var mu sync.Mutex
	synced := map[string]int{}
	prev := syncFile
	syncFile = func(f *os.File) error {
		mu.Lock()
		synced[f.Name()]++
		mu.Unlock()
		return prev(f)
	}
	t.Cleanup(func() { syncFile = prev })
	walSyncs := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return synced[path+"-wal"]
	}

	b := setup(t)
	ctx := t.Context()
	h, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		PayloadURL: "https://example.com", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if walSyncs(b.path) == 0 {
		t.Fatal("HookCreate returned before its commit was synced")
	}
	emit := func() {
		ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: time.Now()}
		err := b.st.EventEmit(ctx, func(tx store.EmitTx) error {
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			return tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), []store.DeliveryInsertParams{{HookID: h.ID, Body: []byte(`{}`)}})
		})
		if err != nil {
			t.Error(err)
		}
	}
	before := walSyncs(b.path)
	emit()
	if walSyncs(b.path) != before+1 {
		t.Fatalf("EventEmit synced the WAL %d times, want once before returning", walSyncs(b.path)-before)
	}
	// Completions stay unsynced.
	cds, err := b.st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: time.Now(), Lease: time.Minute, Limit: 1})
	if err != nil || len(cds) != 1 {
		t.Fatal(len(cds), err)
	}
	before = walSyncs(b.path)
	if err := b.st.DeliveryComplete(ctx, store.DeliveryCompleteParams{ID: cds[0].ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded,
		Now: time.Now(), Record: store.Attempt{StartedAt: time.Now(), ResponseCode: 200}}); err != nil {
		t.Fatal(err)
	}
	if n := walSyncs(b.path) - before; n != 0 {
		t.Fatalf("a completion synced the WAL %d times, want none", n)
	}
	// Concurrent emitters share syncs (group commit): never more syncs than emits.
	before = walSyncs(b.path)
	var wg sync.WaitGroup
	const emitters = 16
	for range emitters {
		wg.Go(emit)
	}
	wg.Wait()
	n := walSyncs(b.path) - before
	t.Logf("%d concurrent emits took %d WAL syncs", emitters, n)
	if n == 0 || n > emitters {
		t.Fatalf("%d concurrent emits took %d WAL syncs, want between 1 and %d", emitters, n, emitters)
	}
}

// TestHolderFiles: a claiming store keeps a locked holder file while open and removes it when
// it closes with no claims left; a stale unlocked file of a long-dead holder is swept, a live
// holder's is not.
func TestHolderFiles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	dir := b.path + HoldersDirSuffix
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale-0000.lock")
	if err := os.WriteFile(stale, []byte("dead\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * holderStaleAfter)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	other := openAt(t, b.path, Config{})
	if _, err := other.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "live", Now: time.Now(), Lease: time.Minute, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	live := other.holders.holderFile("live")
	if err := os.Chtimes(live, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "mine", Now: time.Now(), Lease: time.Minute, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale holder file is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live holder's file was swept: %v", err)
	}
	other.Close()
	if _, err := os.Stat(live); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("closing with no claims left kept the holder file: %v", err)
	}
	// The same worker name in two open stores is refused, naming the fix.
	third := openAt(t, b.path, Config{})
	_, err := third.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "mine", Now: time.Now(), Lease: time.Minute, Limit: 1})
	if err == nil || !strings.Contains(err.Error(), "distinct name") {
		t.Fatalf("claim with a worker name another store holds = %v", err)
	}
}

// TestRetentionUsesIndexes: the retention batch finds old events by age and each event's rows
// by event, never scanning a whole table, so its cost follows the batch, not the store.
func TestRetentionUsesIndexes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	checks := []struct {
		q     string
		args  []any
		index []string
	}{
		{historyOldEventsSQL, []any{1, 10}, []string{"events_created", "deliveries_event"}},
		{`DELETE FROM delivery_bodies WHERE event_id IN (SELECT value FROM json_each(?1))`, []any{`["a"]`}, []string{"delivery_bodies_event"}},
		{`DELETE FROM deployment_requests WHERE event_id IN (SELECT value FROM json_each(?1))`, []any{`["a"]`}, []string{"deployment_requests_event"}},
		{`DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id IN (SELECT value FROM json_each(?1)))`, []any{`["a"]`}, []string{"attempts_delivery", "deliveries_event"}},
		{`SELECT org, key FROM idempotency_keys WHERE created_at < ?1 ORDER BY created_at LIMIT ?2`, []any{1, 10}, []string{"idempotency_keys_created"}},
	}
	for _, c := range checks {
		plan := queryPlan(t, b.st.DB(), c.q, c.args...)
		joined := strings.Join(plan, "\n")
		for _, index := range c.index {
			if !strings.Contains(joined, index) {
				t.Errorf("%s\ndoes not use %s: plan %q", c.q, index, plan)
			}
		}
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN ") && !strings.Contains(line, "json_each") && !strings.Contains(line, "USING") {
				t.Errorf("%s\nscans a table: %q", c.q, line)
			}
		}
	}
}

// TestHolderQueriesUseIndexes: looking for dead holders reads running deliveries only.
func TestHolderQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, q := range []struct {
		sql  string
		args []any
	}{{holdersRunningSQL, nil}, {holderReleaseSQL, []any{"why", 1, "w"}}, {holderClaimsSQL, []any{"w"}}} {
		plan := queryPlan(t, b.st.DB(), q.sql, q.args...)
		joined := strings.Join(plan, "\n")
		if !strings.Contains(joined, "deliveries_running") {
			t.Errorf("%s\ndoes not read deliveries_running: plan %q", q.sql, plan)
		}
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN deliveries") && !strings.Contains(line, "USING") {
				t.Errorf("%s\nscans deliveries: %q", q.sql, line)
			}
		}
	}
}

// TestLostKey: a store with no secrets takes a new key; a store with secrets refuses it unless
// told to forget them, and then deactivates their webhooks, saying why, and never sends them
// unsigned.
func TestLostKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	keyA, _ := secretbox.GenerateKey()
	keyB, _ := secretbox.GenerateKey()
	keyC, _ := secretbox.GenerateKey()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	st := openAt(t, path, Config{Key: keyA})
	plain, err := st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "plain",
		PayloadURL: "https://example.com/p", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// No secrets: another key is taken.
	st = openAt(t, path, Config{Key: keyB})
	signed, err := st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "signed",
		PayloadURL: "https://example.com/s", Secret: "s", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: time.Now()}
	err = st.EventEmit(ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), []store.DeliveryInsertParams{{HookID: signed.ID, Body: []byte(`{}`)}, {HookID: plain.ID, Body: []byte(`{}`)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// Secrets: another key is refused, then, when told, the secrets are forgotten.
	if _, err := Open(ctx, Config{Path: path, Key: keyC, Getenv: noEnv}); !errors.Is(err, store.ErrKeyMismatch) || !strings.Contains(err.Error(), "key reset --forget-secrets") {
		t.Fatalf("Open with a third key = %v", err)
	}
	st = openAt(t, path, Config{Key: keyC, ForgetSecretsOfLostKey: true})
	if got := st.ForgottenSecrets(); len(got) != 1 || got[0] != signed.Ref() {
		t.Fatalf("ForgottenSecrets = %v, want the signed hook", got)
	}
	h, err := st.HookGet(ctx, signed.Ref())
	if err != nil || h.HasSecret || h.Active || h.DisabledReason != ForgottenSecretReason || h.SecretDigest != "" {
		t.Fatalf("the signed hook after forgetting: %+v, %v", h, err)
	}
	ds, _ := st.DeliveryListByEvent(ctx, ev.ID)
	for _, d := range ds {
		want := store.DeliveryPending
		if d.HookID == signed.ID {
			want = store.DeliveryDiscarded
		}
		if d.State != want {
			t.Errorf("delivery to hook %d is %s, want %s", d.HookID, d.State, want)
		}
	}
	st.Close()
	// The key is the store's now.
	st = openAt(t, path, Config{Key: keyC})
	if got := st.ForgottenSecrets(); len(got) != 0 {
		t.Fatalf("a second Open forgot %v", got)
	}
}

// TestSyncFailureReported: when the fsync after an acknowledged commit fails, the caller is
// told the write may not be durable instead of being acknowledged. Not parallel: it replaces
// syncFile.
func TestSyncFailureReported(t *testing.T) {
	b := setup(t)
	prev := syncFile
	syncFile = func(*os.File) error { return errors.New("input/output error") }
	t.Cleanup(func() { syncFile = prev })
	_, err := b.st.HookCreate(t.Context(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		PayloadURL: "https://example.com", Active: true}, Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "input/output error") || !strings.Contains(err.Error(), "may not survive a power loss") {
		t.Fatalf("HookCreate with a failing fsync = %v", err)
	}
}

// TestOpenWaitsForRotation: while a key rotation holds the store lock exclusively, Open waits
// for it, and gives up after the busy timeout saying why.
func TestOpenWaitsForRotation(t *testing.T) {
	t.Parallel()
	if !holderLocks {
		t.Skip("no flock here")
	}
	b := setup(t)
	f, err := os.OpenFile(b.path+OpenLockSuffix, os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b.st.Close() // give up its shared lock so that f can take it exclusively
	if err := flockExclusive(f); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), Config{Path: b.path, Getenv: noEnv, BusyTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "key rotation is running") {
		t.Fatalf("Open during a rotation = %v", err)
	}
}

func TestKeyRotateSameKey(t *testing.T) {
	t.Parallel()
	key, _ := secretbox.GenerateKey()
	st := openAt(t, filepath.Join(t.TempDir(), "webhooks.db"), Config{Key: key})
	if _, err := st.KeyRotate(t.Context(), store.KeyRotateParams{NewKey: key}); err == nil || !strings.Contains(err.Error(), "is the current key") {
		t.Fatalf("KeyRotate to the same key = %v", err)
	}
}
