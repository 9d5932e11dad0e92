package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/sender"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Attempt outcomes reported to the Observer.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeRetry     = "retry"
	OutcomeFailed    = "failed"
	OutcomeDiscarded = "discarded"
)

// Outcomes lists every attempt outcome the Observer is told, in a fixed order.
func Outcomes() []string {
	return []string{OutcomeSucceeded, OutcomeRetry, OutcomeFailed, OutcomeDiscarded}
}

// completeTimeout bounds the store write that records a batch of attempts, which runs even
// while the engine stops so that a finished attempt is not sent again.
const completeTimeout = 10 * time.Second

// workerRun is one Start..Stop period of the delivery workers.
type workerRun struct {
	// ctx is the context of in-flight attempts; cancel aborts them (Stop's deadline passed or
	// Start's context ended).
	ctx    context.Context
	cancel context.CancelFunc
	// stop is closed by Stop: claim nothing more.
	stop chan struct{}
	// dispatched is closed when the dispatcher has returned: nothing is in flight any more.
	dispatched chan struct{}
	// results carries finished attempts from the workers to the dispatcher, which records them
	// in batches. Its buffer holds one per worker, so a worker never waits to hand one over.
	results chan finished
	// storeWake receives when another process stores work, for a store that can tell
	// (store.Waker); nil otherwise, and the poll interval finds that work.
	storeWake <-chan struct{}
	// busy counts claimed deliveries not yet recorded as finished: a worker's slot stays taken
	// until its attempt is durable.
	busy     atomic.Int64
	inflight sync.WaitGroup
	// work hands claimed deliveries to the run's worker goroutines, one per slot, which live
	// as long as the run: a goroutine per attempt would grow a new stack for every one.
	work chan *store.ClaimedDelivery
	// freed is poked when slots taken for direct claims are given back unused (giveSlots), so
	// that a stopping dispatcher waiting for attempts looks at busy again.
	freed chan struct{}
}

// takeSlots takes up to want idle worker slots for deliveries an Emit claims directly
// (store.EmitClaimer) and returns how many it took: none while the run stops. The slots count
// as busy until the attempts started in them are recorded, or giveSlots gives them back.
func (r *workerRun) takeSlots(want int) int {
	var take int64
	for {
		cur := r.busy.Load()
		take = min(int64(want), int64(cap(r.work))-cur) // r.work holds one per slot
		if take <= 0 {
			return 0
		}
		if r.busy.CompareAndSwap(cur, cur+take) {
			break
		}
	}
	// Checked after taking: a dispatcher that has seen the run stop and no slot busy has
	// returned, and then this sees the stop too.
	if r.stopping() {
		r.giveSlots(int(take))
		return 0
	}
	return int(take)
}

// giveSlots gives back n slots takeSlots took and no attempt used.
func (r *workerRun) giveSlots(n int) {
	if n <= 0 {
		return
	}
	r.busy.Add(-int64(n))
	select {
	case r.freed <- struct{}{}:
	default:
	}
}

// startClaimed starts an attempt, in a slot takeSlots took, for each delivery an Emit
// claimed directly once its transaction is durable.
func (e *Engine) startClaimed(r *workerRun, cds []*store.ClaimedDelivery) {
	for _, d := range cds {
		r.inflight.Add(1)
		r.work <- d
	}
}

// work runs the attempts handed to r.work until it is closed.
func (e *Engine) work(r *workerRun) {
	for d := range r.work {
		e.attempt(r, d)
	}
}

// finished is an attempt a worker has made, waiting to be recorded.
type finished struct {
	p                store.DeliveryCompleteParams
	outcome, errText string
	log              *slog.Logger
}

