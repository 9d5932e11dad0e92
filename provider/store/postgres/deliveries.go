package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/fairclaim"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// deliveryBody reads a delivery d's body: its own, else the shared body, else its event's
// payload (COALESCE reads only as far as it needs).
const deliveryBody = `COALESCE(d.body, (SELECT b.body FROM delivery_bodies b WHERE b.id = d.body_id),
	(SELECT e.payload FROM events e WHERE e.id = d.event_id))`

const deliveryColumns = `d.id, d.event_id, d.hook_id, d.filter, d.kind, d.format, ` + deliveryBody + `, d.endpoint, d.state, d.attempts,
	d.next_attempt_at, d.lease_until, d.claimed_by, d.last_error, d.created_at, d.updated_at`

func scanDelivery(r pgx.Row) (*store.Delivery, error) {
	var d store.Delivery
	var filter, kind, format, state string
	var next, lease, created, updated int64
	if err := r.Scan(&d.ID, &d.EventID, &d.HookID, &filter, &kind, &format, &d.Body, &d.Endpoint, &state,
		&d.Attempts, &next, &lease, &d.ClaimedBy, &d.LastError, &created, &updated); err != nil {
		return nil, err
	}
	d.Filter, d.Kind, d.Format, d.State = webhook.Filter(filter), webhook.Kind(kind), webhook.Format(format), store.DeliveryState(state)
	if d.Body == nil {
		d.Body = []byte{}
	}
	d.NextAttemptAt = store.FromUnixNanos(next)
	d.LeaseUntil = store.FromUnixNanos(lease)
	d.CreatedAt = store.FromUnixNanos(created)
	d.UpdatedAt = store.FromUnixNanos(updated)
	return &d, nil
}

// A claim runs in one transaction:
//
//   - claimFirstLookSQL counts the deliveries running under a lease that has not expired, per
//     endpoint (whichever worker or server holds them) and per organization for this worker,
//     and in the same statement reads candidates in due order from the partial indexes (first
//     attempts, retries, expired leases), skipping endpoints and organizations already at
//     their cap, at most a bound of each; claimLookSQL looks further when that fell short;
//   - the picks are fair (fairclaim.Picker), as in the SQLite store;
//   - claimLockSQL takes transaction-level advisory locks, waiting for each: under
//     PerOrgLimit one per picked organization under this worker (the lock an emit's direct
//     claims of the worker take for it, directOrgLockSQL in emitclaim.go), then under
//     PerEndpointLimit one per picked endpoint, each kind in key order; claimRecountSQL then
//     counts again what runs at those endpoints and for those organizations under the
//     worker: every claim of those endpoints, and every direct claim of the worker for those
//     organizations, that came earlier has committed by then (its lock is released at its
//     end), so trimming the picks to the caps now holds them across every server and against
//     the worker's concurrent emits. The organizations' locks come first: emitclaim.go gives
//     the order in which locks are waited for, which keeps any two transactions from waiting
//     for each other;
//   - claimUpdateSQL marks the picks running, skipping a row another transaction has locked
//     (FOR UPDATE SKIP LOCKED) or that is no longer due, and returns them with their hooks'
//     URLs, active flags and sealed secrets.
const (
	// claimClassesSQL reads the candidates of the three classes (1 first attempts, 2 retries,
	// 3 expired leases) in due order, at most $3 of each, skipping the endpoints capped_e and
	// organizations capped_o name; the first look (claimFirstLookSQL) computes those from the
	// running deliveries in the same statement, and also returns the counts (class 0).
	claimClassesSQL = `(SELECT 1 AS class, seq, endpoint, org, next_attempt_at AS next, false AS mine, 0::bigint AS n FROM deliveries
		WHERE state = 'pending' AND attempts = 0 AND next_attempt_at <= $1
		  AND endpoint NOT IN (SELECT endpoint FROM capped_e) AND org NOT IN (SELECT org FROM capped_o)
		ORDER BY next_attempt_at, seq LIMIT $3)
		UNION ALL
		(SELECT 2, seq, endpoint, org, next_attempt_at, false, 0 FROM deliveries
		WHERE state = 'pending' AND attempts > 0 AND next_attempt_at <= $1
		  AND endpoint NOT IN (SELECT endpoint FROM capped_e) AND org NOT IN (SELECT org FROM capped_o)
		ORDER BY next_attempt_at, seq LIMIT $3)
		UNION ALL
		(SELECT 3, seq, endpoint, org, next_attempt_at, false, 0 FROM deliveries
		WHERE state = 'running' AND lease_until <= $1
		  AND endpoint NOT IN (SELECT endpoint FROM capped_e) AND org NOT IN (SELECT org FROM capped_o)
		ORDER BY lease_until, seq LIMIT $3)`
	claimFirstLookSQL = `WITH held AS (
			SELECT endpoint, org, claimed_by = $2 AS mine, count(*) AS n FROM deliveries
			WHERE state = 'running' AND lease_until > $1 GROUP BY endpoint, org, claimed_by = $2),
		capped_e AS (SELECT endpoint FROM held GROUP BY endpoint HAVING sum(n) >= $4),
		capped_o AS (SELECT org FROM held WHERE mine GROUP BY org HAVING sum(n) >= $5)
		SELECT 0 AS class, 0::bigint AS seq, endpoint, org, 0::bigint AS next, mine, n FROM held
		UNION ALL ` + claimClassesSQL
	// claimLookSQL is a further look, skipping what the picks so far brought to a cap ($2, $4).
	claimLookSQL = `WITH capped_e AS (SELECT unnest($2::text[]) AS endpoint), capped_o AS (SELECT unnest($4::text[]) AS org)
		` + claimClassesSQL
	claimLockSQL = `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`
	// claimRecountSQL counts what runs at the endpoints $2 (any holder) and for the
	// organizations $4 under worker $3.
	claimRecountSQL = `SELECT false AS org, endpoint, count(*) FROM deliveries
		WHERE state = 'running' AND lease_until > $1 AND endpoint = ANY($2::text[]) GROUP BY endpoint
		UNION ALL
		SELECT true, org, count(*) FROM deliveries
		WHERE state = 'running' AND lease_until > $1 AND claimed_by = $3 AND org = ANY($4::text[]) GROUP BY org`
	claimUpdateSQL = `UPDATE deliveries d
		SET state = 'running', attempts = d.attempts + 1, lease_until = $2, claimed_by = $3, updated_at = $1
		FROM (SELECT seq FROM deliveries
			WHERE seq = ANY($4::bigint[])
			  AND ((state = 'pending' AND next_attempt_at <= $1) OR (state = 'running' AND lease_until <= $1))
			FOR UPDATE SKIP LOCKED) AS c, hooks h
		WHERE d.seq = c.seq AND h.id = d.hook_id
		RETURNING ` + deliveryColumns + `, h.org, h.project, h.stack, h.environment, h.name, h.payload_url, h.active, h.secret_box`
)

