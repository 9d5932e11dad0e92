package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/completion"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/fairclaim"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// DeliveryComplete finishes a claimed attempt; see store.DeliveryCompleteParams. A delivery
// that is gone (its hook was deleted) is reported as ErrLeaseLost too.
func (s *Store) DeliveryComplete(ctx context.Context, p store.DeliveryCompleteParams) error {
	return s.DeliveryCompleteMany(ctx, []store.DeliveryCompleteParams{p})[0]
}

// DeliveryCompleteMany finishes many claimed attempts in one transaction, in order; see
// store.Store. An item that fails validation or whose lease is lost gets its own error and
// writes nothing; a database error fails the transaction and is returned for every item.
func (s *Store) DeliveryCompleteMany(ctx context.Context, ps []store.DeliveryCompleteParams) []error {
	errs, items, todo := completion.Prepare("sqlite", ps)
	if todo == 0 {
		return errs
	}
	err := s.withWriteTx(ctx, func(tx txq) error {
		return s.writeCompletions(ctx, tx, items, errs)
	})
	if err != nil {
		completion.Fail(items, errs, err)
	}
	return errs
}

// DeliveryCycle records finished attempts and claims more in one transaction; see store.Store.
func (s *Store) DeliveryCycle(ctx context.Context, p store.DeliveryCycleParams) (store.DeliveryCycleResult, error) {
	var res store.DeliveryCycleResult
	claim := p.Claim.Limit > 0
	if claim {
		if err := checkClaim(p.Claim); err != nil {
			res.CompleteErrs = completion.Refused(len(p.Complete), err)
			return res, err
		}
	}
	errs, items, todo := completion.Prepare("sqlite", p.Complete)
	res.CompleteErrs = errs
	if todo == 0 && !claim {
		return res, nil
	}
	if claim {
		if err := s.holders.acquire(p.Claim.Worker); err != nil {
			completion.Fail(items, errs, err)
			return res, err
		}
	}
	var out []*store.ClaimedDelivery
	var rel claimRelease
	err := s.withWriteTx(ctx, func(tx txq) error {
		out = nil
		if todo > 0 {
			if err := s.writeCompletions(ctx, tx, items, errs); err != nil {
				return err
			}
		}
		if !claim {
			return nil
		}
		if err := s.releaseBeforeClaim(ctx, tx, store.UnixNanos(p.Claim.Now), &rel); err != nil {
			return err
		}
		var err error
		out, err = s.claimIn(ctx, tx, p.Claim)
		return err
	})
	s.finishRelease(rel.dead, rel.n, err)
	if err != nil {
		completion.Fail(items, errs, err)
		return res, err
	}
	fairclaim.Sort(out)
	res.Claimed = out
	return res, nil
}

// prepareCompletions checks and encodes each item; it returns the per-item errors so far, the
// writeCompletions writes the prepared items inside tx, in order, setting each one's error
// (nil or ErrLeaseLost). It returns an error that must fail the transaction.
func (s *Store) writeCompletions(ctx context.Context, tx txq, items []completion.Item, errs []error) error {
	for i := range items {
		if p := items[i].P; p != nil && p.State == store.DeliveryPending && items[i].Next <= items[i].Now {
			s.claimSkips.gen.Add(1) // due again at once: claims look behind capped ones again
			break
		}
	}
	bodies := bodyCache{tx: tx, payloads: &s.payloads}
	if batchable(items) {
		return writeCompletionsBatched(ctx, tx, items, errs, &bodies)
	}
	for i := range items {
		if items[i].P == nil {
			continue
		}
		errs[i] = nil
		err := writeCompletion(ctx, tx, &items[i], &bodies)
		if err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return err
		}
		errs[i] = err
	}
	return nil
}

