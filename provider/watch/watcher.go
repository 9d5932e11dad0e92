package watch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Defaults of Config fields left zero.
const (
	// OrgDefault is the organization of events: what DIY backends report as every stack's.
	OrgDefault = "organization"
	// IntervalDefault is how often a backend is polled.
	IntervalDefault = 5 * time.Second
	// ClockSkewDefault is how far the clocks of the machines running pulumi may be from the
	// watcher's without an entry being missed (see the package documentation).
	ClockSkewDefault = 5 * time.Minute
	// SettleDefault is how long a new checkpoint must have been seen before stack_created
	// fires, so that a rename in progress is not taken for a new stack.
	SettleDefault = 500 * time.Millisecond
	// BackoffMaxDefault bounds the wait between polls of a backend that keeps failing.
	BackoffMaxDefault = 5 * time.Minute
	// VanishedMaxDefault bounds how long a stack whose checkpoint is gone but whose history
	// is still there (a removal or rename in progress) is waited for before it counts as
	// removed: a checkpoint deleted by hand leaves its history for good.
	VanishedMaxDefault = time.Minute
)

// Emitter stores events; the engine is one.
type Emitter interface {
	Emit(ctx context.Context, p engine.EmitParams) (*engine.EmitResult, error)
}

// Config builds a Watcher. URL, Emitter and Cursors are required.
type Config struct {
	// URL is the backend, as `pulumi login` takes it.
	URL string
	// Org is the organization of the events (OrgDefault).
	Org      string
	Interval time.Duration
	Emitter  Emitter
	Cursors  store.WatchCursors
	Logger   *slog.Logger
	Now      func() time.Time
	// ClockSkew, Settle and BackoffMax: see their defaults.
	ClockSkew  time.Duration
	Settle     time.Duration
	BackoffMax time.Duration
	// VanishedMax: see VanishedMaxDefault.
	VanishedMax time.Duration
	// NoNotify turns filesystem notifications off (file:// backends are then only polled).
	NoNotify bool
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Org == "" {
		c.Org = OrgDefault
	}
	if c.Interval == 0 {
		c.Interval = IntervalDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = ClockSkewDefault
	}
	if c.Settle == 0 {
		c.Settle = SettleDefault
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = BackoffMaxDefault
	}
	if c.VanishedMax == 0 {
		c.VanishedMax = VanishedMaxDefault
	}
	return c
}

func (c Config) validate() error {
	var errs webhook.FieldErrors
	if c.URL == "" {
		errs.Add("url", "is required: give the backend's URL, as `pulumi login` takes it")
	}
	if c.Emitter == nil {
		errs.Add("emitter", "is required")
	}
	if c.Cursors == nil {
		errs.Add("cursors", "is required: the store must support watch cursors")
	}
	if c.Interval < 0 || c.ClockSkew < 0 || c.Settle < 0 || c.BackoffMax < 0 || c.VanishedMax < 0 {
		errs.Add("interval", "durations must be positive")
	}
	if err := (webhook.Scope{Org: c.Org}).Validate(); err != nil {
		errs.Add("org", fmt.Sprintf("%q is not an organization name: %v", c.Org, err))
	}
	return errs.Err()
}

// States of a watcher, as Status reports them.
const (
	StateStarting = "starting"
	StateWatching = "watching"
	StateFailing  = "failing"
	StateStopped  = "stopped"
)

// Status is what /readyz and /metrics show of a watcher.
type Status struct {
	Backend string `json:"backend"`
	State   string `json:"state"`
	// Error is the last poll's error while State is failing.
	Error string `json:"error,omitempty"`
	// LastPoll is when the last successful poll started.
	LastPoll time.Time `json:"lastPoll,omitzero"`
	// LagSeconds is how long ago that was: nothing Pulumi wrote after it has been seen yet.
	LagSeconds float64 `json:"lagSeconds"`
	// Events counts the events this watcher stored (replays of another's not included).
	Events int64 `json:"events"`
}