// timeNow is the wall clock of holder checks.
var timeNow = time.Now

func checkClaim(p store.DeliveryClaimParams) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("postgres: claim deliveries: %w", err)
	}
	return nil
}

// DeliveryClaim claims due deliveries (see store.DeliveryClaimParams), first attempts first.
func (s *Store) DeliveryClaim(ctx context.Context, p store.DeliveryClaimParams) ([]*store.ClaimedDelivery, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	if err := checkClaim(p); err != nil {
		return nil, err
	}
	if err := s.session.acquire(ctx, kindDelivery, p.Worker); err != nil {
		return nil, s.fail(err)
	}
	var out []*store.ClaimedDelivery
	var rel release
	err := s.withLoopTx(ctx, func(tx pgx.Tx) error {
		var err error
		if rel, err = s.releaseBeforeClaim(ctx, tx, p); err != nil {
			return err
		}
		out, err = s.claimIn(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, s.fail(err)
	}
	s.logRelease(rel.dead, rel.n)
	fairclaim.Sort(out)
	return out, nil
}

type release struct {
	dead []string
	n    int
}

// releaseBeforeClaim releases dead holders' claims inside a claim's transaction when a check
// is due (HolderCheckInterval).
func (s *Store) releaseBeforeClaim(ctx context.Context, tx pgx.Tx, p store.DeliveryClaimParams) (release, error) {
	var r release
	if !s.session.due(kindDelivery, timeNow()) {
		return r, nil
	}
	var err error
	r.dead, r.n, err = s.releaseDead(ctx, tx, store.UnixNanos(p.Now))
	return r, err
}

// claimIn claims inside tx; p is checked and p.Limit > 0.
func (s *Store) claimIn(ctx context.Context, tx pgx.Tx, p store.DeliveryClaimParams) ([]*store.ClaimedDelivery, error) {
	capN, orgCap := fairclaim.Caps(p)
	now := store.UnixNanos(p.Now)
	picked, err := s.pickClaims(ctx, tx, p.Worker, now, capN, orgCap, p.Limit)
	if err != nil || len(picked) == 0 {
		return nil, err
	}
	if capN != fairclaim.Unlimited || orgCap != fairclaim.Unlimited {
		if picked, err = holdCaps(ctx, tx, picked, p.Worker, now, capN, orgCap); err != nil || len(picked) == 0 {
			return nil, err
		}
	}
	seqs := make([]int64, len(picked))
	for i, c := range picked {
		seqs[i] = c.ID
	}
	rows, err := tx.Query(ctx, claimUpdateSQL, now, now+p.Lease.Nanoseconds(), p.Worker, seqs)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: %w", err)
	}
	type claimedRow struct {
		cd     *store.ClaimedDelivery
		ref    store.HookRef
		sealed []byte
	}
	crs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimedRow, error) {
		var c claimedRow
		var h hookRow
		d, err := scanDelivery(rowWith{r, []any{&c.ref.Org, &c.ref.Project, &c.ref.Stack, &c.ref.Environment, &c.ref.Name, &h.url, &h.active, &c.sealed}})
		if err != nil {
			return c, err
		}
		c.cd = &store.ClaimedDelivery{Delivery: *d, URL: h.url, HookActive: h.active}
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: %w", err)
	}
	// Open each hook's secret once; a delivery whose hook's secret does not open is failed
	// there and then, and the rest of the claim goes ahead.
	secrets := map[int64]*string{}
	out := make([]*store.ClaimedDelivery, 0, len(crs))
	for _, c := range crs {
		sec, ok := secrets[c.cd.HookID]
		if !ok {
			if plain, err := s.openSecret(c.ref, c.sealed); err == nil {
				sec = &plain
			}
			secrets[c.cd.HookID] = sec
		}
		if sec == nil && c.cd.HookActive {
			if err := s.failUndecryptable(ctx, tx, c.cd, c.ref, now); err != nil {
				return nil, err
			}
			continue
		}
		if sec != nil {
			c.cd.Secret = *sec
		}
		out = append(out, c.cd)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

type hookRow struct {
	url    string
	active bool
}

// rowWith scans a row whose first columns a scan function reads and whose last ones are more.
type rowWith struct {
	pgx.Row
	more []any
}

func (r rowWith) Scan(dest ...any) error { return r.Row.Scan(append(dest, r.more...)...) }

// holdCaps locks the organizations of picked under worker (under orgCap) and then their
// endpoints (under capN), transaction-level advisory locks each kind in key order, counts what
// runs there now, and drops the picks that would pass a cap.
func holdCaps(ctx context.Context, tx pgx.Tx, picked []fairclaim.Candidate, worker string, now, capN, orgCap int64) ([]fairclaim.Candidate, error) {
	var endpoints, orgs []string
	var endpointKeys, orgKeys []int64
	seenEndpoint, seenOrg := map[string]bool{}, map[string]bool{}
	for _, c := range picked {
		if capN != fairclaim.Unlimited && !seenEndpoint[c.Endpoint] {
			seenEndpoint[c.Endpoint] = true
			endpoints = append(endpoints, c.Endpoint)
			endpointKeys = append(endpointKeys, lockKey("endpoint", c.Endpoint))
		}
		if orgCap != fairclaim.Unlimited && !seenOrg[c.Org] {
			seenOrg[c.Org] = true
			orgs = append(orgs, c.Org)
			orgKeys = append(orgKeys, lockKey("org/"+worker, c.Org))
		}
	}
	slices.Sort(orgKeys)
	slices.Sort(endpointKeys)
	keys := append(slices.Compact(orgKeys), slices.Compact(endpointKeys)...)
	running, orgRunning := map[string]int64{}, map[string]int64{}
	batch := &pgx.Batch{}
	batch.Queue(claimLockSQL, keys)
	batch.Queue(claimRecountSQL, now, endpoints, worker, orgs).Query(func(rows pgx.Rows) error {
		var isOrg bool
		var name string
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&isOrg, &name, &n}, func() error {
			if isOrg {
				orgRunning[name] = n
			} else {
				running[name] = n
			}
			return nil
		})
		return err
	})
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: lock the picked endpoints and organizations and count what runs there: %w", err)
	}
	out := picked[:0]
	for _, c := range picked {
		if running[c.Endpoint] < capN && orgRunning[c.Org] < orgCap {
			running[c.Endpoint]++
			orgRunning[c.Org]++
			out = append(out, c)
		}
	}
	return out, nil
}

