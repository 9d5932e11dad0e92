package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/console"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/deploy"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/render"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/retention"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Defaults of serve's flags.
const (
	ListenDefault    = "127.0.0.1:8080"
	LogFormatDefault = "text"
	LogLevelDefault  = "info"
	// MaxHeaderBytesDefault bounds a request's headers and URL together.
	MaxHeaderBytesDefault = 64 << 10
)

type serveOpts struct {
	storeOpts
	targetOpts
	names            orgNameOpts
	listen           string
	logFormat        string
	logLevel         string
	workers          int
	perEndpointLimit int
	perOrgLimit      int
	maxDeployRequest int
	maxDeployChain   int
	attemptTimeout   time.Duration
	retrySchedule    []string
	pollInterval     time.Duration
	shutdownTimeout  time.Duration
	maxBodyBytes     int64
	consoleURL       string
	console          bool
	retention        time.Duration
	responseLimit    int
	rateLimit        float64
	rateBurst        int
	tlsCert          string
	tlsKey           string
	watch            watchOpts
	deployWorkers    int
}

func newServeCmd(o Opts) *cobra.Command {
	var so serveOpts
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the webhook REST API and the delivery workers",
		Long: `serve runs the Pulumi Cloud webhook REST API (organization, stack and environment
webhooks, plus POST /api/orgs/{org}/events to fire events) and the delivery workers in
one process, on the SQLite store. It also serves /healthz, /readyz and Prometheus
/metrics. Deliveries emitted by other processes into the same store are picked up too.
With --watch URL it also fires the events of a self-managed Pulumi backend by itself
(stack_created, update_*, refresh_*, destroy_*, stack_deleted), as Pulumi Cloud does.

On SIGTERM or SIGINT it stops accepting requests and work, lets attempts in flight finish
within --shutdown-timeout, and exits 0; anything unfinished is delivered after the next
start. API requests authenticate with "Authorization: token <t>"; create tokens with
` + "`pulumi-webhooks token create`." + `

With --tls-cert and --tls-key it serves HTTPS (TLS 1.2 or later) instead of HTTP. Each API
token may make --rate-limit requests per second on average and --rate-burst at once; more
are answered 429 with a Retry-After header.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, stop, so, o)
		},
	}
	f := cmd.Flags()
	so.storeOpts.addFlags(cmd)
	so.targetOpts.addFlags(cmd)
	so.names.addFlags(cmd)
	f.StringVar(&so.listen, "listen", ListenDefault, "address to serve the API on, host:port")
	f.StringVar(&so.logFormat, "log-format", LogFormatDefault, "log format: text or json")
	f.StringVar(&so.logLevel, "log-level", LogLevelDefault, "lowest level logged: debug, info, warn or error")
	f.IntVar(&so.workers, "workers", engine.WorkersDefault, "deliveries sent at once by this process")
	f.IntVar(&so.perEndpointLimit, "per-endpoint-limit", engine.PerEndpointLimitDefault, "deliveries sent at once to one host:port, across processes")
	f.IntVar(&so.perOrgLimit, "per-org-limit", 0, "workers one organization's deliveries may hold at once (0: every worker but an eighth, so others always get one; --workers for no cap)")
	f.IntVar(&so.maxDeployRequest, "max-deployment-requests-per-event", engine.MaxDeploymentRequestsPerEventDefault,
		"deployment requests one event may queue through pulumi_deployments hooks; the rest are recorded as skipped")
	f.IntVar(&so.maxDeployChain, "max-deployment-chain-length", engine.MaxDeploymentChainLengthDefault,
		"deployments that may follow one another in a chain of pulumi_deployments hooks; longer chains are recorded as skipped")
	f.DurationVar(&so.attemptTimeout, "attempt-timeout", engine.TimeoutDefault, "time limit of one delivery attempt")
	f.StringSliceVar(&so.retrySchedule, "retry-schedule", nil, "waits between attempts, e.g. 5s,30s,2m (default about a day in 8 retries)")
	f.DurationVar(&so.pollInterval, "poll-interval", engine.PollIntervalDefault, "how often idle workers look for deliveries emitted by other processes")
	f.DurationVar(&so.shutdownTimeout, "shutdown-timeout", engine.ShutdownTimeoutDefault, "how long in-flight requests and attempts may take to finish on shutdown")
	f.Int64Var(&so.maxBodyBytes, "max-body-bytes", server.MaxBodyBytesDefault, "largest request body accepted; larger ones get 413")
	f.StringVar(&so.consoleURL, "console-url", render.ConsoleURLDefault,
		"base of the console links in payloads (updateUrl, deploymentUrl); this server's own URL (e.g. http://127.0.0.1:8080) makes them open its web console")
	f.BoolVar(&so.console, "console", true, "serve the web console at / (sign in with an API token)")
	f.DurationVar(&so.retention, "retention", retention.RetentionDefault,
		"how long events, deliveries, attempts and idempotency keys are kept (pending work is never deleted); 0 keeps everything")
	f.IntVar(&so.responseLimit, "response-body-limit", engine.ResponseBodyLimitDefault, "bytes of each delivery response body read and stored with its attempt")
	f.Float64Var(&so.rateLimit, "rate-limit", float64(server.RateLimitDefault), "API requests per second one token may make on average (more get 429 with Retry-After); 0 turns the limit off")
	f.IntVar(&so.rateBurst, "rate-burst", server.RateBurstDefault, "API requests one token may make at once, above --rate-limit")
	f.StringVar(&so.tlsCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS instead of HTTP; needs --tls-key")
	f.StringVar(&so.tlsKey, "tls-key", "", "PEM private key file of --tls-cert")
	f.IntVar(&so.deployWorkers, "deployment-workers", deploy.WorkersDefault,
		"deployments (real Pulumi operations of different stacks) run at once by this process, and drift schedules fired; 0 runs none")
	for _, name := range []string{"listen", "log-format", "log-level", "workers", "per-endpoint-limit", "per-org-limit",
		"max-deployment-requests-per-event", "max-deployment-chain-length", "attempt-timeout",
		"retry-schedule", "poll-interval", "shutdown-timeout", "max-body-bytes", "console-url", "console", "retention", "response-body-limit",
		"rate-limit", "rate-burst", "tls-cert", "tls-key", "deployment-workers"} {
		withEnv(f, name, EnvPrefix+strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	so.watch.addFlags(cmd)
	return cmd
}

// newLogger builds the slog logger --log-format and --log-level ask for.
func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

func (so serveOpts) engineConfig(o Opts, log *slog.Logger) (engine.Config, error) {
	cfg := engine.Config{
		Logger: log, Version: o.Version, Workers: so.workers, PerEndpointLimit: so.perEndpointLimit,
		Timeout: so.attemptTimeout, PollInterval: so.pollInterval, ConsoleURL: so.consoleURL,
		ResponseBodyLimit: so.responseLimit, PerOrgLimit: so.perOrgLimit,
		MaxDeploymentRequestsPerEvent: so.maxDeployRequest, MaxDeploymentChainLength: so.maxDeployChain,
	}
	var errs []error
	names, err := so.names.names()
	if err != nil {
		errs = append(errs, err)
	}
	cfg.OrgDisplayNames = names
	if so.workers < 1 {
		errs = append(errs, fmt.Errorf("--workers %d: give at least 1", so.workers))
	}
	if so.perEndpointLimit < 1 {
		errs = append(errs, fmt.Errorf("--per-endpoint-limit %d: give at least 1", so.perEndpointLimit))
	}
	if so.perOrgLimit < 0 || so.perOrgLimit > max(so.workers, 1) {
		errs = append(errs, fmt.Errorf("--per-org-limit %d: give 1 to --workers (%d), or 0 for the default", so.perOrgLimit, so.workers))
	}
	if so.maxDeployRequest < 1 {
		errs = append(errs, fmt.Errorf("--max-deployment-requests-per-event %d: give at least 1", so.maxDeployRequest))
	}
	if so.maxDeployChain < 1 {
		errs = append(errs, fmt.Errorf("--max-deployment-chain-length %d: give at least 1", so.maxDeployChain))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"attempt-timeout", so.attemptTimeout}, {"poll-interval", so.pollInterval}, {"shutdown-timeout", so.shutdownTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("--%s %s: give a positive duration such as 10s", d.flag, d.v))
		}
	}
	if so.maxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("--max-body-bytes %d: give a positive size", so.maxBodyBytes))
	}
	if so.retention < 0 {
		errs = append(errs, fmt.Errorf("--retention %s: give a positive duration such as 720h (30 days), or 0 to keep everything", so.retention))
	} else if so.retention > 0 && so.retention < engine.IdempotencyWindow {
		errs = append(errs, fmt.Errorf("--retention %s: give at least %s, so that an idempotency key outlives the window in which it replays", so.retention, engine.IdempotencyWindow))
	}
	if so.responseLimit < 1 {
		errs = append(errs, fmt.Errorf("--response-body-limit %d: give a positive number of bytes such as 65536", so.responseLimit))
	}
	if so.rateLimit < 0 || math.IsNaN(so.rateLimit) || math.IsInf(so.rateLimit, 0) {
		errs = append(errs, fmt.Errorf("--rate-limit %g: give requests per second, e.g. 50, or 0 for no limit", so.rateLimit))
	}
	if so.rateBurst < 1 {
		errs = append(errs, fmt.Errorf("--rate-burst %d: give at least 1", so.rateBurst))
	}
	for i, s := range so.retrySchedule {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("--retry-schedule entry %d (%q): give a positive duration such as 30s", i+1, s))
			continue
		}
		cfg.RetrySchedule = append(cfg.RetrySchedule, d)
	}
	allow, err := so.prefixes()
	if err != nil {
		errs = append(errs, err)
	}
	cfg.AllowTargets = allow
	return cfg, errors.Join(errs...)
}

// serverConfig adds the flags' settings to cfg.
func (so serveOpts) serverConfig(cfg server.Config) server.Config {
	cfg.MaxBodyBytes = so.maxBodyBytes
	cfg.RateLimit, cfg.RateBurst = rate.Limit(so.rateLimit), so.rateBurst
	if so.rateLimit == 0 {
		cfg.RateLimit = rate.Inf
	}
	return cfg
}

// tlsConfig loads --tls-cert and --tls-key, or returns nil to serve plain HTTP.
func (so serveOpts) tlsConfig() (*tls.Config, error) {
	switch {
	case so.tlsCert == "" && so.tlsKey == "":
		return nil, nil
	case so.tlsCert == "":
		return nil, errors.New("--tls-key is set without --tls-cert: give both to serve HTTPS, or neither")
	case so.tlsKey == "":
		return nil, errors.New("--tls-cert is set without --tls-key: give both to serve HTTPS, or neither")
	}
	cert, err := tls.LoadX509KeyPair(so.tlsCert, so.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w (give a PEM certificate and its PEM private key)", so.tlsCert, so.tlsKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// runServe serves until ctx ends (a signal), then shuts down gracefully. stop restores the
// default signal behaviour, so a second signal during shutdown kills the process.
func runServe(ctx context.Context, stop func(), so serveOpts, o Opts) (err error) {
	log, err := newLogger(so.logFormat, so.logLevel, o.Stderr)
	if err != nil {
		return err
	}
	if so.deployWorkers < 0 {
		return fmt.Errorf("--deployment-workers %d: give 0 (run no deployments) or a positive number", so.deployWorkers)
	}
	cfg, err := so.engineConfig(o, log)
	if err != nil {
		return err
	}
	tlsCfg, err := so.tlsConfig()
	if err != nil {
		return err
	}
	st, err := so.open(ctx, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	metrics := server.NewMetrics()
	cfg.Store, cfg.Observer = st, metrics
	e, err := engine.New(cfg)
	if err != nil {
		return err
	}
	metrics.WatchQueue(e.QueueStats)
	watchers, err := so.watch.open(ctx, e, st, log)
	if err != nil {
		return err
	}
	defer closeWatchers(watchers)
	registerWatchMetrics(metrics, watchers)
	watchDetails := readyDetails(watchers)
	// The deployment runner, when this process runs one; set below, before the server serves.
	var runner *deploy.Runner
	scfg := so.serverConfig(server.Config{Engine: e, Store: st, Logger: log, Metrics: metrics,
		ReadyDetails: func() map[string]any {
			m := map[string]any{}
			if watchDetails != nil {
				maps.Copy(m, watchDetails())
			}
			if runner != nil {
				m["deploymentRunner"] = runner.Status()
			}
			return m
		}, ParseCron: deploy.ParseCron})
	var srv *server.Server
	if so.console {
		// The console authenticates with the server's own token check; srv is set below,
		// before the first request can arrive.
		con, err := console.New(console.Config{Engine: e, Store: st, Logger: log,
			Authenticate: func(ctx context.Context, token string) (*store.Token, error) {
				return srv.AuthenticateToken(ctx, token)
			},
			AuthenticateID: func(ctx context.Context, id string) (*store.Token, error) {
				return srv.AuthenticateTokenID(ctx, id)
			}})
		if err != nil {
			return err
		}
		scfg.Console = con.Handler()
	}
	srv, err = server.New(scfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", so.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", so.listen, err)
	}

	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		// Headers and the URL are small in every API call; bigger ones are 431, not 1 MiB
		// of names to check and quote.
		MaxHeaderBytes: MaxHeaderBytesDefault,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// The workers' context is not the signal's: a signal stops them gracefully through Stop.
	if err := e.Start(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		return err
	}
	if so.retention > 0 {
		pruner, err := retention.New(retention.Config{Store: st, Logger: log, Retention: so.retention})
		if err != nil {
			ln.Close()
			return err
		}
		metrics.Registry().MustRegister(pruner.Collector())
		if err := pruner.Start(context.WithoutCancel(ctx)); err != nil {
			ln.Close()
			return err
		}
		defer pruner.Stop()
	}
	for _, w := range watchers {
		if err := w.Start(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		log.Info("watching backend", "backend", w.Backend().Masked, "org", so.watch.org, "interval", so.watch.interval.String())
	}
	if so.deployWorkers > 0 {
		if runner, err = deploy.New(deploy.Config{Engine: e, Store: st, Logger: log, Workers: so.deployWorkers}); err != nil {
			ln.Close()
			return err
		}
		metrics.Registry().MustRegister(runner.Collector())
		sched, err := deploy.NewScheduler(deploy.SchedulerConfig{Engine: e, Store: st, Logger: log, Wake: runner.Wake})
		if err != nil {
			ln.Close()
			return err
		}
		if err := runner.Start(context.WithoutCancel(ctx)); err != nil {
			ln.Close()
			return err
		}
		if err := sched.Start(context.WithoutCancel(ctx)); err != nil {
			ln.Close()
			return err
		}
		defer sched.Stop()
	}
	serveErr := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			hs.TLSConfig = tlsCfg
			serveErr <- hs.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		serveErr <- hs.Serve(ln)
	}()
	log.Info("listening", "addr", ln.Addr().String(), "tls", tlsCfg != nil, "store", so.storeOpts.describe(), "version", o.Version)

	var failed error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		failed = fmt.Errorf("serve: %w", err)
	}
	stop()
	log.Info("shutting down", "timeout", so.shutdownTimeout.String())
	srv.Drain()
	closeWatchers(watchers) // no new events; those stored are delivered below or after restart
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), so.shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := hs.Shutdown(sctx); err != nil {
			log.Warn("open API requests were cut off at the shutdown deadline", "error", err)
		}
	})
	if runner != nil {
		// Runs in progress are stopped and recorded as failed (never silently re-run).
		runner.Stop(sctx)
	}
	wg.Go(func() {
		if err := e.Stop(sctx); err != nil {
			// The aborted attempts were recorded for retry; the next start delivers them.
			log.Warn("delivery workers stopped at the shutdown deadline", "error", err)
		}
	})
	wg.Wait()
	log.Info("stopped")
	return failed
}