// Watcher turns one backend's changes into events. Open it, Start it, Stop it.
type Watcher struct {
	cfg     Config
	backend *Backend
	log     *slog.Logger
	kick    chan struct{}

	mu       sync.Mutex
	state    string
	lastErr  string
	lastPoll time.Time
	events   int64
	cancel   context.CancelFunc
	done     chan struct{}

	// Memory of the loop, touched by its goroutine only.
	firstSeen map[string]time.Time // appeared stacks not yet announced
	goneSince map[string]time.Time // vanished stacks whose history is still there
	low       map[string]int64     // per stack: everything stamped below was listed
	owners    map[string]LockOwner // per stack: the last lock owner seen
}

// Open checks cfg and opens its backend; a backend that cannot be read is an error naming
// its URL (credentials masked).
func Open(ctx context.Context, cfg Config) (*Watcher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("watch %s: %w", MaskURL(cfg.URL), err)
	}
	b, err := OpenBackend(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	if err := b.readMeta(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return &Watcher{
		cfg: cfg, backend: b, log: cfg.Logger.With("backend", b.Masked), kick: make(chan struct{}, 1),
		state: StateStarting, firstSeen: map[string]time.Time{}, goneSince: map[string]time.Time{}, low: map[string]int64{}, owners: map[string]LockOwner{},
	}, nil
}

// Backend returns the watched backend.
func (w *Watcher) Backend() *Backend { return w.backend }

// Start runs the watcher in the background until Stop or ctx ends.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return errors.New("watch: already started")
	}
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	var stopNotify func()
	if w.backend.Dir != "" && !w.cfg.NoNotify {
		stop, err := notifyDir(ctx, w.backend.Dir, w.Kick, w.log)
		if err != nil {
			w.log.Warn("filesystem notifications unavailable; polling only", "interval", w.cfg.Interval.String(), "error", err)
		} else {
			stopNotify = stop
		}
	}
	go func() {
		defer close(w.done)
		if stopNotify != nil {
			defer stopNotify()
		}
		w.loop(ctx)
	}()
	return nil
}

// Stop ends the loop and waits for it, then closes the backend.
func (w *Watcher) Stop() error {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	w.mu.Lock()
	w.state = StateStopped
	w.mu.Unlock()
	return w.backend.Close()
}

// Kick asks for a poll now (filesystem notifications call it).
func (w *Watcher) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Status reports the watcher's state.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := Status{Backend: w.backend.Masked, State: w.state, Error: w.lastErr, LastPoll: w.lastPoll, Events: w.events}
	if !w.lastPoll.IsZero() {
		s.LagSeconds = max(0, w.cfg.Now().Sub(w.lastPoll).Seconds())
	}
	return s
}

func (w *Watcher) loop(ctx context.Context) {
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-w.kick:
			timer.Stop()
		}
		started := w.cfg.Now()
		again, err := w.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := w.cfg.Interval
		w.mu.Lock()
		if err != nil {
			failures++
			wait = backoff(w.cfg.Interval, w.cfg.BackoffMax, failures)
			w.state, w.lastErr = StateFailing, err.Error()
			w.mu.Unlock()
			w.log.Warn("backend poll failed; retrying", "in", wait.String(), "failures", failures, "error", err)
		} else {
			if failures > 0 {
				w.log.Info("backend readable again", "after_failures", failures)
			}
			failures = 0
			w.state, w.lastErr, w.lastPoll = StateWatching, "", started
			w.mu.Unlock()
			if again > 0 && again < wait {
				wait = again
			}
		}
		timer.Reset(wait)
	}
}

// backoff doubles the wait after each failure, up to limit.
func backoff(base, limit time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, max(limit, base))
}

