package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Defaults for Config fields left zero, and the store's fixed bounds.
const (
	// MaxConnsDefault is the pool size: the delivery loop, emits, the API and the pruner.
	MaxConnsDefault int32 = 16
	// RetryWindowDefault bounds how long a transaction is retried across transient failures
	// (a restart or failover of the server) before its error is returned.
	RetryWindowDefault = 30 * time.Second
	// OpenTimeoutDefault bounds how long Open waits for a key rotation in progress.
	OpenTimeoutDefault = 30 * time.Second
)

// Config opens a store. Only URL is required.
type Config struct {
	// URL is the database: postgres://user:password@host:port/db?sslmode=... Its password is
	// never logged nor put in an error.
	URL string
	// Key, when set, is the 32-byte key sealing secrets; it wins over the environment and KeyFile.
	Key []byte
	// KeyFile is an existing file holding the key (the format of SQLite's key file). It is read,
	// never created: every server sharing the database needs the same key.
	KeyFile string
	Logger  *slog.Logger
	// MaxConns bounds the connection pool (MaxConnsDefault when 0). Each Store also keeps two
	// dedicated connections: its session (holder locks) and its listener (wake-ups).
	MaxConns int32
	// Getenv reads the environment (PULUMI_WEBHOOKS_SECRET_KEY); os.Getenv when nil.
	Getenv func(string) string
	// ForgetSecretsOfLostKey has sqlite.Config's meaning: when the key does not match, the
	// secrets sealed with the other key are forgotten and their webhooks deactivated, and the
	// key becomes the store's.
	ForgetSecretsOfLostKey bool
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxConns == 0 {
		c.MaxConns = MaxConnsDefault
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.URL == "":
		return errors.New("postgres: Config.URL is required: give a postgres://user@host:port/database URL")
	case c.MaxConns < 2:
		return fmt.Errorf("postgres: Config.MaxConns is %d: give at least 2", c.MaxConns)
	}
	return nil
}

// Store is the PostgreSQL implementation of store.Store and store.WatchCursors.
type Store struct {
	pool   *pgxpool.Pool
	connCf *pgx.ConnConfig
	logger *slog.Logger
	// where names the database for errors and logs, password masked.
	where string
	// password is the URL's password, scrubbed from every error this store returns.
	password string
	box      atomic.Pointer[secretbox.Box]
	retry    time.Duration

	session *session
	wake    *listener

	forgotten []store.HookRef
	// claimTurn counts the slots this store's claims handed out (first attempts and retries
	// take turns across claims, as in the SQLite store).
	claimTurn atomic.Uint64

	closeOnce sync.Once

	// faultAfterCommit, when set (tests), runs after each successful COMMIT; an error it
	// returns is reported as that COMMIT's, as when the connection drops before the server's
	// answer arrives.
	faultAfterCommit func() error
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.WatchCursors = (*Store)(nil)
	_ store.Waker        = (*Store)(nil)
)

// Open connects to the database, brings its schema up to date, and checks the key.
func Open(ctx context.Context, c Config) (*Store, error) {
	c = c.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	where, password := MaskURL(c.URL)
	scrub := func(err error) error { return scrubbed(err, password) }
	pcfg, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, scrub(fmt.Errorf("postgres: Config.URL %s: %w; give a postgres://user@host:port/database URL", where, err))
	}
	pcfg.MaxConns = c.MaxConns
	keyCfg := secretbox.Config{Key: c.Key, EnvVar: secretbox.EnvKey, Getenv: c.Getenv}
	box, src, err := loadKey(keyCfg, c.KeyFile)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, scrub(fmt.Errorf("postgres: connect to %s: %w", where, err))
	}
	s := &Store{pool: pool, connCf: pcfg.ConnConfig, logger: c.Logger, where: where, password: password, retry: RetryWindowDefault}
	s.box.Store(box)
	fail := func(err error) (*Store, error) {
		s.closeAll()
		return nil, scrub(err)
	}
	if err := s.ping(ctx); err != nil {
		return fail(fmt.Errorf("postgres: connect to %s: %w", where, err))
	}
	if err := s.migrate(ctx); err != nil {
		return fail(err)
	}
	s.session = newSession(s)
	if err := s.session.open(ctx, OpenTimeoutDefault); err != nil {
		return fail(err)
	}
	s.wake = newListener(s)
	if err := s.sweepHolders(ctx); err != nil {
		s.logger.Warn("forgetting stale holders failed; the next start tries again", "error", s.fail(err).Error())
	}
	if err := s.checkKey(ctx, keyCfg, src, c.KeyFile, c.ForgetSecretsOfLostKey); err != nil {
		return fail(err)
	}
	return s, nil
}

// ping checks that the database answers, retrying transient failures.
func (s *Store) ping(ctx context.Context) error {
	return s.retrying(ctx, func(ctx context.Context) error { return s.pool.Ping(ctx) })
}

// Where names the database, its password masked.
func (s *Store) Where() string { return s.where }

// Pool returns the connection pool, for tests and diagnostics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the store. Its holders count as dead from now on: another store releases
// whatever claims they still hold.
func (s *Store) Close() error {
	s.closeAll()
	return nil
}

func (s *Store) closeAll() {
	s.closeOnce.Do(func() {
		if s.wake != nil {
			s.wake.close()
		}
		if s.session != nil {
			s.session.close()
		}
		s.pool.Close()
	})
}

