// Package sqlite is the embedded store: one SQLite file (modernc.org/sqlite, no cgo) that the
// provider, the server and the CLI can use at the same time.
//
// The default file is $PULUMI_WEBHOOKS_STORE when set, else
// $XDG_DATA_HOME/pulumi-webhooks/webhooks.db, else ~/.local/share/pulumi-webhooks/webhooks.db.
// Open creates missing parent directories (mode 0700), the file, and the key file that seals
// webhook secrets (<path>.key, mode 0600) unless the operator gives a key in
// PULUMI_WEBHOOKS_SECRET_KEY or Config.Key.
//
// Concurrency: the file runs in WAL mode, so readers never wait for the writer. Every write is
// a BEGIN IMMEDIATE transaction, taken under busy_timeout, so writers of several processes
// queue for the lock instead of failing with "database is locked"; inside one process writers
// queue on a channel first so they do not spin in SQLite's busy handler. Migrations are
// versioned (migrations/NNN_name.up.sql, recorded in schema_migrations) and applied in one
// immediate transaction, so two processes opening a fresh file at once apply them once.
//
// Dead holders: a store that claims deliveries holds an flock on <path>.holders/<worker>.lock
// while it is open; the next claim of any other process that finds such a file unlocked puts
// that worker's running deliveries back at once (holders.go).
//
// Timestamps are stored as unix nanoseconds; 0 means unset.
//
// Deleting a hook deletes its deliveries and their attempts (its delivery log goes with it: a
// hook's log is only reachable through the hook). Events and deployment requests stay until
// retention deletes them (HistoryDeleteBefore, retention.go).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// EnvStorePath overrides the default database path.
const EnvStorePath = "PULUMI_WEBHOOKS_STORE"

// EnvSecretKey holds the base64 encoding of a 32-byte key that seals webhook secrets. When it
// is unset the key lives in a file next to the database.
const EnvSecretKey = secretbox.EnvKey

// Defaults for Config fields left zero.
const (
	BusyTimeoutDefault  = 30 * time.Second
	MaxOpenConnsDefault = 8
	// CacheSizeKiBDefault is each connection's page cache; a 10,000-delivery fan-out fits without
	// spilling to the WAL before commit. Every commit walks the cache's whole page hash table
	// (SQLite's pcache1TruncateUnsafe), 50-70 µs a delivery round once a 32 MiB cache is full,
	// a quarter to a third of that at 8 MiB; but at 8 MiB the server accepted fewer events
	// (BenchmarkEndToEnd/one-endpoint, 4 of 4 alternating runs), so it stays at 32.
	CacheSizeKiBDefault = 32 << 10
	// KeyFileSuffix is appended to the database path to name the key file.
	KeyFileSuffix = ".key"
)

// Config opens a store. Only Path is required (see DefaultPath).
type Config struct {
	// Path is the database file.
	Path string
	// Key, when set, is the 32-byte key sealing webhook secrets; it wins over the environment
	// and the key file.
	Key []byte
	// KeyFile overrides the key file location (Path + ".key").
	KeyFile string
	Logger  *slog.Logger
	// BusyTimeout is how long a statement waits for another process's lock before failing.
	BusyTimeout time.Duration
	// MaxOpenConns bounds the connection pool.
	MaxOpenConns int
	// Getenv reads the environment (PULUMI_WEBHOOKS_SECRET_KEY); os.Getenv when nil.
	Getenv func(string) string
	// ForgetSecretsOfLostKey, when the key does not match the store, makes Open forget the
	// secrets sealed with the other key instead of refusing: each webhook that had one loses it
	// and is deactivated, with a reason saying so (ForgottenSecretReason), and the key becomes
	// the store's. For an operator whose key is lost (`pulumi-webhooks key reset`).
	ForgetSecretsOfLostKey bool
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = BusyTimeoutDefault
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = MaxOpenConnsDefault
	}
	if c.KeyFile == "" && c.Path != "" {
		c.KeyFile = c.Path + KeyFileSuffix
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Path == "":
		return errors.New("sqlite: Config.Path is required: pass sqlite.DefaultPath() or a file path")
	case c.BusyTimeout < 0:
		return fmt.Errorf("sqlite: Config.BusyTimeout is %s: give a positive duration", c.BusyTimeout)
	case c.MaxOpenConns < 2:
		return fmt.Errorf("sqlite: Config.MaxOpenConns is %d: give at least 2 (one writer beside readers)", c.MaxOpenConns)
	}
	return nil
}

// DefaultPath returns $PULUMI_WEBHOOKS_STORE, else $XDG_DATA_HOME/pulumi-webhooks/webhooks.db,
// else ~/.local/share/pulumi-webhooks/webhooks.db.
func DefaultPath() (string, error) { return defaultPath(os.Getenv, os.UserHomeDir) }

func defaultPath(getenv func(string) string, home func() (string, error)) (string, error) {
	if p := getenv(EnvStorePath); p != "" {
		return p, nil
	}
	if x := getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "pulumi-webhooks", "webhooks.db"), nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("sqlite: find the default store path: %w; set %s to the database file", err, EnvStorePath)
	}
	return filepath.Join(h, ".local", "share", "pulumi-webhooks", "webhooks.db"), nil
}

