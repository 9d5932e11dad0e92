package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// HolderCheckInterval bounds how often one store looks for dead holders while claiming, and
// how often it checks that its session is still connected.
const HolderCheckInterval = time.Second

// Holder kinds: delivery workers and deployment runners.
const (
	kindDelivery   = "delivery"
	kindDeployment = "deployment"
)

// sessionKeepalives makes the server probe the session's TCP connection after 5 s idle, every
// 2 s, giving up after 3 unanswered probes.
const sessionKeepalives = `SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3`

// SessionKeepaliveBound is about how long the server takes to notice that the machine of a
// session's process is gone (5 s idle + 3 probes 2 s apart), and so to release its claims.
const SessionKeepaliveBound = 11 * time.Second

// openLockKey is held shared by the session of every open store; KeyRotate takes it
// exclusively, which it gets only while no other store has the database open.
var openLockKey = lockKey("open", "store")

// session is a store's dedicated connection and the session advisory locks on it: the open
// lock, and one lock per holder this store registered.
type session struct {
	s *Store

	// mu guards the connection and serializes its use; no one holding it waits for the pool
	// while others holding pool connections wait for it.
	mu       sync.Mutex
	conn     *pgx.Conn
	gen      uint64 // counts the connections conn has had
	lastPing time.Time
	closed   bool
	// suspect is set when a pool connection failed transiently (the server may have restarted):
	// the next acquire checks the session at once instead of after HolderCheckInterval.
	suspect atomic.Bool

	// maps guards own and lastCheck, which claims read inside their transactions.
	maps      sync.Mutex
	own       map[holderName]int64 // registered holders and their lock keys
	lastCheck map[string]time.Time // per kind: when dead holders were last looked for
}

type holderName struct{ kind, name string }

func newSession(s *Store) *session {
	return &session{s: s, own: map[holderName]int64{}, lastCheck: map[string]time.Time{}}
}

// open connects the session and takes the open lock shared, waiting up to wait for a key
// rotation in progress.
func (ss *session) open(ctx context.Context, wait time.Duration) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.connect(ctx, wait)
}

