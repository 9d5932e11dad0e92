package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/fairclaim"
)

// claimColumns are deliveryColumns with the body's reference instead of the body: the claim
// reads each shared body once (bodyCache) however many of its deliveries it takes.
const claimColumns = `id, event_id, hook_id, filter, kind, format, body_ref, body, endpoint, state, attempts,
	next_attempt_at, lease_until, claimed_by, last_error, created_at, updated_at`

// claimedRow is a delivery the claim update returned, its body not yet resolved.
type claimedRow struct {
	d      store.Delivery
	ref    int64
	inline []byte
}

func scanClaimedRow(r scanner) (claimedRow, error) {
	var c claimedRow
	d := &c.d
	var next, lease, created, updated int64
	if err := r.Scan(&d.ID, &d.EventID, &d.HookID, &d.Filter, &d.Kind, &d.Format, &c.ref, &c.inline, &d.Endpoint, &d.State,
		&d.Attempts, &next, &lease, &d.ClaimedBy, &d.LastError, &created, &updated); err != nil {
		return c, err
	}
	d.NextAttemptAt = store.FromUnixNanos(next)
	d.LeaseUntil = store.FromUnixNanos(lease)
	d.CreatedAt = store.FromUnixNanos(created)
	d.UpdatedAt = store.FromUnixNanos(updated)
	return c, nil
}

// A claim runs these statements in one write transaction and picks in Go, which costs the
// store a fraction of one statement doing it all with window functions:
//
//   - claimHeldSQL counts the deliveries running under a lease that has not expired, per
//     endpoint (whichever worker or process holds them) and per organization for this worker
//     (a range scan of deliveries_running);
//   - claimFirstSQL, claimRetrySQL and claimExpiredSQL read candidates in due order from their
//     partial indexes, first attempts, retries, and running deliveries whose lease expired
//     (their worker died; they count as retries; the last two run as one statement,
//     claimAgainSQL), skipping endpoints and organizations already at their cap in the index
//     scan so that they cannot crowd the others out. Each stops after ?3 rows, so the cost
//     follows the claim size, not the backlog: a short first look (fairclaim.FirstLook), and a
//     longer one (fairclaim.Window) only when capped endpoints or organizations filled the
//     first without filling the claim. Skipping costs a scan of the capped ones' backlog in
//     the index, so a skip that just found nothing is not repeated for a moment (skipCache);
//   - the picks are fair (fairclaim.Picker): first attempts and the rest take turns, and within
//     each the organization, then the endpoint, with the fewest deliveries running goes first,
//     then the earliest due, each endpoint and organization kept under its cap;
//   - claimUpdateSQL marks the picked rows running in one statement and returns them.
const (
	claimHeldSQL = `SELECT endpoint, org, claimed_by = ?2, COUNT(*) FROM deliveries
		WHERE state = 'running' AND lease_until > ?1 GROUP BY endpoint, org, claimed_by = ?2`
	// The candidate queries: their row source and filter, then claimSkips (or not), then their
	// order and bound.
	claimFirstFrom = `SELECT rowid, endpoint, org, next_attempt_at FROM deliveries INDEXED BY deliveries_first
		WHERE state = 'pending' AND attempts = 0 AND next_attempt_at <= ?1`
	claimRetryFrom = `SELECT rowid, endpoint, org, next_attempt_at FROM deliveries INDEXED BY deliveries_retry
		WHERE state = 'pending' AND attempts > 0 AND next_attempt_at <= ?1`
	claimExpiredFrom = `SELECT rowid, endpoint, org, next_attempt_at FROM deliveries INDEXED BY deliveries_running
		WHERE state = 'running' AND lease_until <= ?1`
	// claimSkips skips the endpoints (?2) and organizations (?4) at their cap. When none is
	// (the usual case) the claim runs the queries without it, their bound then ?2
	// (claimFirstOpenSQL, claimAgainOpenSQL): in the engine's throughput benchmark that took the
	// fair pick from 15 to 9 µs a delivery.
	claimSkips = `
		  AND endpoint NOT IN (SELECT value FROM json_each(?2)) AND org NOT IN (SELECT value FROM json_each(?4))`

	claimFirstSQL   = claimFirstFrom + claimSkips + ` ORDER BY next_attempt_at LIMIT ?3`
	claimRetrySQL   = claimRetryFrom + claimSkips + ` ORDER BY next_attempt_at LIMIT ?3`
	claimExpiredSQL = claimExpiredFrom + claimSkips + ` ORDER BY lease_until LIMIT ?3`
	// claimAgainSQL reads retries and expired leases in one statement (one round trip).
	claimAgainSQL = `SELECT * FROM (` + claimRetrySQL + `) UNION ALL SELECT * FROM (` + claimExpiredSQL + `)`

	claimFirstOpenSQL = claimFirstFrom + ` ORDER BY next_attempt_at LIMIT ?2`
	claimAgainOpenSQL = `SELECT * FROM (` + claimRetryFrom + ` ORDER BY next_attempt_at LIMIT ?2) UNION ALL SELECT * FROM (` +
		claimExpiredFrom + ` ORDER BY lease_until LIMIT ?2)`

	claimUpdateSQL = `UPDATE deliveries
		SET state = 'running', attempts = attempts + 1, lease_until = ?2, claimed_by = ?3, updated_at = ?1
		WHERE rowid IN (SELECT value FROM json_each(?4))
		RETURNING ` + claimColumns
)

