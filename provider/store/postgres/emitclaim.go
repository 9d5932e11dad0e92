package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/fairclaim"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The local fast path (store.EmitClaimer). An emit whose process has idle workers stores its
// deliveries already claimed by them, so the claim loop neither searches the queue for them
// nor rewrites their rows: a claim costs a transaction of its own (the candidates read, the
// endpoints locked and counted, an UPDATE of each row and its body read back), where here the
// rows are written once, in the state the claim would leave them, for two more round trips
// of the emit's transaction. The rules are the claim's (see deliveries.go):
//
//   - the first round trip tells whether the queue has due work (directLookSQL: a due first
//     attempt or retry, or an expired lease, one probe of each partial index) and counts what
//     runs at the emit's endpoints (any holder) and for its organization (this worker)
//     (directHeldSQL). An emit that finds due work claims nothing, nor do the transaction's
//     later ones, and neither do those after one that left a delivery pending. The same round
//     trip registers the worker's holder as a claim registers it (its session lock, then its
//     row in holders, written by this transaction: session.lockInTx) and, under PerOrgLimit,
//     takes the worker's lock for the organization, without waiting (directOrgLockSQL): the
//     emits of one worker run concurrently with each other and with its claim, which takes the
//     same lock, waiting, for each organization it picks (claimLockSQL in deliveries.go), so
//     they all count the organization's deliveries under the worker one after another, each
//     seeing what the others committed; while another emit or the claim holds it, the
//     deliveries stay pending for the claim loop;
//   - the picks are fair (fairclaim), counting what runs;
//   - the second round trip locks the picks' endpoints (transaction-level advisory locks, in
//     key order, as a claim takes them) and inserts the deliveries in one statement
//     (claimedInsertSQL) that counts again what runs at those endpoints and for the
//     organization, now that every claim of them that came earlier has committed, stores the
//     picks that still fit running and the others pending, and returns the claimed ones with
//     their hooks. A claimed delivery whose active hook's secret does not open is failed there
//     and then, as a claim fails it.
//
// A transaction holding endpoint locks (an emit of deployment_queued events has several
// emits) takes more in its later emits only with pg_try_advisory_xact_lock, in a round trip of
// their own, never waiting; an endpoint whose lock another transaction holds keeps its
// deliveries pending. Locks are then only ever waited for in one order: the organizations'
// (each under its worker), in key order, then the endpoints', in key order. A claim waits for
// its organizations' locks before any endpoint's; an emit never waits for an organization's
// (it tries it; one its transaction holds it takes again at once) and waits for endpoints'
// only in its transaction's first direct claim, holding no endpoint lock yet. Every
// transaction waits only for a lock later in that order than those it holds, so no two wait
// for each other. Row locks add no wait to it: what a claim's transaction has written before
// it waits (its completions, the release of dead holders' claims) are rows no emit writes.