// Start launches the delivery workers and returns at once. They claim due deliveries from the
// store (emitted by this process or any other sharing it), send them and record each attempt,
// until Stop is called or ctx ends (which also aborts in-flight attempts).
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run != nil {
		return errors.New("engine: the delivery workers are already running: call Stop before starting them again")
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &workerRun{
		ctx: rctx, cancel: cancel,
		stop: make(chan struct{}), dispatched: make(chan struct{}), results: make(chan finished, e.cfg.Workers),
		freed: make(chan struct{}, 1), work: make(chan *store.ClaimedDelivery, e.cfg.Workers),
	}
	if w, ok := e.store.(store.Waker); ok {
		r.storeWake = w.StoreWake(rctx)
	}
	e.run = r
	for range e.cfg.Workers {
		go e.work(r)
	}
	go e.dispatch(r)
	e.log.InfoContext(ctx, "delivery workers started", "worker", e.worker, "workers", e.cfg.Workers,
		"per_endpoint_limit", e.cfg.PerEndpointLimit, "per_org_limit", e.cfg.PerOrgLimit, "lease", e.cfg.Lease().String())
	return nil
}

// Stop stops claiming deliveries and waits for in-flight attempts to finish and be recorded.
// When ctx ends first, the attempts still running are aborted and recorded for an immediate
// retry, and Stop returns ctx's error. Anything not finished is picked up by the next Start
// of this or another process. Stop without Start does nothing.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	r := e.run
	e.run = nil
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	close(r.stop)
	done := make(chan struct{})
	go func() {
		<-r.dispatched
		r.inflight.Wait()
		close(r.work) // every attempt is recorded and no slot is taken: nothing more comes
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n := r.busy.Load()
		r.cancel()
		<-done
		err = fmt.Errorf("engine: stop: %d delivery attempts were still running and were aborted; they will be retried: %w", n, ctx.Err())
	}
	r.cancel()
	e.log.InfoContext(ctx, "delivery workers stopped", "worker", e.worker)
	return err
}

// claimGather is how long the claim loop lets finished attempts and free workers gather
// before a round that would serve fewer than all the workers.
const claimGather = 2 * time.Millisecond

