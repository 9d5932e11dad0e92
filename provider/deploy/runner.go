package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Defaults for Config fields left zero.
const (
	WorkersDefault          = 1
	PollIntervalDefault     = time.Second
	ProgressIntervalDefault = 2 * time.Second
	// OperationTimeoutDefault bounds one deployment's run.
	OperationTimeoutDefault = time.Hour
)

// Config builds a Runner. Engine is required.
type Config struct {
	Engine *engine.Engine
	// Store is the engine's store when nil.
	Store  store.Store
	Logger *slog.Logger
	// Workers is how many deployments run at once in this process (of different stacks).
	Workers int
	// Worker names this runner in the store; unique per process (hostname/pid by default).
	Worker string
	// PollInterval is how often the queue is looked at when nothing wakes the runner.
	PollInterval time.Duration
	// ProgressInterval is how often a run's log is saved and a cancel looked for.
	ProgressInterval time.Duration
	// OperationTimeout bounds one run.
	OperationTimeout time.Duration
	// WorkDir holds the temporary workspaces of git sources; os.TempDir when empty.
	WorkDir string
	// Env is the base environment of the pulumi CLI and pre-run commands (os.Environ when
	// nil); the stack's settings add theirs.
	Env []string
	// LogMaxBytes bounds the log kept per deployment.
	LogMaxBytes int
	Now         func() time.Time
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Store == nil && c.Engine != nil {
		c.Store = c.Engine.Config().Store
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Workers == 0 {
		c.Workers = WorkersDefault
	}
	if c.Worker == "" {
		host, _ := os.Hostname()
		c.Worker = fmt.Sprintf("deploy/%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = ProgressIntervalDefault
	}
	if c.OperationTimeout == 0 {
		c.OperationTimeout = OperationTimeoutDefault
	}
	if c.WorkDir == "" {
		c.WorkDir = os.TempDir()
	}
	if c.Env == nil {
		c.Env = os.Environ()
	}
	if c.LogMaxBytes == 0 {
		c.LogMaxBytes = LogMaxBytesDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Engine == nil:
		return errors.New("deploy: Config.Engine is required")
	case c.Workers < 0:
		return fmt.Errorf("deploy: Config.Workers is %d: give a positive number", c.Workers)
	case c.PollInterval < 0 || c.ProgressInterval < 0 || c.OperationTimeout < 0:
		return errors.New("deploy: Config intervals must be positive")
	}
	return nil
}

// Runner runs queued deployments. Start it once; Stop ends it.
type Runner struct {
	cfg   Config
	store store.Store
	eng   *engine.Engine
	log   *slog.Logger

	wake   chan struct{}
	slots  chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	runs   sync.WaitGroup
	counts counts
}

// New builds a Runner.
func New(cfg Config) (*Runner, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Runner{cfg: cfg, store: cfg.Store, eng: cfg.Engine, log: cfg.Logger.With("component", "deploy"),
		wake: make(chan struct{}, 1), slots: make(chan struct{}, cfg.Workers)}, nil
}

// Config returns the runner's configuration with its defaults.
func (r *Runner) Config() Config { return r.cfg }

// Wake makes the runner look at the queue now.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Start starts the claim loop.
func (r *Runner) Start(ctx context.Context) error {
	if r.done != nil {
		return errors.New("deploy: the runner was started already")
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go r.loop(ctx)
	r.log.Info("deployment runner started", "workers", r.cfg.Workers, "worker", r.cfg.Worker)
	return nil
}

// Stop stops claiming and cancels the runs in progress; they are recorded as failed (the
// server stopped) before Stop returns, or when ctx ends, whichever comes first.
func (r *Runner) Stop(ctx context.Context) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	finished := make(chan struct{})
	go func() {
		<-r.done
		r.runs.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
	}
}

func (r *Runner) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		r.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// round fails the deployments of dead runners, then claims work for the free slots.
func (r *Runner) round(ctx context.Context) {
	failed, err := r.store.DeploymentFailDead(ctx, store.DeploymentFailDeadParams{Now: r.cfg.Now()})
	if err != nil && ctx.Err() == nil {
		r.log.Error("look for deployments of dead runners", "error", err)
	}
	for _, d := range failed {
		r.log.Warn("deployment failed: its runner died", "deployment", d.ID, "stack", d.Stack.String(), "reason", d.Reason)
		r.counts.add(d.Status)
		r.emitDeployment(ctx, d, "deployment_failed")
	}
	free := cap(r.slots) - len(r.slots)
	if free == 0 || ctx.Err() != nil {
		return
	}
	ds, err := r.store.DeploymentClaim(ctx, store.DeploymentClaimParams{Worker: r.cfg.Worker, Now: r.cfg.Now(), Limit: free})
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("claim deployments", "error", err)
		}
		return
	}
	for _, d := range ds {
		r.slots <- struct{}{}
		r.runs.Add(1)
		go func() {
			defer func() {
				<-r.slots
				r.runs.Done()
				r.Wake()
			}()
			r.run(ctx, d)
		}()
	}
}