// connect (re)opens the session's connection and takes its locks again; ss.mu is held.
func (ss *session) connect(ctx context.Context, wait time.Duration) error {
	if ss.conn != nil {
		_ = ss.conn.Close(context.Background())
		ss.conn = nil
	}
	var conn *pgx.Conn
	err := ss.s.retrying(ctx, func(ctx context.Context) error {
		var err error
		conn, err = pgx.ConnectConfig(ctx, ss.s.connCf.Copy())
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: open the store's session on %s: %w", ss.s.where, err)
	}
	// A process that dies with its machine (power, network) sends nothing: the server then
	// notices the session is gone, and drops its locks, only when TCP keepalives go unanswered.
	// Ask for them soon and often, so such a holder counts as dead within about
	// SessionKeepaliveBound rather than the system's default of hours.
	if _, err := conn.Exec(ctx, sessionKeepalives); err != nil {
		_ = conn.Close(context.Background())
		return fmt.Errorf("postgres: set the session's keepalives on %s: %w", ss.s.where, err)
	}
	deadline := time.Now().Add(wait)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock_shared($1)`, openLockKey).Scan(&ok); err != nil {
			_ = conn.Close(context.Background())
			return fmt.Errorf("postgres: take the store's open lock on %s: %w", ss.s.where, err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			_ = conn.Close(context.Background())
			return fmt.Errorf("postgres: take the store's open lock on %s: a key rotation is running; wait for it to finish: %w", ss.s.where, store.ErrStoreBusy)
		}
		select {
		case <-ctx.Done():
			_ = conn.Close(context.Background())
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	ss.conn = conn
	ss.gen++
	ss.lastPing = time.Now()
	ss.maps.Lock()
	own := maps.Clone(ss.own)
	ss.maps.Unlock()
	for h, key := range own {
		if err := ss.lock(ctx, h, key); err != nil {
			return err
		}
		if err := ss.register(ctx, h, key); err != nil {
			return err
		}
	}
	return nil
}

// healthy makes sure the session is connected, checking it at most once per
// HolderCheckInterval and reconnecting when it was lost; ss.mu is held.
func (ss *session) healthy(ctx context.Context) error {
	if ss.closed {
		return errors.New("postgres: the store is closed")
	}
	if ss.conn != nil && !ss.conn.IsClosed() && time.Since(ss.lastPing) < HolderCheckInterval && !ss.suspect.Swap(false) {
		return nil
	}
	if ss.conn != nil && !ss.conn.IsClosed() {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := ss.conn.Ping(pctx)
		cancel()
		if err == nil {
			ss.lastPing = time.Now()
			return nil
		}
	}
	ss.s.logger.Warn("the store's session connection was lost; reconnecting and taking its holder locks again", "database", ss.s.where)
	return ss.connect(ctx, OpenTimeoutDefault)
}

// lock takes holder h's session lock on the session; ss.mu is held.
func (ss *session) lock(ctx context.Context, h holderName, key int64) error {
	for i := 0; ; i++ {
		var ok bool
		if err := ss.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
			return fmt.Errorf("postgres: lock %s holder %q: %w", h.kind, h.name, err)
		}
		if ok {
			break
		}
		// Another store is probing the lock this very moment (it holds it until its
		// transaction ends), or the same name is used by two stores, which is the caller's bug.
		if i >= 200 {
			return fmt.Errorf("postgres: lock %s holder %q: another store holds it; give every store's worker a distinct name", h.kind, h.name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// register records holder h and its lock key in holders, so that other stores can judge it.
func (ss *session) register(ctx context.Context, h holderName, key int64) error {
	return ss.s.withTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, registerSQL, h.kind, h.name, key, time.Now().UnixNano())
		if err != nil {
			return fmt.Errorf("postgres: register %s holder %q: %w", h.kind, h.name, err)
		}
		return nil
	})
}

// acquire makes sure this store holds the lock of holder name of kind. It is cheap once held.
func (ss *session) acquire(ctx context.Context, kind, name string) error {
	h := holderName{kind, name}
	key := lockKey("holder/"+kind, name)
	ss.mu.Lock()
	if err := ss.healthy(ctx); err != nil {
		ss.mu.Unlock()
		return err
	}
	ss.maps.Lock()
	_, ok := ss.own[h]
	ss.maps.Unlock()
	if ok {
		ss.mu.Unlock()
		return nil
	}
	err := ss.lock(ctx, h, key)
	ss.mu.Unlock()
	if err != nil {
		return err
	}
	// Registered after the lock is held: until the row exists nobody judges the holder, and
	// it claims nothing before this returns.
	if err := ss.register(ctx, h, key); err != nil {
		return err
	}
	ss.maps.Lock()
	ss.own[h] = key
	ss.maps.Unlock()
	return nil
}

// txHolder is a holder whose session lock lockInTx took for a transaction to register.
type txHolder struct {
	holderName
	key int64
	// gen is the session connection the lock was taken on (session.gen).
	gen uint64
}

// lockInTx makes sure this store holds the session lock of holder name of kind for a claim
// made inside a transaction that already holds a pool connection (an emit's direct claim):
// unlike acquire it never waits for the pool nor checks or reconnects the session (the claim
// loop's acquire does, at most once per HolderCheckInterval). ok is false when a holder not
// registered yet cannot be, the session being lost or closed: claim nothing then. A holder
// not registered yet is returned for the transaction to register (registerSQL); once that has
// committed, adopt makes it this store's.
func (ss *session) lockInTx(ctx context.Context, kind, name string) (h *txHolder, ok bool, err error) {
	hn := holderName{kind, name}
	ss.maps.Lock()
	_, owned := ss.own[hn]
	ss.maps.Unlock()
	if owned {
		return nil, true, nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.conn == nil || ss.conn.IsClosed() {
		return nil, false, nil
	}
	key := lockKey("holder/"+kind, name)
	if err := ss.lock(ctx, hn, key); err != nil {
		return nil, false, err
	}
	return &txHolder{holderName: hn, key: key, gen: ss.gen}, true, nil
}

// registerSQL records a holder and its lock key in holders (register's statement).
const registerSQL = `INSERT INTO holders (kind, name, lock_key, registered_at) VALUES ($1, $2, $3, $4)
	ON CONFLICT (kind, name) DO UPDATE SET lock_key = excluded.lock_key, registered_at = excluded.registered_at`

// adopt makes the holders a committed transaction registered (lockInTx) this store's, unless
// the session reconnected meanwhile, losing their locks: the next acquire takes them again.
func (ss *session) adopt(hs []txHolder) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.maps.Lock()
	defer ss.maps.Unlock()
	for _, h := range hs {
		if h.gen == ss.gen && !ss.closed {
			ss.own[h.holderName] = h.key
		}
	}
}

// owned returns the names of this store's holders of kind.
func (ss *session) owned(kind string) []string {
	ss.maps.Lock()
	defer ss.maps.Unlock()
	out := []string{}
	for h := range ss.own {
		if h.kind == kind {
			out = append(out, h.name)
		}
	}
	return out
}

// due reports whether a check for dead holders of kind is due, and starts the next interval.
func (ss *session) due(kind string, now time.Time) bool {
	ss.maps.Lock()
	defer ss.maps.Unlock()
	if last := ss.lastCheck[kind]; !last.IsZero() && now.Sub(last) < HolderCheckInterval {
		return false
	}
	ss.lastCheck[kind] = now
	return true
}

// close ends the session: its locks go with it, so its holders count as dead. The rows of
// holders that hold nothing any more are removed.
func (ss *session) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return
	}
	ss.closed = true
	ss.maps.Lock()
	defer ss.maps.Unlock()
	if len(ss.own) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var names, kinds []string
		for h := range ss.own {
			kinds, names = append(kinds, h.kind), append(names, h.name)
		}
		_, _ = ss.s.pool.Exec(ctx, `DELETE FROM holders h USING unnest($1::text[], $2::text[]) AS o(kind, name)
			WHERE h.kind = o.kind AND h.name = o.name
			  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE h.kind = 'delivery' AND d.state = 'running' AND d.claimed_by = h.name)
			  AND NOT EXISTS (SELECT 1 FROM deployments d WHERE h.kind = 'deployment' AND d.status IN ('accepted', 'running') AND d.worker = h.name)`,
			kinds, names)
		cancel()
	}
	if ss.conn != nil {
		// Give the locks up before closing: a closed connection's server process drops them a
		// moment later, and by then another store may already have looked.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = ss.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		cancel()
		_ = ss.conn.Close(context.Background())
		ss.conn = nil
	}
}

// holderStaleAfter is the age after which a holder that holds no claims and whose lock nobody
// holds is forgotten (a process that ended holding none leaves its row).
const holderStaleAfter = time.Hour

// sweepHolders forgets stale holders (holderStaleAfter); Open runs it once.
func (s *Store) sweepHolders(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM holders h WHERE h.registered_at < $1
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE h.kind = 'delivery' AND d.state = 'running' AND d.claimed_by = h.name)
		AND NOT EXISTS (SELECT 1 FROM deployments d WHERE h.kind = 'deployment' AND d.status IN ('accepted', 'running') AND d.worker = h.name)
		AND pg_try_advisory_xact_lock(h.lock_key)`, time.Now().Add(-holderStaleAfter).UnixNano())
	if err != nil {
		return fmt.Errorf("postgres: forget stale holders: %w", err)
	}
	return nil
}