// poll compares the backend with the cursors and emits what is new. It returns how soon it
// wants to look again (stacks waiting to settle), 0 for the regular interval.
func (w *Watcher) poll(ctx context.Context) (time.Duration, error) {
	b := w.backend
	now := w.cfg.Now()
	present, err := b.Stacks(ctx)
	if err != nil {
		return 0, err
	}
	locks, err := b.Locks(ctx)
	if err != nil {
		return 0, err
	}
	for key, o := range locks {
		w.owners[key] = o
	}
	list, err := w.cfg.Cursors.WatchCursorList(ctx, b.Name)
	if err != nil {
		return 0, fmt.Errorf("read the watch cursors: %w", err)
	}
	cursors := map[string]*store.WatchCursor{}
	for _, c := range list {
		cursors[c.Stack] = c
	}
	if m := cursors[""]; m == nil || !m.Present {
		return 0, w.baseline(ctx, present, now)
	}

	var again time.Duration
	// Stacks whose checkpoint is gone: removed, or renamed.
	pending := false
	var vanished []*store.WatchCursor
	for _, c := range list {
		if c.Stack != "" && c.Present && present[c.Stack] == (StackRef{}) {
			vanished = append(vanished, c)
		}
	}
	appeared := map[string]StackRef{}
	for key, ref := range present {
		if c := cursors[key]; c == nil || !c.Present {
			appeared[key] = ref
		}
	}
	for key := range w.firstSeen {
		if _, ok := appeared[key]; !ok {
			delete(w.firstSeen, key)
		}
	}
	for key := range w.goneSince {
		if !slices.ContainsFunc(vanished, func(c *store.WatchCursor) bool { return c.Stack == key }) {
			delete(w.goneSince, key)
		}
	}
	for _, c := range vanished {
		ref := refOf(c.Stack)
		has, err := b.HasHistory(ctx, ref)
		if err != nil {
			return 0, err
		}
		if has {
			since, ok := w.goneSince[c.Stack]
			if !ok {
				since = now
				w.goneSince[c.Stack] = now
			}
			if now.Sub(since) < w.cfg.VanishedMax {
				pending = true // `stack rm` or `stack rename` still moving things
				again = w.cfg.Settle
				continue
			}
			w.log.Warn("stack checkpoint gone for long while its history stays: counted as removed", "stack", c.Stack, "since", since)
		}
		delete(w.goneSince, c.Stack)
		target, err := w.renameTarget(ctx, c, appeared)
		if err != nil {
			return 0, err
		}
		if target != nil {
			if err := w.rename(ctx, c, *target, cursors[target.Key()], now); err != nil {
				return 0, err
			}
			delete(appeared, target.Key())
			continue
		}
		if err := w.emitStack(ctx, webhook.StackDeleted, ref, c.Generation); err != nil {
			return 0, err
		}
		if err := w.presence(ctx, c.Stack, false, c.Generation, now); err != nil {
			return 0, err
		}
		delete(w.low, c.Stack)
	}

	// New stacks, once settled and once no removal or rename is half done.
	var announced []StackRef
	for key, ref := range appeared {
		first, seen := w.firstSeen[key]
		if !seen {
			w.firstSeen[key] = now
			again = w.cfg.Settle
			continue
		}
		if now.Sub(first) < w.cfg.Settle || pending {
			again = max(0, w.cfg.Settle-now.Sub(first))
			if again == 0 {
				again = w.cfg.Settle
			}
			continue
		}
		gen := 0
		if c := cursors[key]; c != nil {
			gen = c.Generation
		}
		if err := w.emitStack(ctx, webhook.StackCreated, ref, gen); err != nil {
			return 0, err
		}
		if err := w.presence(ctx, key, true, gen, now); err != nil {
			return 0, err
		}
		delete(w.firstSeen, key)
		announced = append(announced, ref)
	}

	// History of every announced stack, oldest entry first across stacks.
	var fresh []HistoryEntry
	scanned := map[string]int64{}
	hi := now.Add(w.cfg.ClockSkew).UnixNano()
	for key, ref := range present {
		c := cursors[key]
		if (c == nil || !c.Present) && !slices.Contains(announced, ref) {
			continue
		}
		var last int64
		if c != nil {
			last = c.LastNanos
		}
		lo := max(last+1, w.low[key])
		if last == 0 && w.low[key] == 0 {
			lo = 0 // never listed: everything
		}
		hs, err := b.History(ctx, ref, lo, hi)
		if err != nil {
			return 0, err
		}
		for _, h := range hs {
			if h.Nanos > last {
				fresh = append(fresh, h)
			}
		}
		scanned[key] = now.Add(-w.cfg.ClockSkew).UnixNano()
	}
	slices.SortFunc(fresh, func(a, b HistoryEntry) int {
		if a.Nanos != b.Nanos {
			return cmp.Compare(a.Nanos, b.Nanos)
		}
		return cmp.Compare(a.Key, b.Key)
	})
	for _, h := range fresh {
		if err := w.emitEntry(ctx, h); err != nil {
			return 0, err
		}
	}
	for key, n := range scanned {
		w.low[key] = max(w.low[key], n)
	}
	return again, nil
}