const (
	directLookSQL = `SELECT EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending' AND attempts = 0 AND next_attempt_at <= $1)
		OR EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending' AND attempts > 0 AND next_attempt_at <= $1)
		OR EXISTS (SELECT 1 FROM deliveries WHERE state = 'running' AND lease_until <= $1)`
	// directHeldSQL counts the running deliveries at the endpoints $3 (any holder) and of the
	// organization $4 under worker $2, as claimFirstLookSQL's held does.
	directHeldSQL = `SELECT endpoint, org, claimed_by = $2 AS mine, count(*) FROM deliveries
		WHERE state = 'running' AND lease_until > $1 AND (endpoint = ANY($3::text[]) OR (claimed_by = $2 AND org = $4))
		GROUP BY endpoint, org, claimed_by = $2`
	// directOrgLockSQL takes a worker's lock for an organization (lockKey("org/"+worker, org),
	// which its claim waits for: holdCaps), without waiting.
	directOrgLockSQL = `SELECT pg_try_advisory_xact_lock($1)`
	// directTryLockSQL takes the locks $1 it can without waiting and returns the others.
	directTryLockSQL = `SELECT k FROM unnest($1::bigint[]) AS k WHERE NOT pg_try_advisory_xact_lock(k)`
	// claimedInsertSQL is deliveryInsertSQL with picks $11 (the pick's turn, 0 for none): it
	// stores running, attempt 1, leased until $12 by worker $13 the picks that still fit, in
	// turn, within $15 running per endpoint and $16 of organization $17 under the worker (what
	// runs counted at $14), and returns them with their hooks.
	claimedInsertSQL = `WITH d AS (
			SELECT * FROM unnest($3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::int[])
				WITH ORDINALITY AS d (id, hook_id, format, body, endpoint, state, next, body_id, pick, ord)),
		running AS (
			SELECT endpoint, count(*) AS n FROM deliveries
			WHERE state = 'running' AND lease_until > $14 AND endpoint IN (SELECT endpoint FROM d WHERE pick > 0)
			GROUP BY endpoint),
		fits AS (
			SELECT ord, pick FROM (
				SELECT d.ord, d.pick, COALESCE(r.n, 0) + row_number() OVER (PARTITION BY d.endpoint ORDER BY d.pick) AS k
				FROM d LEFT JOIN running r ON r.endpoint = d.endpoint
				WHERE d.pick > 0) x
			WHERE k <= $15),
		claimed AS (
			SELECT ord FROM (SELECT ord, row_number() OVER (ORDER BY pick) AS k FROM fits) x
			WHERE k + (SELECT count(*) FROM deliveries WHERE state = 'running' AND lease_until > $14 AND claimed_by = $13 AND org = $17) <= $16),
		ins AS (
			INSERT INTO deliveries (id, event_id, hook_id, org, filter, kind, format, body, body_id, endpoint, state,
				attempts, next_attempt_at, lease_until, claimed_by, created_at, updated_at)
			SELECT d.id, e.id, d.hook_id, e.org, e.filter, e.kind, d.format, d.body, NULLIF(d.body_id, 0), d.endpoint,
				CASE WHEN c.ord IS NULL THEN d.state ELSE 'running' END, CASE WHEN c.ord IS NULL THEN 0 ELSE 1 END, d.next,
				CASE WHEN c.ord IS NULL THEN 0 ELSE $12::bigint END, CASE WHEN c.ord IS NULL THEN '' ELSE $13::text END, $2, $2
			FROM events e, d LEFT JOIN claimed c ON c.ord = d.ord
			WHERE e.id = $1
			ORDER BY d.ord
			RETURNING id, hook_id, claimed_by)
		SELECT ins.id, h.org, h.project, h.stack, h.environment, h.name, h.payload_url, h.active, h.secret_box
		FROM ins JOIN hooks h ON h.id = ins.hook_id
		WHERE ins.claimed_by <> ''`
)

// DeliveryInsertClaimed inserts ds with up to p.Limit of them claimed by p.Worker; see
// store.EmitClaimer.
func (t *emitTx) DeliveryInsertClaimed(ctx context.Context, eventID string, now time.Time, ds []store.DeliveryInsertParams, p store.DeliveryClaimParams) ([]*store.ClaimedDelivery, error) {
	if p.Limit <= 0 || len(ds) == 0 {
		return nil, t.DeliveryInsertMany(ctx, eventID, now, ds)
	}
	if err := checkClaim(p); err != nil {
		return nil, err
	}
	ev, err := t.eventOf(ctx, eventID)
	if err != nil {
		return nil, err
	}
	picked, err := t.pickDirect(ctx, ev, now, ds, p)
	if err != nil {
		return nil, err
	}
	if len(picked) == 0 {
		return nil, t.insertDeliveries(ctx, eventID, ev, now, ds)
	}
	return t.insertClaimed(ctx, eventID, ev, now, ds, p, picked)
}

// pickDirect returns which of ds to store claimed, as far as the transaction sees; none while
// the queue has due work or the caps are reached.
func (t *emitTx) pickDirect(ctx context.Context, ev insertedEvent, now time.Time, ds []store.DeliveryInsertParams, p store.DeliveryClaimParams) ([]fairclaim.Candidate, error) {
	if t.pending || t.due {
		return nil, nil // due work waits: it goes first
	}
	claimNow := store.UnixNanos(p.Now)
	capN, orgCap := fairclaim.Caps(p)
	cands := fairclaim.EmitCandidates(ds, ev.org, store.UnixNanos(now), claimNow)
	if len(cands) == 0 {
		return nil, nil
	}
	holder, ok, err := t.s.session.lockInTx(ctx, kindDelivery, p.Worker)
	if err != nil || !ok {
		// The emit goes ahead without claiming; the claim loop's own acquire reports a
		// holder that cannot lock.
		return nil, nil
	}
	var endpoints []string
	seen := map[string]bool{}
	for _, c := range cands {
		if !seen[c.Endpoint] {
			seen[c.Endpoint] = true
			endpoints = append(endpoints, c.Endpoint)
		}
	}
	fair := fairclaim.NewDirectPicker(p)
	batch := &pgx.Batch{}
	if holder != nil {
		batch.Queue(registerSQL, holder.kind, holder.name, holder.key, time.Now().UnixNano())
		t.holders = append(t.holders, *holder)
	}
	orgLocked := true
	if orgCap != fairclaim.Unlimited {
		batch.Queue(directOrgLockSQL, lockKey("org/"+p.Worker, ev.org)).QueryRow(func(r pgx.Row) error { return r.Scan(&orgLocked) })
	}
	var due bool
	batch.Queue(directLookSQL, claimNow).QueryRow(func(r pgx.Row) error { return r.Scan(&due) })
	batch.Queue(directHeldSQL, claimNow, p.Worker, endpoints, ev.org).Query(func(rows pgx.Rows) error {
		var endpoint, org string
		var mine bool
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&endpoint, &org, &mine, &n}, func() error {
			fair.Hold(endpoint, org, mine, n)
			return nil
		})
		return err
	})
	if err := t.tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: look for due work: %w", err)
	}
	if due {
		t.due = true
		return nil, nil
	}
	if !orgLocked {
		return nil, nil
	}
	fair.Pick(cands, nil)
	picked := fair.Picked()
	if t.locked == nil || capN == fairclaim.Unlimited {
		return picked, nil
	}
	// A later emit of the transaction, which holds endpoint locks: it takes those it lacks
	// only if they are free.
	var keys []int64
	for _, c := range picked {
		if k := lockKey("endpoint", c.Endpoint); !t.locked[k] && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return picked, nil
	}
	rows, err := t.tx.Query(ctx, directTryLockSQL, keys)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: lock endpoints: %w", err)
	}
	failed, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: lock endpoints: %w", err)
	}
	for _, k := range keys {
		t.locked[k] = !slices.Contains(failed, k)
	}
	return slices.DeleteFunc(picked, func(c fairclaim.Candidate) bool { return !t.locked[lockKey("endpoint", c.Endpoint)] }), nil
}