// deadHolders returns, inside tx, the registered holders of kind among names whose session
// lock nobody holds. tx holds each one's lock until it ends, so a holder of that name cannot
// register again meanwhile.
func (s *Store) deadHolders(ctx context.Context, tx pgx.Tx, kind string, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	own := s.session.owned(kind)
	rows, err := tx.Query(ctx, `SELECT name FROM holders
		WHERE kind = $1 AND name = ANY($2::text[]) AND NOT (name = ANY($3::text[]))
		  AND pg_try_advisory_xact_lock(lock_key)
		ORDER BY name`, kind, names, own)
	if err != nil {
		return nil, fmt.Errorf("postgres: look for dead %s holders: %w", kind, err)
	}
	dead, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: look for dead %s holders: %w", kind, err)
	}
	if len(dead) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM holders WHERE kind = $1 AND name = ANY($2::text[])`, kind, dead); err != nil {
			return nil, fmt.Errorf("postgres: forget dead %s holders: %w", kind, err)
		}
	}
	return dead, nil
}

// releaseDead puts back, inside tx, the running deliveries of dead holders.
func (s *Store) releaseDead(ctx context.Context, tx pgx.Tx, now int64) ([]string, int, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT claimed_by FROM deliveries WHERE state = 'running'`)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: find the holders of running deliveries: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: find the holders of running deliveries: %w", err)
	}
	dead, err := s.deadHolders(ctx, tx, kindDelivery, names)
	if err != nil || len(dead) == 0 {
		return nil, 0, err
	}
	tag, err := tx.Exec(ctx, `UPDATE deliveries SET state = 'pending', lease_until = 0, last_error = $1 || claimed_by || ')', updated_at = $2
		WHERE state = 'running' AND claimed_by = ANY($3::text[])`, store.ReleasedDeadReason, now, dead)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: release the claims of dead holders %q: %w", dead, err)
	}
	return dead, int(tag.RowsAffected()), nil
}

// logRelease logs what a release put back.
func (s *Store) logRelease(dead []string, n int) {
	if len(dead) > 0 {
		s.logger.Warn("released the claims of delivery processes that ended without recording their attempts; those deliveries will be retried now",
			"holders", dead, "deliveries", n)
	}
}

// DeliveryReleaseDead releases the claims of dead holders; see store.Store.
func (s *Store) DeliveryReleaseDead(ctx context.Context, p store.DeliveryReleaseDeadParams) (store.DeliveryReleaseDeadResult, error) {
	var res store.DeliveryReleaseDeadResult
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		var err error
		res.Holders, res.Deliveries, err = s.releaseDead(ctx, tx, store.UnixNanos(p.Now))
		return err
	})
	if err != nil {
		return store.DeliveryReleaseDeadResult{}, s.fail(err)
	}
	s.logRelease(res.Holders, res.Deliveries)
	return res, nil
}