// refOf parses a cursor's stack key back into a StackRef.
func refOf(key string) StackRef {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return StackRef{Project: key[:i], Name: key[i+1:]}
		}
	}
	return StackRef{Name: key}
}

// baseline records what the backend holds the first time it is watched, without events.
func (w *Watcher) baseline(ctx context.Context, present map[string]StackRef, now time.Time) error {
	b := w.backend
	for key, ref := range present {
		hs, err := b.History(ctx, ref, 0, 0)
		if err != nil {
			return err
		}
		if err := w.presence(ctx, key, true, 0, now); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return err
		}
		if len(hs) > 0 {
			h := hs[len(hs)-1]
			if err := w.advance(ctx, h, now); err != nil {
				return err
			}
		}
	}
	if err := w.presence(ctx, "", true, 0, now); err != nil && !errors.Is(err, store.ErrLeaseLost) {
		return err
	}
	w.log.Info("first time this backend is watched: its stacks and history so far are the baseline, not events", "stacks", len(present))
	return nil
}

// renameTarget returns the appeared stack that holds the history entry the vanished stack's
// cursor points at, if any.
func (w *Watcher) renameTarget(ctx context.Context, c *store.WatchCursor, appeared map[string]StackRef) (*StackRef, error) {
	if c.LastNanos == 0 {
		return nil, nil
	}
	for _, ref := range appeared {
		ok, err := w.backend.HasEntry(ctx, ref, c.LastNanos)
		if err != nil {
			return nil, err
		}
		if ok {
			return &ref, nil
		}
	}
	return nil, nil
}

// rename moves the cursor of the vanished stack to its new name, without events.
func (w *Watcher) rename(ctx context.Context, old *store.WatchCursor, to StackRef, toCursor *store.WatchCursor, now time.Time) error {
	gen := 0
	if toCursor != nil {
		gen = toCursor.Generation
	}
	if err := w.presence(ctx, to.Key(), true, gen, now); err != nil {
		return err
	}
	if err := w.cfg.Cursors.WatchCursorAdvance(ctx, store.WatchCursorAdvanceParams{
		Backend: w.backend.Name, Stack: to.Key(), Nanos: old.LastNanos, Key: old.LastKey, Now: now,
	}); err != nil {
		return fmt.Errorf("move the watch cursor of %s to %s: %w", old.Stack, to.Key(), err)
	}
	if err := w.presence(ctx, old.Stack, false, old.Generation, now); err != nil {
		return err
	}
	delete(w.firstSeen, to.Key())
	w.low[to.Key()] = w.low[old.Stack]
	delete(w.low, old.Stack)
	w.log.Info("stack renamed: no stack_deleted or stack_created; its hooks stay with the old name", "from", old.Stack, "to", to.Key())
	return nil
}

