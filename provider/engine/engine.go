package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/render"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/sender"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Defaults for Config fields left zero.
const (
	WorkersDefault           = 32
	PerEndpointLimitDefault  = 4
	TimeoutDefault           = 15 * time.Second
	ResponseBodyLimitDefault = 64 << 10
	PollIntervalDefault      = 250 * time.Millisecond
	RetryAfterMaxDefault     = time.Hour
	ShutdownTimeoutDefault   = 30 * time.Second
	// MaxDeploymentRequestsPerEventDefault bounds the deployment requests one event queues,
	// counting those of the deployment_queued events it sets off.
	MaxDeploymentRequestsPerEventDefault = 100
	// MaxDeploymentChainLengthDefault bounds how many deployment requests follow one another
	// in a chain (a deployment_queued event whose pulumi_deployments hook requests the next).
	MaxDeploymentChainLengthDefault = 16
)

// PerOrgLimitDefault is the default Config.PerOrgLimit for a process with workers workers: all
// but an eighth of them, keeping at least one for other organizations (28 of the default 32).
// A single worker cannot be shared, so one worker's cap is 1.
func PerOrgLimitDefault(workers int) int {
	if workers <= 1 {
		return 1
	}
	return workers - max(1, workers/8)
}

// RetryScheduleDefault spreads eight retries over about a day: after the first attempt fails,
// the next ones wait these delays (each with up to ±20% jitter).
var RetryScheduleDefault = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	30 * time.Minute, 2 * time.Hour, 6 * time.Hour, 14 * time.Hour,
}

// Config builds an Engine. Only Store is required.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Version goes into the User-Agent header: pulumi-webhooks/<Version>.
	Version string
	// AllowTargets lets deliveries reach addresses the SSRF guard would refuse (loopback,
	// private ranges...). Empty means only public addresses are reachable.
	AllowTargets []netip.Prefix
	// Workers is how many deliveries one process sends at once.
	Workers int
	// PerEndpointLimit caps concurrent deliveries to one endpoint (host:port), across workers
	// and processes.
	PerEndpointLimit int
	// PerOrgLimit caps how many of this process's workers one organization's deliveries hold at
	// once, so that one organization's slow endpoints cannot take every worker while another
	// organization's deliveries wait. 0 means PerOrgLimitDefault(Workers): every worker but
	// an eighth (at least one is kept for the others). Set it to Workers for no cap.
	PerOrgLimit int
	// Timeout bounds one HTTP attempt. Lease, the time a claim is held, is derived from it.
	Timeout time.Duration
	// RetrySchedule lists the waits between attempts; its length is the number of retries.
	RetrySchedule []time.Duration
	// RetryAfterMax bounds how long a Retry-After header can delay the next attempt.
	RetryAfterMax time.Duration
	// ResponseBodyLimit caps how much of a response body is read and recorded.
	ResponseBodyLimit int
	// PollInterval is how often idle workers look for work emitted by other processes.
	PollInterval time.Duration
	// MaxDeploymentRequestsPerEvent bounds the deployment requests one Emit queues in all, and
	// MaxDeploymentChainLength how many follow one another in a chain; requests past either
	// are recorded with status skipped and the reason, and go no further (see Emit).
	MaxDeploymentRequestsPerEvent int
	MaxDeploymentChainLength      int
	// ConsoleURL is the base of links in payloads (updateUrl, deploymentUrl);
	// render.ConsoleURLDefault when empty.
	ConsoleURL string
	// OrgDisplayNames are the organizations' display names, the organization.name of their
	// payloads; an organization without one is shown by its name.
	OrgDisplayNames webhook.OrgDisplayNames
	// Observer, when set, is told about every attempt (for metrics).
	Observer Observer
}