// pickClaims returns up to limit due deliveries to claim, fairly (fairclaim.Picker), no
// endpoint above capN running and no organization above orgCap running under worker, as far
// as this transaction can see.
func (s *Store) pickClaims(ctx context.Context, tx pgx.Tx, worker string, now, capN, orgCap int64, limit int) ([]fairclaim.Candidate, error) {
	fair := fairclaim.NewPicker(limit, capN, orgCap, &s.claimTurn)
	first, full := fairclaim.FirstLook(limit), fairclaim.Window(limit, min(capN, orgCap))
	truncated, err := pickLook(ctx, tx, fair, first, claimFirstLookSQL, now, worker, first, capN, orgCap)
	if err != nil || fair.Full() || !truncated || full <= first {
		return fair.Picked(), err
	}
	// Endpoints or organizations that reached their cap filled the first look: look further,
	// skipping them now.
	cappedEndpoints, cappedOrgs := fair.Capped()
	_, err = pickLook(ctx, tx, fair, full, claimLookSQL, now, cappedEndpoints, full, cappedOrgs)
	return fair.Picked(), err
}

// pickLook reads up to bound candidates of each class, skipping endpoints and organizations at
// their cap, and has fair pick from them until the claim is full; truncated says whether a
// class had bound rows (it may have more).
func pickLook(ctx context.Context, tx pgx.Tx, fair *fairclaim.Picker, bound int64, sql string, args ...any) (truncated bool, err error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return false, fmt.Errorf("postgres: claim deliveries: %w", err)
	}
	var first, again []fairclaim.Candidate
	var class int32
	var cc fairclaim.Candidate
	var mine bool
	var n int64
	var nFirst, nAgain int64
	if _, err := pgx.ForEachRow(rows, []any{&class, &cc.ID, &cc.Endpoint, &cc.Org, &cc.Next, &mine, &n}, func() error {
		switch class {
		case 0: // running, counted
			fair.Hold(cc.Endpoint, cc.Org, mine, n)
		case 1:
			nFirst++
			if !fair.Taken(cc.ID) {
				first = append(first, cc)
			}
		default:
			nAgain++
			if !fair.Taken(cc.ID) {
				again = append(again, cc)
			}
		}
		return nil
	}); err != nil {
		return false, fmt.Errorf("postgres: claim deliveries: %w", err)
	}
	// Retries and expired leases come up to bound each: bound or more may mean either was cut.
	truncated = nFirst >= bound || nAgain >= bound
	fair.Pick(first, again)
	return truncated, nil
}