// dispatch is the only goroutine of a run that writes to the store. Round after round, in one
// store transaction (DeliveryCycle), it records every attempt the workers finished since the
// last round (group commit) and claims due deliveries for the slots that frees and any other
// free ones; only once the transaction is durable are the finished workers' slots free again
// and the new attempts started, so a crash loses at most the attempts of the slots still
// taken. Most of a round's cost is the same for eight deliveries as for one (the commit
// above all), so under load it lets finished attempts and free slots gather for a moment
// (claimGather) until every worker is served, unless a local Emit or the poll interval calls
// for a round now; when there is nothing to do it sleeps until an attempt finishes, a local
// Emit, or the poll interval.
//
// After Stop (or when the run's context ends) it claims nothing more and returns once every
// attempt in flight has been recorded.
func (e *Engine) dispatch(r *workerRun) {
	defer close(r.dispatched)
	timer := time.NewTimer(e.cfg.PollInterval)
	defer timer.Stop()
	var done []finished
	var gatherSince time.Time // when the current gathering started; zero if none
	urgent := true            // claim at the next chance whatever the batch size
	for {
		// Take what has finished, including anything that arrived meanwhile.
	drain:
		for len(done) < cap(r.results) {
			select {
			case f := <-r.results:
				done = append(done, f)
			default:
				break drain
			}
		}
		if r.stopping() {
			if len(done) > 0 {
				e.cycle(r, done, 0)
				clear(done)
				done = done[:0]
				continue
			}
			if r.busy.Load() == 0 {
				return
			}
			select {
			case f := <-r.results:
				done = append(done, f)
			case <-r.freed: // slots an Emit took came back unused: look at busy again
			}
			continue
		}
		busy := int(r.busy.Load())   // claimed and not yet recorded, done included
		running := busy - len(done)  // attempts still being sent
		free := e.cfg.Workers - busy // free slots, before this round frees done's
		wait := e.cfg.PollInterval
		claim := -1 // -1: no round now
		switch {
		case free+len(done) <= 0:
			gatherSince = time.Time{}
		case urgent || running == 0 || free+len(done) >= e.cfg.Workers || (!gatherSince.IsZero() && time.Since(gatherSince) >= claimGather):
			urgent, gatherSince = false, time.Time{}
			claim = free + len(done)
		default:
			if gatherSince.IsZero() {
				gatherSince = time.Now()
			}
			wait = claimGather - time.Since(gatherSince)
		}
		if claim >= 0 {
			claimed, err := e.cycle(r, done, claim)
			clear(done)
			done = done[:0]
			if err == nil && len(claimed) == claim {
				continue // the queue may hold more: claim again once workers are free
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-r.stop:
		case <-r.ctx.Done():
		case f := <-r.results:
			done = append(done, f)
		case <-e.wake:
			urgent = true
		case <-r.storeWake:
			urgent = true
		case <-timer.C:
			urgent = true
		}
	}
}

// stopping reports whether the run should claim nothing more.
func (r *workerRun) stopping() bool {
	select {
	case <-r.stop:
		return true
	case <-r.ctx.Done():
		return true
	default:
		return false
	}
}

// attempt sends one claimed delivery and hands the outcome to the dispatcher to record.
func (e *Engine) attempt(r *workerRun, d *store.ClaimedDelivery) {
	log := e.log.With("delivery", d.ID, "event", d.EventID, "hook_id", d.HookID, "endpoint", d.Endpoint, "attempt", d.Attempts)
	p := store.DeliveryCompleteParams{ID: d.ID, Worker: e.worker, Attempt: d.Attempts}
	if !d.HookActive {
		now := e.cfg.Now()
		p.State, p.Now = store.DeliveryDiscarded, now
		p.Record = store.Attempt{
			DeliveryID: d.ID, HookID: d.HookID, Number: d.Attempts, Filter: d.Filter, Kind: d.Kind, StartedAt: now,
			Error: "not sent: the webhook is inactive, so the delivery was discarded",
		}
		r.results <- finished{p: p, outcome: OutcomeDiscarded, log: log}
		return
	}
	res := e.sender.Send(r.ctx, sender.Request{URL: d.URL, DeliveryID: d.ID, Kind: d.Kind, Body: d.Body, Secret: d.Secret})
	now := e.cfg.Now()
	p.Now = now
	p.Record = res.Attempt
	p.Record.DeliveryID, p.Record.HookID, p.Record.Number = d.ID, d.HookID, d.Attempts
	p.Record.Filter, p.Record.Kind = d.Filter, d.Kind
	errText := redact(p.Record.Error, d.URL)
	log = log.With("status", p.Record.ResponseCode, "duration", p.Record.Duration.String())
	if r.ctx.Err() != nil && res.Outcome == sender.Retry && p.Record.ResponseCode == 0 {
		// Aborted by shutdown: not the endpoint's fault, so retry at once on the next start.
		p.State, p.NextAttemptAt = store.DeliveryPending, now
		p.Record.Error = "aborted: the delivery engine stopped before the attempt finished; it will be retried"
		r.results <- finished{p: p, outcome: OutcomeRetry, errText: p.Record.Error, log: log}
		return
	}
	outcome := OutcomeFailed
	switch res.Outcome {
	case sender.Succeeded:
		p.State, outcome = store.DeliverySucceeded, OutcomeSucceeded
	case sender.Gone:
		p.State = store.DeliveryFailed
		p.DisableHookReason = fmt.Sprintf("the endpoint answered %d Gone at %s, which means it no longer wants deliveries: the webhook was deactivated; set active to true to resume",
			p.Record.ResponseCode, now.UTC().Format(time.RFC3339))
	case sender.Retry:
		if next, ok := e.nextAttempt(d.Attempts, res.RetryAfter, now); ok {
			p.State, p.NextAttemptAt, outcome = store.DeliveryPending, next, OutcomeRetry
		} else {
			p.State = store.DeliveryFailed
			errText = fmt.Sprintf("gave up after %d attempts: %s", d.Attempts, errText)
		}
	default:
		p.State = store.DeliveryFailed
	}
	r.results <- finished{p: p, outcome: outcome, errText: errText, log: log}
}

// cycle is one round of the claim loop: it records the finished attempts fs and claims up to
// limit due deliveries in one store transaction, reports each attempt, frees the finished
// workers' slots and starts an attempt for each claimed delivery. It runs even while the engine
// stops (with limit 0), so that a finished attempt is not sent again.
func (e *Engine) cycle(r *workerRun, fs []finished, limit int) ([]*store.ClaimedDelivery, error) {
	ps := make([]store.DeliveryCompleteParams, len(fs))
	for i := range fs {
		ps[i] = fs[i].p
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), completeTimeout)
	defer cancel()
	res, err := e.store.DeliveryCycle(ctx, store.DeliveryCycleParams{
		Complete: ps,
		Claim:    e.claimParams(limit),
	})
	for i, f := range fs {
		e.report(f, res.CompleteErrs[i])
	}
	r.busy.Add(-int64(len(fs)))
	for range fs {
		r.inflight.Done()
	}
	if err != nil {
		if r.ctx.Err() == nil && limit > 0 {
			e.log.ErrorContext(r.ctx, "claiming deliveries failed; retrying after the poll interval", "error", err.Error())
		}
		return nil, err
	}
	for _, d := range res.Claimed {
		r.busy.Add(1)
		r.inflight.Add(1)
		r.work <- d
	}
	return res.Claimed, nil
}

