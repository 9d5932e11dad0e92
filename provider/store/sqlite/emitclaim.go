package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/fairclaim"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The local fast path (store.EmitClaimer). An emit whose process has idle workers stores
// its deliveries already claimed by them, so the claim loop neither searches the queue for
// them nor rewrites their rows to claim them: a claim costs the claim loop a candidate read,
// an UPDATE of each row (moving it between two of the queue's indexes) and reading its body
// back, where here the row is written once, in the state the claim would leave it. The rules
// are the claim's: caps counted over every holder's running deliveries (fairclaim), and the
// queue's due work first, so only an emit that finds nothing due (no due pending delivery and
// no expired lease, which one index probe each tells) claims.

// claimedInsertRow is one row of claimedInsertSQL: the columns of deliveryInsertRow up to
// org, then next attempt, lease, holder and the two times.
const claimedInsertRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', 1, ?, ?, ?, '', ?, ?)`

var claimedInsertSQLs = map[int]string{}

// claimedInsertSQL inserts rows deliveries claimed.
func claimedInsertSQL(rows int) string {
	return cachedSQL(claimedInsertSQLs, rows, func(b *strings.Builder) {
		b.WriteString(`INSERT INTO deliveries ` + deliveryInsertColumns + ` VALUES `)
		writeRows(b, claimedInsertRow, rows)
	})
}

// directDueSQL tells whether the queue has due work: a due first attempt or retry, or an
// expired lease. Each is the first entry of its partial index.
const directDueSQL = `SELECT EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_first
		WHERE state = 'pending' AND attempts = 0 AND next_attempt_at <= ?1)
	OR EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_retry
		WHERE state = 'pending' AND attempts > 0 AND next_attempt_at <= ?1)
	OR EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_running
		WHERE state = 'running' AND lease_until <= ?1)`

// heldCounts are the running deliveries a transaction's direct claims count against the caps
// (claimHeldSQL's rows), with the claims it made since.
type heldCounts struct {
	worker string // whose claims count as "mine"
	rows   []heldRow
}

type heldRow struct {
	endpoint, org string
	mine          bool
	n             int64
}

// directClaim says which of one insert's deliveries go in claimed, and by whom.
type directClaim struct {
	mine   []bool
	lease  int64
	worker string
}

// DeliveryInsertClaimed inserts ds with up to p.Limit of them claimed by p.Worker; see
// store.EmitClaimer.
func (t *emitTx) DeliveryInsertClaimed(ctx context.Context, eventID string, now time.Time, ds []store.DeliveryInsertParams, p store.DeliveryClaimParams) ([]*store.ClaimedDelivery, error) {
	ctx = t.stmtCtx(ctx)
	if p.Limit <= 0 || len(ds) == 0 {
		return nil, t.insertDeliveries(ctx, eventID, now, ds, nil)
	}
	if err := checkClaim(p); err != nil {
		return nil, err
	}
	claimNow := store.UnixNanos(p.Now)
	held, err := t.directHeld(ctx, p.Worker, claimNow)
	if err != nil {
		return nil, err
	}
	if held == nil { // due work waits: it goes first
		return nil, t.insertDeliveries(ctx, eventID, now, ds, nil)
	}
	ev, err := t.eventOf(ctx, eventID)
	if err != nil {
		return nil, err
	}
	fair := fairclaim.NewDirectPicker(p)
	for _, h := range held.rows {
		fair.Hold(h.endpoint, h.org, h.mine, h.n)
	}
	cands := fairclaim.EmitCandidates(ds, ev.org, store.UnixNanos(now), claimNow)
	fair.Pick(cands, nil)
	picked := fair.Picked()
	if len(picked) == 0 {
		return nil, t.insertDeliveries(ctx, eventID, now, ds, nil)
	}
	if err := t.s.holders.acquire(p.Worker); err != nil {
		return nil, err
	}
	claim := &directClaim{mine: make([]bool, len(ds)), lease: claimNow + p.Lease.Nanoseconds(), worker: p.Worker}
	for _, c := range picked {
		claim.mine[c.ID-1] = true
	}
	if err := t.insertDeliveries(ctx, eventID, now, ds, claim); err != nil {
		return nil, err
	}
	out := make([]*store.ClaimedDelivery, 0, len(picked))
	for i := range ds {
		if !claim.mine[i] {
			continue
		}
		d := &ds[i]
		out = append(out, fairclaim.Claimed(d, eventID, webhook.Filter(ev.filter), webhook.Kind(ev.kind), now, p))
		held.rows = append(held.rows, heldRow{endpoint: d.Endpoint, org: ev.org, mine: true, n: 1})
	}
	if rows := t.shared().deferred; rows != nil {
		// fillHooks fails a delivery whose hook's secret does not open: its row must be there.
		if err := rows.flush(ctx, t.tx); err != nil {
			return nil, err
		}
	}
	return t.s.fillHooks(ctx, t.tx, out, claimNow)
}

// directHeld returns the running deliveries the transaction's direct claims count, read on its
// first direct claim, or nil when due work is waiting in the queue (then none of the
// transaction's emits claims).
func (t *emitTx) directHeld(ctx context.Context, worker string, now int64) (*heldCounts, error) {
	st := t.shared()
	if st.backlog {
		return nil, nil
	}
	if st.held != nil {
		if st.held.worker != worker {
			return nil, nil // two workers in one batch: the claim loop serves the second
		}
		return st.held, nil
	}
	var due bool
	if err := t.tx.QueryRowContext(ctx, directDueSQL, now).Scan(&due); err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: look for due work: %w", err)
	}
	if due {
		st.backlog = true
		return nil, nil
	}
	held := &heldCounts{worker: worker}
	err := readHeld(ctx, t.tx, now, worker, func(endpoint, org string, mine bool, n int64) {
		held.rows = append(held.rows, heldRow{endpoint: endpoint, org: org, mine: mine, n: n})
	})
	if err != nil {
		return nil, err
	}
	st.held = held
	return held, nil
}