// claimUpdateMaxArgs is the largest claim whose rowids go in as parameters (claimUpdateListSQL):
// a statement per size, cached, and no json_each table to build. Larger claims use
// claimUpdateSQL.
const claimUpdateMaxArgs = 64

// claimUpdateListSQL is claimUpdateSQL for n rowids given as parameters ?4 to ?(n+3).
func claimUpdateListSQL(n int) string {
	return cachedSQL(claimUpdateSQLs, n, func(b *strings.Builder) {
		b.WriteString(`UPDATE deliveries
		SET state = 'running', attempts = attempts + 1, lease_until = ?2, claimed_by = ?3, updated_at = ?1
		WHERE rowid IN (`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, "?%d", i+4)
		}
		b.WriteString(`) RETURNING ` + claimColumns)
	})
}

// DeliveryClaim claims due deliveries (see store.DeliveryClaimParams) and returns them with the
// hook's current URL, secret and active flag, first attempts first.
func (s *Store) DeliveryClaim(ctx context.Context, p store.DeliveryClaimParams) ([]*store.ClaimedDelivery, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	if err := checkClaim(p); err != nil {
		return nil, err
	}
	if err := s.holders.acquire(p.Worker); err != nil {
		return nil, err
	}
	var out []*store.ClaimedDelivery
	var rel claimRelease
	err := s.withWriteTx(ctx, func(tx txq) error {
		if err := s.releaseBeforeClaim(ctx, tx, store.UnixNanos(p.Now), &rel); err != nil {
			return err
		}
		var err error
		out, err = s.claimIn(ctx, tx, p)
		return err
	})
	s.finishRelease(rel.dead, rel.n, err)
	if err != nil {
		return nil, err
	}
	fairclaim.Sort(out)
	return out, nil
}

func checkClaim(p store.DeliveryClaimParams) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("sqlite: claim deliveries: %w", err)
	}
	return nil
}

