package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/completion"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/fairclaim"
)

// DeliveryComplete finishes a claimed attempt; see store.DeliveryCompleteParams.
func (s *Store) DeliveryComplete(ctx context.Context, p store.DeliveryCompleteParams) error {
	return s.DeliveryCompleteMany(ctx, []store.DeliveryCompleteParams{p})[0]
}

// DeliveryCompleteMany finishes many claimed attempts in one transaction; see store.Store.
func (s *Store) DeliveryCompleteMany(ctx context.Context, ps []store.DeliveryCompleteParams) []error {
	errs, items, todo := completion.Prepare("postgres", ps)
	if todo == 0 {
		return errs
	}
	err := s.withLoopTx(ctx, func(tx pgx.Tx) error {
		return writeCompletions(ctx, tx, items, errs)
	})
	if err != nil {
		completion.Fail(items, errs, s.fail(err))
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
	errs, items, todo := completion.Prepare("postgres", p.Complete)
	res.CompleteErrs = errs
	if todo == 0 && !claim {
		return res, nil
	}
	if claim {
		if err := s.session.acquire(ctx, kindDelivery, p.Claim.Worker); err != nil {
			err = s.fail(err)
			completion.Fail(items, errs, err)
			return res, err
		}
	}
	var out []*store.ClaimedDelivery
	var rel release
	err := s.withLoopTx(ctx, func(tx pgx.Tx) error {
		out, rel = nil, release{}
		if todo > 0 {
			if err := writeCompletions(ctx, tx, items, errs); err != nil {
				return err
			}
		}
		if !claim {
			return nil
		}
		var err error
		if rel, err = s.releaseBeforeClaim(ctx, tx, p.Claim); err != nil {
			return err
		}
		out, err = s.claimIn(ctx, tx, p.Claim)
		return err
	})
	if err != nil {
		err = s.fail(err)
		completion.Fail(items, errs, err)
		return res, err
	}
	s.logRelease(rel.dead, rel.n)
	fairclaim.Sort(out)
	res.Claimed = out
	return res, nil
}

// batchable reports whether items can be written with one statement per table with the same
// result as one after another: no two name the same delivery and none disables its hook.
func batchable(items []completion.Item) bool {
	seen := make(map[string]bool, len(items))
	for i := range items {
		p := items[i].P
		if p == nil {
			continue
		}
		if p.DisableHookReason != "" || seen[p.ID] {
			return false
		}
		seen[p.ID] = true
	}
	return true
}

// writeCompletions writes the prepared items inside tx, setting each one's error (nil or
// ErrLeaseLost). It returns an error that must fail the transaction.
func writeCompletions(ctx context.Context, tx pgx.Tx, items []completion.Item, errs []error) error {
	if batchable(items) {
		var idx []int
		for i := range items {
			if items[i].P != nil {
				idx = append(idx, i)
			}
		}
		return writeCompletionBatch(ctx, tx, items, idx, errs)
	}
	for i := range items {
		if items[i].P == nil {
			continue
		}
		if err := writeCompletionBatch(ctx, tx, items, []int{i}, errs); err != nil {
			return err
		}
		if p := items[i].P; errs[i] == nil && p.DisableHookReason != "" {
			var hookID int64
			if err := tx.QueryRow(ctx, `SELECT hook_id FROM deliveries WHERE id = $1`, p.ID).Scan(&hookID); err != nil {
				return fmt.Errorf("postgres: complete delivery %s: %w", p.ID, err)
			}
			if err := disableHook(ctx, tx, hookID, p.DisableHookReason, p.ID, items[i].Now); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeCompletionBatch moves the deliveries of items[idx] on, each only while still held by
// its worker for its attempt, in one statement, and records the attempts of those it moved in
// another. An item not moved gets ErrLeaseLost.
func writeCompletionBatch(ctx context.Context, tx pgx.Tx, items []completion.Item, idx []int, errs []error) error {
	var ids, states, lastErrs, workers []string
	var nexts, nows []int64
	var attempts []int32
	for _, i := range idx {
		c := &items[i]
		ids = append(ids, c.P.ID)
		states = append(states, string(c.P.State))
		nexts = append(nexts, c.Next)
		lastErrs = append(lastErrs, c.LastErr)
		nows = append(nows, c.Now)
		attempts = append(attempts, int32(c.P.Attempt))
		workers = append(workers, c.P.Worker)
	}
	rows, err := tx.Query(ctx, `UPDATE deliveries d SET state = c.state,
			next_attempt_at = CASE WHEN c.Next <> 0 THEN c.Next ELSE d.next_attempt_at END,
			lease_until = 0, last_error = c.last_error, updated_at = c.Now
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::int[], $7::text[])
			AS c (id, state, next, last_error, now, attempt, worker)
		WHERE d.id = c.id AND d.state = 'running' AND d.attempts = c.attempt AND d.claimed_by = c.worker
		RETURNING d.id, d.hook_id`, ids, states, nexts, lastErrs, nows, attempts, workers)
	if err != nil {
		return fmt.Errorf("postgres: complete deliveries: %w", err)
	}
	moved := map[string]int64{}
	var id string
	var hookID int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &hookID}, func() error { moved[id] = hookID; return nil }); err != nil {
		return fmt.Errorf("postgres: complete deliveries: %w", err)
	}
	var recs []attemptRow
	for _, i := range idx {
		p := items[i].P
		hid, ok := moved[p.ID]
		if !ok {
			errs[i] = fmt.Errorf("delivery %s attempt %d by %s: %w", p.ID, p.Attempt, p.Worker, store.ErrLeaseLost)
			continue
		}
		errs[i] = nil
		rec := p.Record
		rec.DeliveryID, rec.HookID, rec.Number = p.ID, hid, p.Attempt
		recs = append(recs, attemptRow{a: &rec, reqH: items[i].ReqH, respH: items[i].RespH})
	}
	if len(recs) == 0 {
		return nil
	}
	return insertAttemptRows(ctx, tx, recs)
}