// write moves the delivery on and records the attempt, or returns ErrLeaseLost having written
// nothing.
func writeCompletion(ctx context.Context, tx txq, c *completion.Item, bodies *bodyCache) error {
	p := c.P
	var hookID, bodyRef int64
	var filter, kind, eventID string
	var inline []byte
	err := tx.QueryRowContext(ctx, `UPDATE deliveries
		SET state = ?1, next_attempt_at = CASE WHEN ?2 != 0 THEN ?2 ELSE next_attempt_at END, lease_until = 0,
			last_error = ?3, updated_at = ?4
		WHERE id = ?5 AND state = 'running' AND +attempts = ?6 AND claimed_by = ?7
		RETURNING hook_id, filter, kind, event_id, body_ref, body`,
		string(p.State), c.Next, c.LastErr, c.Now, p.ID, p.Attempt, p.Worker).Scan(&hookID, &filter, &kind, &eventID, &bodyRef, &inline)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("delivery %s attempt %d by %s: %w", p.ID, p.Attempt, p.Worker, store.ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("sqlite: complete delivery %s: %w", p.ID, err)
	}
	rec := p.Record
	rec.DeliveryID, rec.HookID, rec.Number = p.ID, hookID, p.Attempt
	if rec.Filter == "" {
		rec.Filter = webhook.Filter(filter)
	}
	if rec.Kind == "" {
		rec.Kind = webhook.Kind(kind)
	}
	sameBody := false
	if len(rec.RequestBody) > 0 {
		body, err := bodies.get(ctx, eventID, bodyRef, inline)
		if err != nil {
			return err
		}
		sameBody = bytes.Equal(body, rec.RequestBody)
	}
	if _, err := insertAttemptEncoded(ctx, tx, &rec, c.ReqH, c.RespH, sameBody); err != nil {
		return err
	}
	if p.DisableHookReason != "" {
		return disableHook(ctx, tx, hookID, p.DisableHookReason, p.ID, c.Now)
	}
	return nil
}

// completeBatchRows is how many completions one UPDATE (and one attempts INSERT) carries.
const completeBatchRows = 32

// batchable reports whether items can be written with one statement per table instead of one
// per item, with the same result as writing them one after another: no two items name the
// same delivery (the second would find the first's change) and none disables its hook (that
// discards deliveries later items may name). Either is rare; such batches go one by one.
func batchable(items []completion.Item) bool {
	seen := make(map[string]struct{}, len(items))
	for i := range items {
		p := items[i].P
		if p == nil {
			continue
		}
		if p.DisableHookReason != "" {
			return false
		}
		if _, dup := seen[p.ID]; dup {
			return false
		}
		seen[p.ID] = struct{}{}
	}
	return true
}

// completeUpdateRow is one VALUES row of completeUpdateSQL: id, state, next attempt (0 keeps
// it), last error, now, attempt number, worker.
const completeUpdateRow = `(?, ?, ?, ?, ?, ?, ?)`

// attemptInsertRow is one VALUES row of attemptInsertSQL.
const attemptInsertRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const attemptInsertColumns = `(delivery_id, hook_id, number, filter, kind, started_at, duration_ns,
	request_url, request_headers, request_body, request_body_ref, response_code, response_headers, response_body, error)`

// The statements by row count, built once each (at most completeBatchRows of each).
var (
	completeSQLMu sync.Mutex
	completeSQLs  = map[int]string{}
	attemptSQLs   = map[int]string{}
	// claimUpdateSQLs are claim.go's claimUpdateListSQL by size.
	claimUpdateSQLs = map[int]string{}
)

// completeUpdateSQL moves rows deliveries on, each only while still held by the item's worker
// for the item's attempt, and returns what recording their attempts needs.
func completeUpdateSQL(rows int) string {
	return cachedSQL(completeSQLs, rows, func(b *strings.Builder) {
		b.WriteString(`UPDATE deliveries SET state = c.column2,
			next_attempt_at = CASE WHEN c.column3 != 0 THEN c.column3 ELSE deliveries.next_attempt_at END,
			lease_until = 0, last_error = c.column4, updated_at = c.column5
			FROM (VALUES `)
		writeRows(b, completeUpdateRow, rows)
		b.WriteString(`) AS c
			WHERE deliveries.id = c.column1 AND +deliveries.state = 'running' AND +deliveries.attempts = c.column6
			  AND deliveries.claimed_by = c.column7
			RETURNING id, hook_id, filter, kind, event_id, body_ref, body`)
	})
}