// claimIn claims inside tx; p is checked and p.Limit > 0.
func (s *Store) claimIn(ctx context.Context, tx txq, p store.DeliveryClaimParams) ([]*store.ClaimedDelivery, error) {
	capN, orgCap := fairclaim.Caps(p)
	now := store.UnixNanos(p.Now)
	picked, err := s.pickClaims(ctx, tx, p.Worker, now, capN, orgCap, p.Limit)
	if err != nil || len(picked) == 0 {
		return nil, err
	}
	var rows *sql.Rows
	if len(picked) <= claimUpdateMaxArgs {
		args := make([]any, 0, 3+len(picked))
		args = append(args, now, now+p.Lease.Nanoseconds(), p.Worker)
		for _, id := range picked {
			args = append(args, id)
		}
		rows, err = tx.QueryContext(ctx, claimUpdateListSQL(len(picked)), args...)
	} else {
		ids, _ := json.Marshal(picked) // an int64 slice always marshals
		rows, err = tx.QueryContext(ctx, claimUpdateSQL, now, now+p.Lease.Nanoseconds(), p.Worker, string(ids))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
	}
	crs := make([]claimedRow, 0, len(picked))
	for rows.Next() {
		c, err := scanClaimedRow(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
		}
		crs = append(crs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
	}
	// Read each shared body once, however many of its deliveries the claim took.
	bodies := bodyCache{tx: tx, payloads: &s.payloads}
	out := make([]*store.ClaimedDelivery, len(crs))
	for i := range crs {
		c := &crs[i]
		body, err := bodies.get(ctx, c.d.EventID, c.ref, c.inline)
		if err != nil {
			return nil, err
		}
		if c.ref != bodyInline {
			body = bytes.Clone(body) // each delivery owns its body, as when it is read alone
		}
		c.d.Body = body
		out[i] = &store.ClaimedDelivery{Delivery: c.d}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return s.fillHooks(ctx, tx, out, now)
}

// pickClaims returns the rowids of up to limit due deliveries to claim, fairly (see
// claimPicker.pick), no endpoint above capN running and no organization above orgCap running
// under worker.
func (s *Store) pickClaims(ctx context.Context, tx txq, worker string, now, capN, orgCap int64, limit int) ([]int64, error) {
	fair := fairclaim.NewPicker(limit, capN, orgCap, &s.claimTurn)
	if err := readHeld(ctx, tx, now, worker, fair.Hold); err != nil {
		return nil, err
	}
	c := claimPicker{tx: tx, now: now, fair: fair, skips: &s.claimSkips}
	first, full := fairclaim.FirstLook(limit), fairclaim.Window(limit, min(capN, orgCap))
	truncated, err := c.pick(ctx, first)
	if err != nil || fair.Full() || !truncated || full <= first {
		return c.rowids(), err
	}
	// Endpoints or organizations that reached their cap filled the first look: look further,
	// skipping them now.
	_, err = c.pick(ctx, full)
	return c.rowids(), err
}

// readHeld calls hold with what runs under a lease that has not expired (claimHeldSQL): per
// endpoint and organization, and whether worker holds it.
func readHeld(ctx context.Context, tx queryer, now int64, worker string, hold func(endpoint, org string, mine bool, n int64)) error {
	rows, err := tx.QueryContext(ctx, claimHeldSQL, now, worker)
	if err != nil {
		return fmt.Errorf("sqlite: claim deliveries: count running deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ep, org string
		var mine bool
		var n int64
		if err := rows.Scan(&ep, &org, &mine, &n); err != nil {
			return fmt.Errorf("sqlite: claim deliveries: count running deliveries: %w", err)
		}
		hold(ep, org, mine, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: claim deliveries: count running deliveries: %w", err)
	}
	return nil
}

// claimPicker reads the candidates of one claim for its fair picker.
type claimPicker struct {
	tx    txq
	now   int64
	fair  *fairclaim.Picker
	skips *skipCache
}

// rowids returns the rowids of the picks.
func (c *claimPicker) rowids() []int64 {
	picked := c.fair.Picked()
	ids := make([]int64, len(picked))
	for i, cc := range picked {
		ids[i] = cc.ID
	}
	return ids
}

// claimSkipBackoff is how long a claim trusts that skipping the same capped endpoints and
// organizations finds nothing due, unless this process queued work since (skipCache): as
// long in real time and on the claim's clock (Now). Work queued by other processes, and
// retries coming due, wait at most this long for it.
const claimSkipBackoff = 100 * time.Millisecond

// skipCache remembers the last capped set whose scan found nothing due. A single organization
// at its cap with a large backlog (the common case of one tenant, whose cap leaves a worker
// free) would otherwise have every claim scan the whole backlog for other work.
type skipCache struct {
	// gen counts the times this process queued due work (deliveries inserted, or put back due
	// at once): a change means a skip may find something now.
	gen   atomic.Uint64
	mu    sync.Mutex
	key   string
	keyAt uint64
	until time.Time
	// now is the claim's clock when the scan found nothing (unix nanoseconds).
	now int64
}

func (c *skipCache) empty(key string, gen uint64, now int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.key == key && c.keyAt == gen && time.Now().Before(c.until) &&
		now >= c.now && now-c.now < claimSkipBackoff.Nanoseconds()
}

func (c *skipCache) setEmpty(key string, gen uint64, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key, c.keyAt, c.until, c.now = key, gen, time.Now().Add(claimSkipBackoff), now
}

// capped returns the sorted JSON arrays of the endpoints and of the organizations at their
// cap (sorted, so that equal sets give equal skipCache keys).
func (c *claimPicker) capped() (endpoints, orgs string) {
	e, o := c.fair.Capped()
	be, _ := json.Marshal(e) // a string slice always marshals
	bo, _ := json.Marshal(o)
	return string(be), string(bo)
}

// pick reads up to bound candidates of each class, skipping endpoints and organizations at
// their cap, and picks from them until the claim is full; truncated says whether a class had
// bound rows (it may have more). The picks are fair (fairclaim.Picker).
func (c *claimPicker) pick(ctx context.Context, bound int64) (truncated bool, err error) {
	cappedEndpoints, cappedOrgs := c.capped()
	// Skipping capped endpoints or organizations costs a scan of their backlog in the index;
	// when the same skip just found nothing, it is not repeated for a moment (skipCache).
	skipKey, gen := "", c.skips.gen.Load()
	if cappedEndpoints != "[]" || cappedOrgs != "[]" {
		skipKey = cappedEndpoints + "\n" + cappedOrgs
		if c.skips.empty(skipKey, gen, c.now) {
			return false, nil
		}
	}
	read := int64(0)
	open := skipKey == "" // nothing capped: the queries without claimSkips
	candidates := func(q string) ([]fairclaim.Candidate, error) {
		var rows *sql.Rows
		var err error
		if open {
			rows, err = c.tx.QueryContext(ctx, q, c.now, bound)
		} else {
			rows, err = c.tx.QueryContext(ctx, q, c.now, cappedEndpoints, bound, cappedOrgs)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
		}
		defer rows.Close()
		var out []fairclaim.Candidate
		n := int64(0)
		for rows.Next() {
			var cc fairclaim.Candidate
			if err := rows.Scan(&cc.ID, &cc.Endpoint, &cc.Org, &cc.Next); err != nil {
				return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
			}
			n++
			if !c.fair.Taken(cc.ID) { // picked by the first look
				out = append(out, cc)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
		}
		read += n
		if n >= bound {
			truncated = true
		}
		return out, nil
	}
	firstSQL, againSQL := claimFirstSQL, claimAgainSQL
	if open {
		firstSQL, againSQL = claimFirstOpenSQL, claimAgainOpenSQL
	}
	first, err := candidates(firstSQL)
	if err != nil {
		return false, err
	}
	// Retries and expired leases in one statement: it returns up to bound of each, so up to
	// 2*bound; reading bound or more may mean either class was cut off.
	again, err := candidates(againSQL)
	if err != nil {
		return false, err
	}
	if read == 0 && skipKey != "" {
		c.skips.setEmpty(skipKey, gen, c.now)
	}
	c.fair.Pick(first, again)
	return truncated, nil
}

// fillHooks sets URL, Secret and HookActive of claimed deliveries from their hooks. A delivery
// whose hook's secret cannot be opened is failed there and then (failUndecryptable) and left
// out of the result; the others go ahead. Hooks read in earlier claims come from s.hooks while
// no hook has changed since (see hookCache).
func (s *Store) fillHooks(ctx context.Context, tx queryer, cds []*store.ClaimedDelivery, now int64) ([]*store.ClaimedDelivery, error) {
	// -1: a schema below migration 012 (migrated down), which counts no changes: no cache.
	var gen int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT n FROM store_counts WHERE name = 'hooks_changes'), -1)`).Scan(&gen); err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: read the webhooks' change count: %w", err)
	}
	box := s.currentBox()
	hooks := make(map[int64]hookInfo, len(cds))
	var missing []int64
	s.hooks.lookup(gen, box, cds, hooks, func(id int64) { missing = append(missing, id) })
	if len(missing) > 0 {
		idList, _ := json.Marshal(missing) // an int64 slice always marshals
		rows, err := tx.QueryContext(ctx, `SELECT id, org, project, stack, environment, name, payload_url, active, secret_box
		FROM hooks WHERE id IN (SELECT value FROM json_each(?))`, string(idList))
		if err != nil {
			return nil, fmt.Errorf("sqlite: claim deliveries: read webhooks: %w", err)
		}
		defer rows.Close()
		read := make(map[int64]hookInfo, len(missing))
		for rows.Next() {
			var id int64
			var ref store.HookRef
			var info hookInfo
			var sealed []byte
			if err := rows.Scan(&id, &ref.Org, &ref.Project, &ref.Stack, &ref.Environment, &ref.Name, &info.url, &info.active, &sealed); err != nil {
				return nil, fmt.Errorf("sqlite: claim deliveries: read webhooks: %w", err)
			}
			info.ref = ref
			if info.secret, err = s.openSecret(ref, sealed); err != nil {
				info.bad = true
			}
			hooks[id] = info
			read[id] = info
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: claim deliveries: read webhooks: %w", err)
		}
		rows.Close()
		s.hooks.store(gen, box, read)
	}
	out := cds[:0]
	for _, cd := range cds {
		h := hooks[cd.HookID] // a delivery's hook always exists: deleting a hook deletes its deliveries
		if h.bad && h.active {
			if err := s.failUndecryptable(ctx, tx, cd, h.ref, now); err != nil {
				return nil, err
			}
			continue
		}
		cd.URL, cd.Secret, cd.HookActive = h.url, h.secret, h.active
		out = append(out, cd)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// hookInfo is what a claim needs of a delivery's hook.
type hookInfo struct {
	url    string
	secret string
	active bool
	ref    store.HookRef
	bad    bool // the secret does not open
}

// hookCacheSize bounds how many hooks a store keeps between claims; when full it starts over.
const hookCacheSize = 4096

// hookCache keeps the hooks claims read, with their opened secrets, between the delivery
// loop's rounds. Its entries hold while the hooks_changes counter (migration 012: triggers add
// one for every update and deletion of a hook, whichever process makes it, in that change's
// transaction) and the store's key are those they were read under; a claim reads the counter
// in its own transaction, so it never uses a hook older than the one it would read. A hook
// whose secret does not open is never kept: each claim reads it again.
type hookCache struct {
	mu  sync.Mutex
	gen int64
	box *secretbox.Box
	m   map[int64]hookInfo
}

// lookup puts into into the cached hooks of cds, valid at gen under box, and calls miss once
// for each hook it does not have. A gen or box other than the cache's empties it.
func (c *hookCache) lookup(gen int64, box *secretbox.Box, cds []*store.ClaimedDelivery, into map[int64]hookInfo, miss func(id int64)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.box != box || gen < 0 {
		c.m, c.gen, c.box = nil, gen, box
	}
	for _, cd := range cds {
		if _, done := into[cd.HookID]; done {
			continue
		}
		if h, ok := c.m[cd.HookID]; ok {
			into[cd.HookID] = h
			continue
		}
		into[cd.HookID] = hookInfo{} // asked for once; filled by the caller's read
		miss(cd.HookID)
	}
}

// store keeps hooks read at gen under box, unless the cache has moved on since.
func (c *hookCache) store(gen int64, box *secretbox.Box, hooks map[int64]hookInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.box != box || gen < 0 {
		return
	}
	if c.m == nil || len(c.m)+len(hooks) > hookCacheSize {
		c.m = make(map[int64]hookInfo, min(hookCacheSize, 64))
	}
	for id, h := range hooks {
		if !h.bad {
			c.m[id] = h
		}
	}
}
