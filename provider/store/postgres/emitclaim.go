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
// rows are written once, in the state the claim would leave them. The rules are the claim's
// (see deliveries.go), in the emit's transaction:
//
//   - directLookSQL tells whether the queue has due work (a due first attempt or retry, or an
//     expired lease: one probe of each partial index), and directHeldSQL counts what runs at
//     the emit's endpoints (any holder) and for its organization (this worker), in one round
//     trip; an emit that finds due work claims nothing, nor do the transaction's later ones,
//     and neither do those after one that left a delivery pending;
//   - the picks are fair (fairclaim), counting what runs;
//   - in a second round trip the worker's holder is registered as a claim registers it (its
//     session lock, then its row in holders, written by this transaction: see
//     session.lockInTx), the picked endpoints are locked (transaction-level advisory locks, in
//     key order, as a claim takes them) and counted again, trimming the picks to the cap across
//     every server, and the picks' hooks are read (a delivery whose active hook's secret does
//     not open is left pending: the claim loop fails it);
//   - the rows are inserted in one statement with the others, the claimed ones running.
//
// A transaction that already holds endpoint locks (an emit of deployment_queued events has
// several) takes more only with pg_try_advisory_xact_lock, never waiting: every wait for an
// endpoint lock is then of a transaction that holds none, so no two can wait for each other.
// An endpoint whose lock another transaction holds keeps its deliveries pending.
//
// The organization cap counts this worker's own running deliveries; the emits of one worker
// run concurrently (a claim loop claims for it one claim at a time), so an emit that claims
// for an organization under a cap holds a lock of the worker and organization, taken without
// waiting: while another emit holds it, the deliveries stay pending for the claim loop.

const (
	directLookSQL = `SELECT EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending' AND attempts = 0 AND next_attempt_at <= $1)
		OR EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending' AND attempts > 0 AND next_attempt_at <= $1)
		OR EXISTS (SELECT 1 FROM deliveries WHERE state = 'running' AND lease_until <= $1)`
	// directHeldSQL counts the running deliveries at the endpoints $3 (any holder) and of the
	// organization $4 under worker $2, as claimFirstLookSQL's held does.
	directHeldSQL = `SELECT endpoint, org, claimed_by = $2 AS mine, count(*) FROM deliveries
		WHERE state = 'running' AND lease_until > $1 AND (endpoint = ANY($3::text[]) OR (claimed_by = $2 AND org = $4))
		GROUP BY endpoint, org, claimed_by = $2`
	// directTryLockSQL takes the locks $1 it can without waiting and returns the others.
	directTryLockSQL = `SELECT k FROM unnest($1::bigint[]) AS k WHERE NOT pg_try_advisory_xact_lock(k)`
	// directOrgLockSQL takes the lock of an organization's direct claims under one worker
	// without waiting, and directOrgCountSQL counts what runs for it under the worker.
	directOrgLockSQL  = `SELECT pg_try_advisory_xact_lock($1)`
	directOrgCountSQL = `SELECT count(*) FROM deliveries WHERE state = 'running' AND lease_until > $1 AND claimed_by = $2 AND org = $3`
	directHooksSQL    = `SELECT id, org, project, stack, environment, name, payload_url, active, secret_box FROM hooks
		WHERE id = ANY($1::bigint[])`
)

// directClaim says which of one insert's deliveries go in claimed, and by whom.
type directClaim struct {
	mine   []bool
	lease  int64
	worker string
}

// directHook is what a direct claim returns of a delivery's hook.
type directHook struct {
	url, secret string
	active      bool
}

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
	picked, hooks, err := t.pickDirect(ctx, ev, now, ds, p)
	if err != nil {
		return nil, err
	}
	if len(picked) == 0 {
		return nil, t.insertDeliveries(ctx, eventID, ev, now, ds, nil)
	}
	claim := &directClaim{mine: make([]bool, len(ds)), lease: store.UnixNanos(p.Now) + p.Lease.Nanoseconds(), worker: p.Worker}
	for _, c := range picked {
		claim.mine[c.ID-1] = true
	}
	if err := t.insertDeliveries(ctx, eventID, ev, now, ds, claim); err != nil {
		return nil, err
	}
	out := make([]*store.ClaimedDelivery, 0, len(picked))
	for i := range ds {
		if !claim.mine[i] {
			continue
		}
		cd := fairclaim.Claimed(&ds[i], eventID, webhook.Filter(ev.filter), webhook.Kind(ev.kind), now, p)
		h := hooks[cd.HookID]
		cd.URL, cd.Secret, cd.HookActive = h.url, h.secret, h.active
		out = append(out, cd)
	}
	return out, nil
}