// Store is the SQLite implementation of store.Store.
type Store struct {
	db *sql.DB
	// box seals and opens hook secrets; KeyRotate replaces it.
	box atomic.Pointer[secretbox.Box]
	// openLock is a shared lock on <path>.lock held while the store is open: KeyRotate needs it
	// exclusively, which it gets only when no other process has the store open.
	openLock *os.File
	logger   *slog.Logger
	path     string
	// writeSlot serializes this process's write transactions; other processes queue on
	// SQLite's lock (busy_timeout).
	writeSlot chan struct{}

	// stmts caches prepared statements by query text: modernc.org/sqlite does not, and parsing
	// is a large share of a small statement's cost.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt

	payloads payloadCache
	// hooks keeps the hooks claims read between the delivery loop's rounds (claim.go).
	hooks hookCache
	// candidates keeps HookCandidates' answers between emits (candidates.go).
	candidates candidateCache

	// holders are this store's holder locks (see holders.go).
	holders *holders
	// runners holds the locks of this store's deployment runners (deployments.go).
	runners *holders
	// forgotten lists the webhooks whose secrets Open forgot (keys.go).
	forgotten []store.HookRef
	// wal makes acknowledged commits durable (see durable.go).
	wal *walSyncer
	// emits combines concurrent emits into shared transactions (see emitbatch.go).
	emits emitBatcher
	// claimTurn counts the slots this store's claims handed out: first attempts and retries
	// take turns across claims (claimPicker).
	claimTurn atomic.Uint64
	// claimSkips spares claims a scan for work behind capped endpoints and organizations that
	// just found none.
	claimSkips skipCache
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at cfg.Path and brings its schema up to date.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: store path %q: %w", cfg.Path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create the store directory: %w; set %s to a writable location", err, EnvStorePath)
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return nil, fmt.Errorf("sqlite: store path %s is a directory: give the path of a database file", path)
	}
	// Create the file ourselves so it (and the -wal and -shm files SQLite derives from it) is
	// private from the start.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("sqlite: create %s: %w; set %s to a writable location", path, err, EnvStorePath)
	} else {
		f.Close()
	}
	keyCfg := secretbox.Config{Key: cfg.Key, EnvVar: EnvSecretKey, Getenv: cfg.Getenv, KeyFile: cfg.KeyFile}
	box, src, err := secretbox.Load(keyCfg)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	u := url.URL{Path: filepath.ToSlash(path)}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", CacheSizeKiBDefault))
	// Statement journals (a multi-row INSERT that might fail halfway needs one) and temporary
	// b-trees stay in memory instead of going through a temporary file.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + u.EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, logger: cfg.Logger, path: path, writeSlot: make(chan struct{}, 1), stmts: map[string]*sql.Stmt{},
		holders: newHolders(path), runners: newHolders(path + RunnersDirSuffix), wal: newWALSyncer(path)}
	s.box.Store(box)
	if s.openLock, err = takeOpenLock(ctx, path, cfg.BusyTimeout); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.init(ctx, cfg.BusyTimeout); err != nil {
		s.openLock.Close()
		db.Close()
		return nil, err
	}
	if err := s.checkKey(ctx, keyCfg, src, cfg.ForgetSecretsOfLostKey); err != nil {
		s.openLock.Close()
		db.Close()
		return nil, err
	}
	if src == secretbox.SourceFileCreated {
		cfg.Logger.Info("created the key file that seals webhook secrets; back it up with the database", "path", cfg.KeyFile)
	}
	return s, nil
}

// init switches the file to WAL mode and applies migrations.
func (s *Store) init(ctx context.Context, busy time.Duration) error {
	// journal_mode is persistent in the file. Changing it needs an exclusive lock which a
	// concurrent opener may hold for a moment; retry until the busy timeout.
	deadline := time.Now().Add(busy)
	for {
		var mode string
		err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
		if err == nil && mode == "wal" {
			break
		}
		if err == nil {
			err = fmt.Errorf("journal mode is %q", mode)
		}
		if !isBusy(err) || time.Now().After(deadline) {
			return fmt.Errorf("sqlite: switch %s to WAL mode: %w", s.path, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s.migrate(ctx)
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database. This store's workers count as dead from now on: another store
// releases whatever claims they still hold.
func (s *Store) Close() error {
	s.holders.close(s.holdsClaims)
	s.runners.close(s.runsDeployments)
	if s.openLock != nil {
		s.openLock.Close()
	}
	s.stmtMu.Lock()
	for q, st := range s.stmts {
		st.Close()
		delete(s.stmts, q)
	}
	s.stmtMu.Unlock()
	return s.db.Close()
}

// prepared returns the cached prepared statement for q, preparing it on first use.
func (s *Store) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	st := s.stmts[q]
	s.stmtMu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if prev := s.stmts[q]; prev != nil {
		st.Close()
		return prev, nil
	}
	s.stmts[q] = st
	return st, nil
}

// dbq runs statements outside a transaction through the statement cache.
type dbq struct{ s *Store }

func (q dbq) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := q.s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (q dbq) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (q dbq) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := q.s.prepared(ctx, query)
	if err != nil {
		return q.s.db.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

// txq runs statements in a transaction through the statement cache.
type txq struct {
	s  *Store
	tx *sql.Tx
}

// strings runs a query of one text column and returns its values in order.
func (q txq) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (q txq) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	st, err := q.s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return q.tx.StmtContext(ctx, st), nil
}

func (q txq) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (q txq) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (q txq) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return q.tx.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

// DB returns the underlying database handle, for tests and diagnostics.
func (s *Store) DB() *sql.DB { return s.db }

// withWriteTx runs fn in one BEGIN IMMEDIATE transaction.
func (s *Store) withWriteTx(ctx context.Context, fn func(tx txq) error) error {
	select {
	case s.writeSlot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writeSlot }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(txq{s: s, tx: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
