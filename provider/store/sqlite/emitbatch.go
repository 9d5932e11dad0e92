package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Emits are batched. An acknowledged event costs a commit and an fsync of the WAL; the fsync
// is shared already (group commit, durable.go), but each emit still took the write lock, ran
// its own transaction and wrote its own WAL frames, one after the other. Concurrent EventEmit
// calls are therefore combined: the first caller to find no batch being written becomes the
// leader, takes every emit queued so far (at most emitBatchMax) and runs them in one write
// transaction, each inside its own savepoint, so one that fails is rolled back alone and gets
// its own error. The store_counts of the deliveries the batch kept are written once, at its end.
// Once that transaction has committed, the leader hands the next batch (the
// emits that queued meanwhile) to a new leader and syncs the WAL while that one writes; each
// caller returns once its batch is durable, exactly as before: nothing is answered before its
// commit is on disk, and an emit that failed left nothing behind.
//
// The statements of a batch run under the leader's context, not each caller's: SQLite rolls
// back the whole transaction when a statement is interrupted, so one caller's cancellation
// must not take the others' events with it. A caller whose context has ended before its turn
// is skipped and gets the context's error.

// emitBatchMax bounds how many emits one transaction carries. A batch holds the write lock
// while it is written, and the next batch is written while this one is synced: smaller
// batches let the delivery rounds in between and overlap the writing with the syncing more.
// With 32 clients flooding the server (BenchmarkEndToEnd, 16 workers), 16 accepted more events
// and delivered more than 128 in 10 of 12 alternating runs, with less CPU per event; 8 and 32
// did worse than 16.
const emitBatchMax = 16

// emitBatchTimeout bounds one batch's transaction.
const emitBatchTimeout = time.Minute

// emitRequest is one EventEmit waiting for its batch.
type emitRequest struct {
	ctx  context.Context
	fn   func(tx store.EmitTx) error
	err  error
	done chan struct{}
}

// emitBatcher queues emits for the next batch.
type emitBatcher struct {
	mu      sync.Mutex
	queue   []*emitRequest
	writing bool // a leader is taking or writing a batch
}

// EventEmit runs fn in a write transaction, possibly shared with concurrent emits (see above),
// and returns once that transaction is on disk.
func (s *Store) EventEmit(ctx context.Context, fn func(tx store.EmitTx) error) error {
	r := &emitRequest{ctx: ctx, fn: fn, done: make(chan struct{})}
	b := &s.emits
	b.mu.Lock()
	b.queue = append(b.queue, r)
	lead := !b.writing
	b.writing = true
	b.mu.Unlock()
	if lead {
		s.leadEmits()
	}
	<-r.done
	return r.err
}

// leadEmits writes the queued emits as one batch, starts the next leader if more queued
// meanwhile, and then makes the batch durable and answers its callers.
func (s *Store) leadEmits() {
	b := &s.emits
	b.mu.Lock()
	n := min(len(b.queue), emitBatchMax)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	b.mu.Unlock()

	wrote, err := s.writeEmits(batch)
	var seq uint64
	if wrote {
		seq = s.wal.commit()
	}

	b.mu.Lock()
	if len(b.queue) > 0 {
		go s.leadEmits() // the next batch writes while this one syncs
	} else {
		b.writing = false
	}
	b.mu.Unlock()

	if wrote {
		if serr := s.wal.wait(seq); serr != nil {
			err = fmt.Errorf("%w; the change was committed but may not survive a power loss", serr)
		}
	}
	for _, r := range batch {
		if err != nil && r.err == nil {
			r.err = err
		}
		close(r.done)
	}
}

// writeEmits runs batch in one write transaction and reports whether it committed any emit.
// An emit that fails gets its error in r.err and leaves nothing; the returned error fails the
// whole batch (nothing was committed).
func (s *Store) writeEmits(batch []*emitRequest) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), emitBatchTimeout)
	defer cancel()
	if len(batch) == 1 {
		// Alone: the transaction is the emit's, under its own context, as without batching.
		r := batch[0]
		r.err = s.withWriteTx(r.ctx, func(tx txq) error {
			return runEmit(r.fn, &emitTx{s: s, tx: tx})
		})
		return r.err == nil, nil // a failed emit is answered with its own error
	}
	// First without savepoints: a savepoint and its release are two statements an emit, and
	// emits seldom fail. If one does, the transaction is rolled back and the batch is written
	// again with a savepoint around each emit, so that only the failed one is left out.
	ok, err := s.writeEmitBatch(ctx, batch, false)
	if errors.Is(err, errEmitFailed) {
		ok, err = s.writeEmitBatch(ctx, batch, true)
	}
	if err != nil {
		for _, r := range batch {
			r.err = err
		}
		return false, err
	}
	return ok > 0, nil
}

// errEmitFailed rolls back a batch written without savepoints in which an emit failed.
var errEmitFailed = errors.New("sqlite: an emit of the batch failed")

