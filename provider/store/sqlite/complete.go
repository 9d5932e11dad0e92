package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// completeBatchRows is how many completions one UPDATE (and one attempts INSERT) carries.
const completeBatchRows = 32

// batchable reports whether items can be written with one statement per table instead of one
// per item, with the same result as writing them one after another: no two items name the
// same delivery (the second would find the first's change) and none disables its hook (that
// discards deliveries later items may name). Either is rare; such batches go one by one.
func batchable(items []completion) bool {
	seen := make(map[string]struct{}, len(items))
	for i := range items {
		p := items[i].p
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
func writeCompletionsBatched(ctx context.Context, tx txq, items []completion, errs []error, bodies *bodyCache) error {
	idx := make([]int, 0, len(items))
	for i := range items {
		if items[i].p != nil {
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
			p := c.p
			args = append(args, p.ID, string(p.State), c.next, c.lastErr, c.now, p.Attempt, p.Worker)
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
			if p := items[i].p; !res[i].recorded {
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
			p := items[i].p
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
			args = append(args, p.ID, r.hookID, p.Attempt, string(filter), string(kind), toNanos(rec.StartedAt), rec.Duration.Nanoseconds(),
				rec.RequestURL, items[i].reqH, reqBody, ref, rec.ResponseCode, items[i].respH, rec.ResponseBody, rec.Error)
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