// pickDirect returns which of ds to store claimed, and their hooks; none while the queue has
// due work or the caps are reached.
func (t *emitTx) pickDirect(ctx context.Context, ev insertedEvent, now time.Time, ds []store.DeliveryInsertParams, p store.DeliveryClaimParams) ([]fairclaim.Candidate, map[int64]directHook, error) {
	if t.pending || t.due {
		return nil, nil, nil // due work waits: it goes first
	}
	claimNow := store.UnixNanos(p.Now)
	cands := fairclaim.EmitCandidates(ds, ev.org, store.UnixNanos(now), claimNow)
	if len(cands) == 0 {
		return nil, nil, nil
	}
	var endpoints []string
	seen := map[string]bool{}
	for _, c := range cands {
		if !seen[c.Endpoint] {
			seen[c.Endpoint] = true
			endpoints = append(endpoints, c.Endpoint)
		}
	}
	// The look: due work, and what runs.
	fair := fairclaim.NewDirectPicker(p)
	batch := &pgx.Batch{}
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
		return nil, nil, fmt.Errorf("postgres: claim deliveries: look for due work: %w", err)
	}
	if due {
		t.due = true
		return nil, nil, nil
	}
	fair.Pick(cands, nil)
	picked := fair.Picked()
	if len(picked) == 0 {
		return nil, nil, nil
	}
	// The holder, the endpoints' locks and counts, and the hooks.
	holder, ok, err := t.s.session.lockInTx(ctx, kindDelivery, p.Worker)
	if err != nil || !ok {
		// The emit goes ahead without claiming; the claim loop's own acquire reports a
		// holder that cannot lock.
		return nil, nil, nil
	}
	capN, orgCap := fairclaim.Caps(p)
	batch = &pgx.Batch{}
	if holder != nil {
		batch.Queue(registerSQL, holder.kind, holder.name, holder.key, time.Now().UnixNano())
		t.holders = append(t.holders, *holder)
	}
	keyOf := map[string]int64{}
	failed := map[int64]bool{}
	running := map[string]int64{}
	if capN != fairclaim.Unlimited {
		var keys []int64
		endpoints = endpoints[:0]
		for _, c := range picked {
			if _, ok := keyOf[c.Endpoint]; !ok {
				keyOf[c.Endpoint] = lockKey("endpoint", c.Endpoint)
				keys = append(keys, keyOf[c.Endpoint])
				endpoints = append(endpoints, c.Endpoint)
			}
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		if !t.locked {
			batch.Queue(claimLockSQL, keys)
		} else {
			batch.Queue(directTryLockSQL, keys).Query(func(rows pgx.Rows) error {
				var k int64
				_, err := pgx.ForEachRow(rows, []any{&k}, func() error { failed[k] = true; return nil })
				return err
			})
		}
		t.locked = true
		batch.Queue(claimRecountSQL, claimNow, endpoints).Query(func(rows pgx.Rows) error {
			var ep string
			var n int64
			_, err := pgx.ForEachRow(rows, []any{&ep, &n}, func() error { running[ep] = n; return nil })
			return err
		})
	}
	orgLocked, orgRunning := true, int64(0)
	if orgCap != fairclaim.Unlimited {
		batch.Queue(directOrgLockSQL, lockKey("org/"+p.Worker, ev.org)).QueryRow(func(r pgx.Row) error { return r.Scan(&orgLocked) })
		batch.Queue(directOrgCountSQL, claimNow, p.Worker, ev.org).QueryRow(func(r pgx.Row) error { return r.Scan(&orgRunning) })
	}
	hookIDs := make([]int64, 0, len(picked))
	for _, c := range picked {
		if id := ds[c.ID-1].HookID; !slices.Contains(hookIDs, id) {
			hookIDs = append(hookIDs, id)
		}
	}
	hooks := make(map[int64]directHook, len(hookIDs))
	batch.Queue(directHooksSQL, hookIDs).Query(func(rows pgx.Rows) error {
		var id int64
		var ref store.HookRef
		var h directHook
		var sealed []byte
		_, err := pgx.ForEachRow(rows, []any{&id, &ref.Org, &ref.Project, &ref.Stack, &ref.Environment, &ref.Name, &h.url, &h.active, &sealed}, func() error {
			plain, err := t.s.openSecret(ref, sealed)
			if err != nil {
				if h.active {
					return nil // left out: the claim loop fails its deliveries
				}
				plain = ""
			}
			h.secret = plain
			hooks[id] = h
			return nil
		})
		return err
	})
	if err := t.tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, nil, fmt.Errorf("postgres: claim deliveries: lock and count the endpoints: %w", err)
	}
	if !orgLocked {
		return nil, nil, nil
	}
	out := picked[:0]
	for _, c := range picked {
		if orgRunning >= orgCap {
			break
		}
		if _, ok := hooks[ds[c.ID-1].HookID]; !ok {
			continue
		}
		if capN != fairclaim.Unlimited {
			if failed[keyOf[c.Endpoint]] || running[c.Endpoint] >= capN {
				continue
			}
			running[c.Endpoint]++
		}
		orgRunning++
		out = append(out, c)
	}
	return out, hooks, nil
}