// attemptInsertSQL inserts rows attempts.
func attemptInsertSQL(rows int) string {
	return cachedSQL(attemptSQLs, rows, func(b *strings.Builder) {
		b.WriteString(`INSERT INTO attempts ` + attemptInsertColumns + ` VALUES `)
		writeRows(b, attemptInsertRow, rows)
	})
}

func cachedSQL(cache map[int]string, rows int, build func(*strings.Builder)) string {
	completeSQLMu.Lock()
	defer completeSQLMu.Unlock()
	if q, ok := cache[rows]; ok {
		return q
	}
	var b strings.Builder
	build(&b)
	q := b.String()
	cache[rows] = q
	return q
}

func writeRows(b *strings.Builder, row string, n int) {
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
}

// completed is what the UPDATE returned for one item.
type completed struct {
	hookID, bodyRef     int64
	filter, kind, event string
	inline              []byte
	recorded            bool
}

// writeCompletionsBatched writes batchable items with one UPDATE and one INSERT per
// completeBatchRows items. An item the UPDATE did not return was no longer held: ErrLeaseLost,
// and its attempt is not recorded.
func writeCompletionsBatched(ctx context.Context, tx txq, items []completion.Item, errs []error, bodies *bodyCache) error {
	idx := make([]int, 0, len(items))
	for i := range items {
		if items[i].P != nil {
			idx = append(idx, i)
		}
	}
	res := make([]completed, len(items))
	args := make([]any, 0, 15*min(len(idx), completeBatchRows))
	for start := 0; start < len(idx); start += completeBatchRows {
		chunk := idx[start:min(start+completeBatchRows, len(idx))]
		args = args[:0]
		byID := make(map[string]int, len(chunk))
		for _, i := range chunk {
			c := &items[i]
			p := c.P
			args = append(args, p.ID, string(p.State), c.Next, c.LastErr, c.Now, p.Attempt, p.Worker)
			byID[p.ID] = i
		}
		rows, err := tx.QueryContext(ctx, completeUpdateSQL(len(chunk)), args...)
		if err != nil {
			return fmt.Errorf("sqlite: complete deliveries: %w", err)
		}
		for rows.Next() {
			var id string
			var r completed
			if err := rows.Scan(&id, &r.hookID, &r.filter, &r.kind, &r.event, &r.bodyRef, &r.inline); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: complete deliveries: %w", err)
			}
			i, ok := byID[id]
			if !ok {
				rows.Close()
				return fmt.Errorf("sqlite: complete deliveries: the update returned delivery %s, which no item names", id)
			}
			r.recorded = true
			res[i] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: complete deliveries: %w", err)
		}
		for _, i := range chunk {
			if p := items[i].P; !res[i].recorded {
				errs[i] = fmt.Errorf("delivery %s attempt %d by %s: %w", p.ID, p.Attempt, p.Worker, store.ErrLeaseLost)
			} else {
				errs[i] = nil
			}
		}

		args = args[:0]
		n := 0
		for _, i := range chunk {
			r := &res[i]
			if !r.recorded {
				continue
			}
			p := items[i].P
			rec := &p.Record
			filter, kind := rec.Filter, rec.Kind
			if filter == "" {
				filter = webhook.Filter(r.filter)
			}
			if kind == "" {
				kind = webhook.Kind(r.kind)
			}
			reqBody, ref := rec.RequestBody, 0
			if len(rec.RequestBody) > 0 {
				body, err := bodies.get(ctx, r.event, r.bodyRef, r.inline)
				if err != nil {
					return err
				}
				if bytes.Equal(body, rec.RequestBody) {
					reqBody, ref = nil, 1
				}
			}
			args = append(args, p.ID, r.hookID, p.Attempt, string(filter), string(kind), store.UnixNanos(rec.StartedAt), rec.Duration.Nanoseconds(),
				rec.RequestURL, items[i].ReqH, reqBody, ref, rec.ResponseCode, items[i].RespH, rec.ResponseBody, rec.Error)
			n++
		}
		if n == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, attemptInsertSQL(n), args...); err != nil {
			return fmt.Errorf("sqlite: record attempts: %w", err)
		}
	}
	return nil
}