// claimParams is a claim of up to limit deliveries by this engine's worker, now, under its
// lease and caps: the claim loop's and an emit's direct claims alike.
func (e *Engine) claimParams(limit int) store.DeliveryClaimParams {
	return store.DeliveryClaimParams{
		Worker: e.worker, Now: e.cfg.Now(), Lease: e.cfg.Lease(), Limit: limit,
		PerEndpointLimit: e.cfg.PerEndpointLimit, PerOrgLimit: e.cfg.PerOrgLimit,
	}
}

// report logs one recorded (or not recorded) attempt and tells the observer.
func (e *Engine) report(f finished, err error) {
	log, p, outcome, errText := f.log, &f.p, f.outcome, f.errText
	if err != nil {
		if errors.Is(err, store.ErrLeaseLost) {
			log.Warn("delivery attempt finished after its lease was lost; another worker owns it now", "outcome", outcome)
			return
		}
		log.Error("recording a delivery attempt failed; the delivery will be retried after its lease", "outcome", outcome, "error", err.Error())
		return
	}
	if o := e.cfg.Observer; o != nil {
		o.AttemptFinished(outcome, p.Record.Duration)
		if p.DisableHookReason != "" {
			o.HookDisabled(p.DisableHookReason)
		}
	}
	switch {
	case p.DisableHookReason != "":
		log.Warn("webhook deactivated: the endpoint answered 410 Gone", "outcome", outcome)
	case outcome == OutcomeSucceeded:
		log.Debug("delivery succeeded")
	case outcome == OutcomeRetry:
		log.Info("delivery attempt failed; will retry", "next_attempt_at", p.NextAttemptAt, "error", errText)
	case outcome == OutcomeDiscarded:
		log.Info("delivery discarded: the webhook is inactive")
	default:
		log.Warn("delivery failed", "error", errText)
	}
}

// nextAttempt returns when to try again after attempt number attempts failed, or false when
// the retry schedule is exhausted. The scheduled wait gets ±20% jitter so retries do not
// arrive in waves. A Retry-After from the endpoint is the earliest time it wants to be asked
// again, so it can only delay the next attempt, never bring it forward: the wait is the longer
// of the two, with Retry-After bounded by RetryAfterMax. (An endpoint answering 503 with
// Retry-After: 1 would otherwise use up every retry in seconds.)
func (e *Engine) nextAttempt(attempts int, retryAfter time.Duration, now time.Time) (time.Time, bool) {
	if attempts < 1 || attempts > len(e.cfg.RetrySchedule) {
		return time.Time{}, false
	}
	wait := jitter(e.cfg.RetrySchedule[attempts-1])
	if retryAfter > 0 {
		wait = max(wait, min(retryAfter, e.cfg.RetryAfterMax))
	}
	return now.Add(wait), true
}

// jitter returns d scaled by a random factor in [0.8, 1.2).
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// redact removes a payload URL's path and query from an error message: URLs of Slack and Teams
// webhooks carry their credentials there.
func redact(msg, rawURL string) string {
	if msg == "" || rawURL == "" {
		return msg
	}
	short := rawURL
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		short = u.Scheme + "://" + u.Host + "/…"
		if rest := strings.TrimPrefix(rawURL, u.Scheme+"://"+u.Host); rest != "" && rest != "/" {
			msg = strings.ReplaceAll(msg, rawURL, short)
			msg = strings.ReplaceAll(msg, rest, "/…")
			return msg
		}
	}
	return strings.ReplaceAll(msg, rawURL, short)
}