// MaskURL returns u with its password replaced by "xxxxx", fit for errors and logs, and the
// password itself (to scrub from errors). A URL that does not parse is reduced to its scheme.
func MaskURL(u string) (masked, password string) {
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return maskDSN(u)
	}
	p, err := url.Parse(u)
	if err != nil {
		if i := strings.Index(u, "://"); i >= 0 {
			return u[:i+3] + "(unparsable URL)", ""
		}
		return "(unparsable URL)", ""
	}
	if pw, ok := p.User.Password(); ok {
		password = pw
		p.User = url.UserPassword(p.User.Username(), "xxxxx")
	}
	q := p.Query()
	if q.Has("password") {
		password = q.Get("password")
		q.Set("password", "xxxxx")
		p.RawQuery = q.Encode()
	}
	return p.String(), password
}

// dsnPassword finds the password of a keyword/value connection string (password=secret or
// password='se cret').
var dsnPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// maskDSN masks the password of a keyword/value connection string ("host=h password=p").
func maskDSN(dsn string) (masked, password string) {
	if m := dsnPassword.FindStringSubmatch(dsn); m != nil {
		password = strings.Trim(m[2], "'")
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}xxxxx"), password
}

// scrubbedError is an error whose text has the password taken out; it unwraps to the original.
type scrubbedError struct {
	err      error
	password string
}

func (e *scrubbedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.password, "xxxxx")
}

func (e *scrubbedError) Unwrap() error { return e.err }

// scrubbed returns err with password removed from its text (err itself when there is none).
func scrubbed(err error, password string) error {
	if err == nil || password == "" {
		return err
	}
	return &scrubbedError{err: err, password: password}
}

// fail wraps err for the caller: the password scrubbed.
func (s *Store) fail(err error) error { return scrubbed(err, s.password) }

// querier is what pgx.Tx, *pgxpool.Pool and *pgx.Conn share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// retrying runs fn until it succeeds, fails for good, or transient failures have lasted longer
// than the retry window.
func (s *Store) retrying(ctx context.Context, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(s.retry)
	wait := 20 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil || !transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		if s.session != nil {
			s.session.suspect.Store(true)
		}
		s.logger.Warn("a database operation failed for a reason that passes; retrying", "database", s.where, "error", s.fail(err).Error())
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// withTx runs fn in one transaction, retried as a whole on transient failures (fn must be
// safe to run again: it starts over on a fresh transaction). When the connection fails during
// the COMMIT, so that its outcome is unknown, the transaction's status is asked of the server
// (txid_status) before anything runs again: a committed transaction is not repeated.
func (s *Store) withTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.retrying(ctx, func(ctx context.Context) error {
		return s.txOnce(ctx, fn, true)
	})
}

// withLoopTx is withTx for the delivery loop's own records (claims, completions): their commit
// does not wait for the server's WAL flush (synchronous_commit off for the transaction), and a
// COMMIT whose outcome is unknown is not looked up. A crash of the database server may lose the
// last of them, which only causes a duplicate request, as at-least-once delivery allows; a
// claim repeated after an unknown outcome leaves the first one's deliveries to their lease.
// What a caller is told is stored (an emit, a hook, a token, a key rotation) keeps the
// server's durable commit. The SQLite store draws the same line (synchronous=NORMAL for
// claims, an fsync for acknowledged writes).
func (s *Store) withLoopTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.retrying(ctx, func(ctx context.Context) error {
		return s.txOnce(ctx, fn, false)
	})
}

// loopBegin starts a delivery loop transaction with its relaxed commit, in one round trip.
var loopBegin = pgx.TxOptions{BeginQuery: `BEGIN; SET LOCAL synchronous_commit TO off`}

// txOnce runs fn in one transaction, once. With verify, a transient failure of the COMMIT is
// resolved by asking the server whether the transaction committed; without, the transaction
// is a delivery loop's (withLoopTx).
func (s *Store) txOnce(ctx context.Context, fn func(tx pgx.Tx) error, verify bool) error {
	opts := pgx.TxOptions{}
	if !verify {
		opts = loopBegin
	}
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	var xid int64
	if verify {
		if err := tx.QueryRow(ctx, `SELECT txid_current()`).Scan(&xid); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return fmt.Errorf("postgres: begin: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	err = tx.Commit(ctx)
	if err == nil && s.faultAfterCommit != nil {
		err = s.faultAfterCommit()
	}
	if err == nil {
		return nil
	}
	err = &commitError{fmt.Errorf("postgres: commit: %w", err)}
	if verify && transient(err) {
		if committed, verr := s.committed(ctx, xid); verr == nil && committed {
			s.logger.Info("a transaction whose commit was interrupted had committed; it is not run again", "database", s.where)
			return nil
		}
	}
	return err
}

// committed asks the server whether transaction xid committed, waiting (within the retry
// window) for the server to answer and for the transaction to be over.
func (s *Store) committed(ctx context.Context, xid int64) (bool, error) {
	deadline := time.Now().Add(s.retry)
	for {
		var status *string
		err := s.retrying(ctx, func(ctx context.Context) error {
			return s.pool.QueryRow(ctx, `SELECT txid_status($1)`, xid).Scan(&status)
		})
		switch {
		case err != nil:
			return false, err
		case status == nil:
			return false, fmt.Errorf("postgres: the status of transaction %d is no longer known", xid)
		case *status != "in progress" || time.Now().After(deadline):
			return *status == "committed", nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// commitError is a failed COMMIT: when it is transient, the transaction may have committed.
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// transient reports whether err is a failure that retrying on a new connection may cure.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", // serialization_failure
			"40P01", // deadlock_detected
			"57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now (starting up, shutting down)
			"53300", // too_many_connections
			"55P03": // lock_not_available
			return true
		}
		return strings.HasPrefix(pe.Code, "08") // connection exceptions
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &ne):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "unexpected EOF") || strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset")
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// lockKey maps a name in a namespace to a 64-bit advisory lock key.
func lockKey(namespace, name string) int64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, "pulumi-webhooks\x00"+namespace+"\x00"+name)
	return int64(h.Sum64())
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
