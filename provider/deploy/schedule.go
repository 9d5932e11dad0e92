package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// cronParser reads standard five-field cron expressions, an optional leading seconds field,
// and descriptors such as @hourly and @every 10m.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron checks a drift schedule's cron expression and returns when it next fires after now.
func ParseCron(expr string, now time.Time) (time.Time, error) {
	sched, err := cronParser.Parse(expr)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a cron expression (%v): give five fields \"minute hour day-of-month month day-of-week\", optionally a leading seconds field, e.g. \"0 */6 * * *\"", expr, err)
	}
	next := sched.Next(now)
	if next.IsZero() {
		return time.Time{}, fmt.Errorf("%q never fires", expr)
	}
	return next, nil
}

// SchedulerConfig builds a Scheduler. Engine is required.
type SchedulerConfig struct {
	Engine *engine.Engine
	Store  store.Store
	Logger *slog.Logger
	// Interval is how often due schedules are looked for (default one second).
	Interval time.Duration
	// Wake, when set, is called after a deployment is queued (Runner.Wake).
	Wake func()
	Now  func() time.Time
}

// Scheduler fires drift schedules. Start it once; Stop ends it.
type Scheduler struct {
	cfg    SchedulerConfig
	cancel context.CancelFunc
	done   chan struct{}
}

// NewScheduler builds a Scheduler.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Engine == nil {
		return nil, errors.New("deploy: SchedulerConfig.Engine is required")
	}
	if cfg.Store == nil {
		cfg.Store = cfg.Engine.Config().Store
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wake == nil {
		cfg.Wake = func() {}
	}
	return &Scheduler{cfg: cfg}, nil
}

// Start starts the loop.
func (s *Scheduler) Start(ctx context.Context) error {
	if s.done != nil {
		return errors.New("deploy: the scheduler was started already")
	}
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		for {
			s.Tick(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop stops the loop and waits for it.
func (s *Scheduler) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}

// Tick fires the schedules due now.
func (s *Scheduler) Tick(ctx context.Context) {
	now := s.cfg.Now()
	due, err := s.cfg.Store.DriftScheduleDue(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Error("read due drift schedules", "error", err)
		}
		return
	}
	for _, sc := range due {
		next, err := ParseCron(sc.ScheduleCron, now)
		if err != nil {
			s.cfg.Logger.Error("drift schedule has a bad cron expression", "schedule", sc.ID, "error", err)
			next = now.Add(24 * time.Hour)
		}
		won, err := s.cfg.Store.DriftScheduleAdvance(ctx, store.DriftScheduleAdvanceParams{ID: sc.ID, From: sc.NextRunAt, To: next, Now: now})
		if err != nil || !won {
			continue
		}
		// Firings while a drift run is still waiting or running add nothing.
		if busy, err := s.cfg.Store.DeploymentPending(ctx, sc.Stack, webhook.OperationDetectDrift); err != nil || busy {
			continue
		}
		d, _, err := s.cfg.Engine.DeploymentCreate(ctx, engine.DeploymentCreateParams{
			Stack: sc.Stack, Operation: webhook.OperationDetectDrift, Source: engine.DeploymentSourceSchedule, AutoRemediate: sc.AutoRemediate,
		})
		if err != nil {
			s.cfg.Logger.Error("queue the drift detection of a schedule", "schedule", sc.ID, "stack", sc.Stack.String(), "error", err)
			continue
		}
		s.cfg.Logger.Info("drift schedule fired", "schedule", sc.ID, "stack", sc.Stack.String(), "deployment", d.ID, "next", next)
		s.cfg.Wake()
	}
}