// DeliveryGet returns one delivery, or ErrNotFound.
func (s *Store) DeliveryGet(ctx context.Context, id string) (*store.Delivery, error) {
	var d *store.Delivery
	err := s.retrying(ctx, func(ctx context.Context) error {
		var err error
		d, err = scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries d WHERE d.id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: get delivery %s: %w", id, err))
	}
	return d, nil
}

// DeliveryListByEvent returns the deliveries of one event in the order they were stored.
func (s *Store) DeliveryListByEvent(ctx context.Context, eventID string) ([]*store.Delivery, error) {
	var out []*store.Delivery
	err := s.retrying(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries d WHERE d.event_id = $1 ORDER BY d.seq`, eventID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Delivery, error) { return scanDelivery(r) })
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: list deliveries of event %s: %w", eventID, err))
	}
	return out, nil
}

// doneFoldAt is how many rows delivery_done_counts may gather before DeliveryStats folds them.
const doneFoldAt = 64

// DeliveryStats describes the queue at now: pending and running counted through the queue's
// partial indexes (their size follows the queue, not the history), the due times from their
// first rows, and the done counter summed.
func (s *Store) DeliveryStats(ctx context.Context, now time.Time) (store.QueueStats, error) {
	var st store.QueueStats
	var nextDue *int64
	var doneRows int
	err := s.retrying(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM deliveries WHERE state = 'pending' AND attempts = 0)
				+ (SELECT count(*) FROM deliveries WHERE state = 'pending' AND attempts > 0),
			(SELECT count(*) FROM deliveries WHERE state = 'running'),
			LEAST((SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND attempts = 0),
				(SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND attempts > 0)),
			(SELECT count(*) FROM hooks WHERE NOT active AND disabled_reason <> ''),
			(SELECT COALESCE(sum(n), 0) FROM delivery_done_counts),
			(SELECT count(*) FROM delivery_done_counts)`).
			Scan(&st.Pending, &st.Running, &nextDue, &st.HooksDisabled, &st.DeliveriesDone, &doneRows)
	})
	if err != nil {
		return st, s.fail(fmt.Errorf("postgres: queue stats: %w", err))
	}
	if nextDue != nil {
		st.NextDue = store.FromUnixNanos(*nextDue)
		if !st.NextDue.After(now) {
			st.OldestDue = st.NextDue
		}
	}
	if doneRows > doneFoldAt {
		// Fold the counter's rows into one; rows added meanwhile are left for the next fold.
		_, err := s.pool.Exec(ctx, `WITH gone AS (DELETE FROM delivery_done_counts RETURNING n)
			INSERT INTO delivery_done_counts (n) SELECT sum(n) FROM gone HAVING count(*) > 0`)
		if err != nil {
			s.logger.Warn("folding the delivery counter failed; it is tried again on the next stats", "error", s.fail(err).Error())
		}
	}
	return st, nil
}
