// Package retention deletes delivery history older than the retention period: a background
// loop, like river's cleaner, that calls store.Store.HistoryDeleteBefore in small batches.
// Each batch is one short write transaction, and the loop pauses between batches so that the
// delivery workers' transactions (claims, completions, emits) never queue behind a long
// delete. Pending and running work is never deleted: the store skips it.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Defaults for Config fields left zero.
const (
	// RetentionDefault keeps thirty days of history.
	RetentionDefault = 30 * 24 * time.Hour
	// IntervalDefault is how often the pruner looks for old history.
	IntervalDefault = time.Minute
	// BatchDefault is how many events one batch deletes at most.
	BatchDefault = 100
	// PauseDefault is the wait between two batches of one run.
	PauseDefault = 50 * time.Millisecond
)

// Config builds a Pruner. Only Store is required.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Retention is how long history is kept.
	Retention time.Duration
	// Interval is the time between two runs.
	Interval time.Duration
	// Batch bounds the events one transaction deletes.
	Batch int
	// Pause is the wait between two batches of one run, letting other writers through.
	Pause time.Duration
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Retention == 0 {
		c.Retention = RetentionDefault
	}
	if c.Interval == 0 {
		c.Interval = IntervalDefault
	}
	if c.Batch == 0 {
		c.Batch = BatchDefault
	}
	if c.Pause == 0 {
		c.Pause = PauseDefault
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("retention: Config.Store is required")
	case c.Retention < 0:
		return fmt.Errorf("retention: Config.Retention is %s: give a positive duration", c.Retention)
	case c.Interval < 0:
		return fmt.Errorf("retention: Config.Interval is %s: give a positive duration", c.Interval)
	case c.Batch < 0:
		return fmt.Errorf("retention: Config.Batch is %d: give a positive number of events", c.Batch)
	case c.Pause < 0:
		return fmt.Errorf("retention: Config.Pause is %s: give a positive duration", c.Pause)
	}
	return nil
}

// Pruner deletes old history in the background. It is safe for concurrent use.
type Pruner struct {
	cfg Config

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	last   Run
	total  Totals
}

// Totals adds up every run since the Pruner was built.
type Totals struct {
	Runs, Failures int
	Deleted        store.HistoryDeleteBeforeResult
}

// Run is what one run of the pruner did.
type Run struct {
	At      time.Time
	Deleted store.HistoryDeleteBeforeResult
	Batches int
	// Longest is the longest batch: how long the pruner held the store's write lock at once.
	Longest time.Duration
	Err     error
}

// New builds a Pruner from cfg: defaults are filled, then the configuration is checked.
func New(cfg Config) (*Pruner, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Pruner{cfg: cfg}, nil
}

// Start runs the pruner in the background, once at once and then every Interval, until Stop
// is called or ctx ends.
func (p *Pruner) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return errors.New("retention: the pruner is already running: call Stop before starting it again")
	}
	ctx, cancel := context.WithCancel(ctx)
	p.cancel, p.done = cancel, make(chan struct{})
	go p.loop(ctx, p.done)
	p.cfg.Logger.InfoContext(ctx, "history pruner started", "retention", p.cfg.Retention.String(), "interval", p.cfg.Interval.String())
	return nil
}

// Stop stops the pruner and waits for the batch in progress, if any. Stop without Start does
// nothing.
func (p *Pruner) Stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.cancel, p.done = nil, nil
	p.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Last returns what the latest run did (zero before the first).
func (p *Pruner) Last() Run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *Pruner) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		run := p.RunOnce(ctx)
		if run.Err != nil && ctx.Err() == nil {
			p.cfg.Logger.ErrorContext(ctx, "pruning old history failed; trying again at the next interval", "error", run.Err.Error())
		}
		t.Reset(p.cfg.Interval)
	}
}

// RunOnce deletes history older than the retention period, batch after batch with a pause in
// between, until nothing old is left or ctx ends.
func (p *Pruner) RunOnce(ctx context.Context) Run {
	run := Run{At: p.cfg.Now()}
	before := run.At.Add(-p.cfg.Retention)
	for {
		start := time.Now()
		res, err := p.cfg.Store.HistoryDeleteBefore(ctx, store.HistoryDeleteBeforeParams{Before: before, Limit: p.cfg.Batch})
		run.Longest = max(run.Longest, time.Since(start))
		if err != nil {
			run.Err = err
			break
		}
		run.Batches++
		d := &run.Deleted
		d.Events += res.Events
		d.Deliveries += res.Deliveries
		d.Attempts += res.Attempts
		d.Bodies += res.Bodies
		d.DeploymentRequests += res.DeploymentRequests
		d.IdempotencyKeys += res.IdempotencyKeys
		d.Deployments += res.Deployments
		if !res.More {
			break
		}
		select {
		case <-ctx.Done():
			run.Err = ctx.Err()
		case <-time.After(p.cfg.Pause):
		}
		if run.Err != nil {
			break
		}
	}
	if d := run.Deleted; d.Events+d.IdempotencyKeys+d.Deployments > 0 {
		p.cfg.Logger.InfoContext(ctx, "pruned history older than the retention period", "before", before,
			"events", d.Events, "deliveries", d.Deliveries, "attempts", d.Attempts, "idempotency_keys", d.IdempotencyKeys,
			"deployment_requests", d.DeploymentRequests, "deployments", d.Deployments, "batches", run.Batches)
	}
	p.mu.Lock()
	p.last = run
	p.total.Runs++
	if run.Err != nil {
		p.total.Failures++
	}
	t := &p.total.Deleted
	t.Events += run.Deleted.Events
	t.Deliveries += run.Deleted.Deliveries
	t.Attempts += run.Deleted.Attempts
	t.Bodies += run.Deleted.Bodies
	t.DeploymentRequests += run.Deleted.DeploymentRequests
	t.IdempotencyKeys += run.Deleted.IdempotencyKeys
	t.Deployments += run.Deleted.Deployments
	p.mu.Unlock()
	return run
}

// Totals returns what every run since the Pruner was built did.
func (p *Pruner) Totals() Totals {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}