// writeEmitBatch writes batch in one transaction and returns how many emits it kept. With
// savepoints each emit runs inside its own and one that fails is rolled back alone (its error
// in r.err); without, a failing emit fails the transaction with errEmitFailed.
func (s *Store) writeEmitBatch(ctx context.Context, batch []*emitRequest, savepoints bool) (int, error) {
	ok := 0
	err := s.withWriteTx(ctx, func(tx txq) error {
		ok = 0
		var counts insertCounts  // of the emits kept, written once for the batch
		shared := &emitTxState{} // what the batch's emits share
		if !savepoints {
			// Without savepoints the events and deliveries are inserted at the end, a few
			// multi-row statements for the batch instead of two or more for every emit. A
			// statement that fails then (a taken ID) fails the batch, which is written again
			// with savepoints and every row inserted at once, so the failure is its emit's.
			shared.deferred = &deferredRows{}
		}
		for _, r := range batch {
			r.err = nil
			if err := r.ctx.Err(); err != nil {
				r.err = err
				continue
			}
			et := &emitTx{s: s, tx: tx, ctx: ctx, deferCounts: true, txState: shared}
			if !savepoints {
				if r.err = runEmit(r.fn, et); r.err != nil {
					return errEmitFailed
				}
				ok++
				counts.addAll(et.counts)
				continue
			}
			if _, err := tx.tx.ExecContext(ctx, "SAVEPOINT emit"); err != nil {
				return fmt.Errorf("sqlite: emit: savepoint: %w", err)
			}
			r.err = runEmit(r.fn, et)
			if r.err != nil {
				if _, err := tx.tx.ExecContext(ctx, "ROLLBACK TO emit"); err != nil {
					return fmt.Errorf("sqlite: emit: roll back a failed emit (%v): %w", r.err, err)
				}
			} else {
				ok++
				counts.addAll(et.counts)
			}
			if _, err := tx.tx.ExecContext(ctx, "RELEASE emit"); err != nil {
				return fmt.Errorf("sqlite: emit: release savepoint: %w", err)
			}
		}
		if shared.deferred != nil {
			if err := shared.deferred.flush(ctx, tx); err != nil {
				return fmt.Errorf("%w: %w", errEmitFailed, err)
			}
		}
		return counts.write(ctx, tx)
	})
	return ok, err
}

// deferredRows are the parameters of event rows (eventInsertRow), pending delivery rows
// (deliveryInsertRow) and claimed ones (claimedInsertRow) a batch inserts at its end.
type deferredRows struct {
	events, pending, claimed []any
}

// Parameters per row of each table's deferred rows.
const (
	eventParams   = 10
	pendingParams = 14
	claimedParams = 15
)

// flushEvents inserts the events collected so far.
func (d *deferredRows) flushEvents(ctx context.Context, tx queryer) error {
	err := insertRows(ctx, tx, d.events, eventParams, eventInsertSQL)
	d.events = d.events[:0]
	if err != nil {
		return fmt.Errorf("sqlite: insert events: %w", err)
	}
	return nil
}

// flush inserts every row collected, the events first (deliveries name them).
func (d *deferredRows) flush(ctx context.Context, tx queryer) error {
	if err := d.flushEvents(ctx, tx); err != nil {
		return err
	}
	if err := insertRows(ctx, tx, d.pending, pendingParams, deliveryInsertSQL); err != nil {
		return fmt.Errorf("sqlite: insert deliveries: %w", err)
	}
	if err := insertRows(ctx, tx, d.claimed, claimedParams, claimedInsertSQL); err != nil {
		return fmt.Errorf("sqlite: insert claimed deliveries: %w", err)
	}
	d.pending, d.claimed = d.pending[:0], d.claimed[:0]
	return nil
}

// insertRows inserts the rows whose parameters args holds, per rows of per parameters, with
// the statement sql gives for a row count: runs of insertChunk rows.
func insertRows(ctx context.Context, tx queryer, args []any, per int, sql func(rows int) string) error {
	for n := len(args) / per; n > 0; {
		size := insertChunk(n)
		if _, err := tx.ExecContext(ctx, sql(size), args[:size*per]...); err != nil {
			return err
		}
		args, n = args[size*per:], n-size
	}
	return nil
}

// insertChunk is how many of n rows one INSERT carries: all of them up to 16 (a batch of
// emits, an event's few deliveries), else 200, 50 or 16 at a time, so that each table has at
// most 18 statement shapes to prepare and cache.
func insertChunk(n int) int {
	switch {
	case n >= 200:
		return 200
	case n >= 50:
		return 50
	case n > 16:
		return 16
	default:
		return n
	}
}

// runEmit runs one emit's fn. A panic in it becomes that emit's error: it runs on the leader's
// goroutine, and the callers waiting on the batch must still be answered.
func runEmit(fn func(tx store.EmitTx) error, tx *emitTx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite: emit: the emit function panicked: %v", p)
		}
	}()
	return fn(tx)
}