// presence records a stack's appearance or disappearance; losing the race to another watcher
// is fine (it recorded the same thing).
func (w *Watcher) presence(ctx context.Context, stack string, present bool, gen int, now time.Time) error {
	err := w.cfg.Cursors.WatchCursorPresence(ctx, store.WatchCursorPresenceParams{
		Backend: w.backend.Name, Stack: stack, Present: present, Generation: gen, Now: now,
	})
	if err != nil && !errors.Is(err, store.ErrLeaseLost) {
		return fmt.Errorf("record stack %s: %w", stack, err)
	}
	return nil
}

func (w *Watcher) advance(ctx context.Context, h HistoryEntry, now time.Time) error {
	err := w.cfg.Cursors.WatchCursorAdvance(ctx, store.WatchCursorAdvanceParams{
		Backend: w.backend.Name, Stack: h.Ref.Key(), Nanos: h.Nanos, Key: h.Key, Now: now,
	})
	if err != nil {
		return fmt.Errorf("advance the watch cursor of %s: %w", h.Ref.Key(), err)
	}
	return nil
}

// emitStack emits stack_created or stack_deleted for ref's gen-th life.
func (w *Watcher) emitStack(ctx context.Context, f webhook.Filter, ref StackRef, gen int) error {
	if ref.Project == "" {
		w.log.Warn("legacy layout: the path does not name the stack's project, so no stack event is emitted", "stack", ref.Name, "event", string(f))
		return nil
	}
	res, err := w.cfg.Emitter.Emit(ctx, engine.EmitParams{
		Filter:         f,
		Subject:        webhook.Scope{Org: w.cfg.Org, Project: ref.Project, Stack: ref.Name},
		IdempotencyKey: IdempotencyKey(fmt.Sprintf("%s.json#%s.%d", ref.CheckpointBase(), f, gen)),
	})
	if err != nil {
		return fmt.Errorf("emit %s for %s: %w", f, ref.Key(), err)
	}
	w.count(res)
	return nil
}

// emitEntry reads a history entry, emits its event and moves the cursor past it.
func (w *Watcher) emitEntry(ctx context.Context, h HistoryEntry) error {
	now := w.cfg.Now()
	e, err := w.backend.ReadEntry(ctx, h)
	var notEntry *decodeError
	switch {
	case errors.As(err, &notEntry):
		// Permanent: an object with an entry's name that is not one. Skip it, loudly.
		w.log.Error("skipping a history entry that cannot be decoded", "key", h.Key, "error", err)
		return w.advance(ctx, h, now)
	case err != nil:
		return err
	}
	if o, ok := w.owners[h.Ref.Key()]; ok && lockDuring(o, e) {
		e.RunBy = o.Username
	}
	p, ok, err := e.EmitParams(w.cfg.Org)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		w.log.Debug("history entry is not an event", "key", h.Key, "kind", string(e.Kind), "result", string(e.Result))
	case h.Ref.Project == "":
		w.log.Warn("legacy layout: the path does not name the stack's project, so no event is emitted", "key", h.Key)
	default:
		res, err := w.cfg.Emitter.Emit(ctx, p)
		var bad webhook.FieldErrors
		switch {
		case errors.As(err, &bad):
			// Permanent: the engine refuses the event itself (retrying cannot help).
			w.log.Error("skipping a history entry whose event the engine refuses", "key", h.Key, "error", err)
		case err != nil:
			return fmt.Errorf("emit %s for %s: %w", p.Filter, h.Key, err)
		default:
			w.count(res)
		}
	}
	return w.advance(ctx, h, now)
}

func (w *Watcher) count(res *engine.EmitResult) {
	if res == nil || res.Replayed {
		return
	}
	w.mu.Lock()
	w.events++
	w.mu.Unlock()
}

// lockWindow is how long before a run's start its lock may have been taken: `pulumi up`
// locks the stack before its preview and the confirmation prompt.
const lockWindow = 15 * 60

// lockDuring reports whether lock o was taken for the run of entry e (timestamps in
// seconds, so a second of slack after the end).
func lockDuring(o LockOwner, e *Entry) bool {
	t := o.Timestamp.Unix()
	return t >= e.StartTime-lockWindow && t <= e.EndTime+1
}