// insertClaimed locks the endpoints of picked (under a cap) and inserts ds, the picks that
// still fit claimed (claimedInsertSQL); it returns the claimed ones.
func (t *emitTx) insertClaimed(ctx context.Context, eventID string, ev insertedEvent, now time.Time, ds []store.DeliveryInsertParams, p store.DeliveryClaimParams, picked []fairclaim.Candidate) ([]*store.ClaimedDelivery, error) {
	cols, err := t.deliveryCols(ctx, eventID, ev, now, ds)
	if err != nil {
		return nil, err
	}
	picks := make([]int32, len(ds))
	for turn, c := range picked {
		picks[c.ID-1] = int32(turn) + 1
	}
	claimNow := store.UnixNanos(p.Now)
	capN, orgCap := fairclaim.Caps(p)
	batch := &pgx.Batch{}
	if capN != fairclaim.Unlimited && t.locked == nil {
		t.locked = map[int64]bool{}
		var keys []int64
		for _, c := range picked {
			if k := lockKey("endpoint", c.Endpoint); !t.locked[k] {
				t.locked[k] = true
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		batch.Queue(claimLockSQL, keys)
	}
	byID := make(map[string]int, len(ds))
	for i := range ds {
		byID[ds[i].ID] = i
	}
	type claimedRow struct {
		i      int
		ref    store.HookRef
		h      hookRow
		sealed []byte
	}
	var crs []claimedRow
	args := append(cols.args(eventID), picks, claimNow+p.Lease.Nanoseconds(), p.Worker, claimNow, capN, orgCap, ev.org)
	batch.Queue(claimedInsertSQL, args...).Query(func(rows pgx.Rows) error {
		var id string
		var c claimedRow
		_, err := pgx.ForEachRow(rows, []any{&id, &c.ref.Org, &c.ref.Project, &c.ref.Stack, &c.ref.Environment, &c.ref.Name,
			&c.h.url, &c.h.active, &c.sealed}, func() error {
			c.i = byID[id]
			crs = append(crs, c)
			return nil
		})
		return err
	})
	if err := t.tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, insertDeliveriesErr(eventID, err)
	}
	pending := 0
	for _, state := range cols.states {
		if state == string(store.DeliveryPending) {
			pending++
		}
	}
	if pending > len(crs) { // some stay pending
		t.pending = true
	}
	out := make([]*store.ClaimedDelivery, 0, len(crs))
	secrets := map[int64]*string{}
	slices.SortFunc(crs, func(a, b claimedRow) int { return a.i - b.i })
	for _, c := range crs {
		cd := fairclaim.Claimed(&ds[c.i], eventID, webhook.Filter(ev.filter), webhook.Kind(ev.kind), now, p)
		cd.URL, cd.HookActive = c.h.url, c.h.active
		// Open each hook's secret once; a delivery whose active hook's secret does not open is
		// failed there and then, as a claim fails it.
		sec, ok := secrets[cd.HookID]
		if !ok {
			if plain, err := t.s.openSecret(c.ref, c.sealed); err == nil {
				sec = &plain
			}
			secrets[cd.HookID] = sec
		}
		if sec == nil && cd.HookActive {
			if err := t.s.failUndecryptable(ctx, t.tx, cd, c.ref, claimNow); err != nil {
				return nil, err
			}
			continue
		}
		if sec != nil {
			cd.Secret = *sec
		}
		out = append(out, cd)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