// Observer receives delivery outcomes; the server implements it with Prometheus metrics.
type Observer interface {
	// AttemptFinished is called after every HTTP attempt with its outcome: "succeeded",
	// "retry", "failed" (given up), or "discarded".
	AttemptFinished(outcome string, duration time.Duration)
	// HookDisabled is called when the engine deactivates a hook.
	HookDisabled(reason string)
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Workers == 0 {
		c.Workers = WorkersDefault
	}
	if c.PerEndpointLimit == 0 {
		c.PerEndpointLimit = PerEndpointLimitDefault
	}
	if c.PerOrgLimit == 0 && c.Workers > 0 {
		c.PerOrgLimit = PerOrgLimitDefault(c.Workers)
	}
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	if c.RetrySchedule == nil {
		c.RetrySchedule = RetryScheduleDefault
	}
	if c.RetryAfterMax == 0 {
		c.RetryAfterMax = RetryAfterMaxDefault
	}
	if c.ResponseBodyLimit == 0 {
		c.ResponseBodyLimit = ResponseBodyLimitDefault
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.MaxDeploymentRequestsPerEvent == 0 {
		c.MaxDeploymentRequestsPerEvent = MaxDeploymentRequestsPerEventDefault
	}
	if c.MaxDeploymentChainLength == 0 {
		c.MaxDeploymentChainLength = MaxDeploymentChainLengthDefault
	}
	if c.ConsoleURL == "" {
		c.ConsoleURL = render.ConsoleURLDefault
	}
	return c
}

func (c Config) validate() error {
	if err := c.OrgDisplayNames.Validate(); err != nil {
		return fmt.Errorf("engine: Config.OrgDisplayNames: %w", err)
	}
	switch {
	case c.Store == nil:
		return errors.New("engine: Config.Store is required")
	case c.Workers < 0:
		return fmt.Errorf("engine: Config.Workers is %d: give a positive number of workers", c.Workers)
	case c.PerEndpointLimit < 0:
		return fmt.Errorf("engine: Config.PerEndpointLimit is %d: give a positive limit", c.PerEndpointLimit)
	case c.PerOrgLimit < 0:
		return fmt.Errorf("engine: Config.PerOrgLimit is %d: give a positive limit (Workers for no cap)", c.PerOrgLimit)
	case c.Timeout < 0:
		return fmt.Errorf("engine: Config.Timeout is %s: give a positive duration", c.Timeout)
	case c.RetryAfterMax < 0:
		return fmt.Errorf("engine: Config.RetryAfterMax is %s: give a positive duration", c.RetryAfterMax)
	case c.PollInterval < 0:
		return fmt.Errorf("engine: Config.PollInterval is %s: give a positive duration", c.PollInterval)
	case c.ResponseBodyLimit < 0:
		return fmt.Errorf("engine: Config.ResponseBodyLimit is %d: give a positive number of bytes", c.ResponseBodyLimit)
	case c.MaxDeploymentRequestsPerEvent < 0:
		return fmt.Errorf("engine: Config.MaxDeploymentRequestsPerEvent is %d: give a positive number of requests", c.MaxDeploymentRequestsPerEvent)
	case c.MaxDeploymentChainLength < 0:
		return fmt.Errorf("engine: Config.MaxDeploymentChainLength is %d: give a positive number of requests", c.MaxDeploymentChainLength)
	}
	for i, d := range c.RetrySchedule {
		if d <= 0 {
			return fmt.Errorf("engine: Config.RetrySchedule[%d] is %s: every wait must be positive", i, d)
		}
	}
	return nil
}

// Lease is how long a worker holds a claimed delivery: longer than any attempt can take, so a
// live worker's claim is never taken, and short enough that a dead worker's work comes back.
func (c Config) Lease() time.Duration { return 2*c.Timeout + 15*time.Second }

// Engine matches events to hooks, stores them with their deliveries, and runs the workers that
// deliver them. It is safe for concurrent use. See the package documentation for the delivery
// state machine.
type Engine struct {
	cfg    Config
	store  store.Store
	log    *slog.Logger
	sender *sender.Sender
	// worker names this engine's claims in the store (ClaimedBy): unique per Engine value.
	worker string
	// wake tells idle workers of this process that Emit stored new deliveries.
	wake chan struct{}

	mu  sync.Mutex
	run *workerRun // nil when the workers are not running
}

// New builds an Engine from cfg: defaults are filled, then the configuration is checked.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	snd, err := sender.New(sender.Config{
		Timeout:           cfg.Timeout,
		AllowTargets:      cfg.AllowTargets,
		UserAgent:         "pulumi-webhooks/" + cfg.Version,
		ResponseBodyLimit: cfg.ResponseBodyLimit,
		Now:               cfg.Now,
		RetryAfterMax:     cfg.RetryAfterMax,
	})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return &Engine{
		cfg:    cfg,
		store:  cfg.Store,
		log:    cfg.Logger,
		sender: snd,
		worker: workerName(),
		wake:   make(chan struct{}, 1),
	}, nil
}

// Config returns the engine's configuration with its defaults filled in.
func (e *Engine) Config() Config { return e.cfg }
