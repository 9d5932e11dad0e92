package server

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// MetricsNamespace prefixes every metric name.
const MetricsNamespace = "pulumi_webhooks"

// The outcomes the engine reports for an attempt.
var attemptOutcomes = engine.Outcomes()

// StatsFunc reads the queue's state; the engine's QueueStats is one.
type StatsFunc func(context.Context) (store.QueueStats, error)

// Metrics is the server's Prometheus registry. It is the engine's Observer (attempt outcomes
// and latencies, hooks disabled) and reads the queue's depth and age when scraped.
type Metrics struct {
	registry       *prometheus.Registry
	deliveries     *prometheus.CounterVec
	attemptSeconds *prometheus.HistogramVec
	hooksDisabled  prometheus.Counter
	httpRequests   *prometheus.CounterVec
	httpSeconds    *prometheus.HistogramVec

	mu    sync.Mutex
	stats StatsFunc
	now   func() time.Time
}

var _ engine.Observer = (*Metrics)(nil)

// NewMetrics builds the registry with the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		now:      time.Now,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: MetricsNamespace, Name: "delivery_attempts_total",
			Help: "Delivery attempts by outcome: succeeded, retry (will be tried again), failed (given up), discarded.",
		}, []string{"outcome"}),
		attemptSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: MetricsNamespace, Name: "delivery_attempt_duration_seconds",
			Help:    "How long delivery attempts took, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		hooksDisabled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: MetricsNamespace, Name: "hooks_disabled_total",
			Help: "Webhooks the engine deactivated (e.g. the endpoint answered 410 Gone).",
		}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: MetricsNamespace, Name: "http_requests_total",
			Help: "API requests by route pattern (\"unmatched\" for any other path), method (\"other\" for a non-standard one) and status code.",
		}, []string{"route", "method", "code"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: MetricsNamespace, Name: "http_request_duration_seconds",
			Help:    "API request latency by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	for _, o := range attemptOutcomes {
		m.deliveries.WithLabelValues(o)
	}
	m.registry.MustRegister(m.deliveries, m.attemptSeconds, m.hooksDisabled, m.httpRequests, m.httpSeconds,
		queueCollector{m}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WatchQueue sets where the queue gauges come from; until it is called they are absent.
func (m *Metrics) WatchQueue(f StatsFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats = f
}

// AttemptFinished implements engine.Observer.
func (m *Metrics) AttemptFinished(outcome string, d time.Duration) {
	m.deliveries.WithLabelValues(outcome).Inc()
	m.attemptSeconds.WithLabelValues(outcome).Observe(d.Seconds())
}

// HookDisabled implements engine.Observer. The reason is logged by the engine, not used as a
// label, so the metric's cardinality stays fixed.
func (m *Metrics) HookDisabled(string) { m.hooksDisabled.Inc() }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

func (m *Metrics) observeRequest(route, method string, code int, d time.Duration) {
	m.httpRequests.WithLabelValues(route, methodLabel(method), codeLabel(code)).Inc()
	m.httpSeconds.WithLabelValues(route).Observe(d.Seconds())
}

// OtherLabel is the label value of an HTTP method, route or status code the metrics do not
// know: a client can invent any number of those, and each new label value would be a new
// series kept for the life of the process.
const OtherLabel = "other"

// methodLabel returns the method as a label when it is one of HTTP's standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return OtherLabel
}

// codeLabel returns the status code as a label when it is a valid HTTP status.
func codeLabel(code int) string {
	if code < 100 || code > 599 {
		return OtherLabel
	}
	return strconv.Itoa(code)
}

var (
	queueDepthDesc = prometheus.NewDesc(MetricsNamespace+"_queue_depth",
		"Deliveries waiting (pending) or being attempted (running).", []string{"state"}, nil)
	oldestDueDesc = prometheus.NewDesc(MetricsNamespace+"_oldest_due_delivery_age_seconds",
		"How long the oldest due pending delivery has been waiting past its due time; 0 when none is due.", nil, nil)
	disabledHooksDesc = prometheus.NewDesc(MetricsNamespace+"_disabled_hooks",
		"Webhooks currently deactivated by the engine.", nil, nil)
)

// queueCollector reads the queue's state at scrape time.
type queueCollector struct{ m *Metrics }

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- oldestDueDesc
	ch <- disabledHooksDesc
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	f := c.m.stats
	c.m.mu.Unlock()
	if f == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := f(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Pending), "pending")
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Running), "running")
	age := 0.0
	if !st.OldestDue.IsZero() {
		age = max(0, c.m.now().Sub(st.OldestDue).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(oldestDueDesc, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(disabledHooksDesc, prometheus.GaugeValue, float64(st.HooksDisabled))
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe logs every request (never its headers or body, which may carry tokens and secrets)
// and counts it in the metrics.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		d := time.Since(start)
		// The route is a registered pattern (a fixed set) or "unmatched", never the path.
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.observeRequest(route, r.Method, rec.code, d)
		}
		level := slog.LevelInfo
		switch {
		case rec.code >= 500:
			level = slog.LevelError
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics":
			level = slog.LevelDebug
		}
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.code),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.String("remote", r.RemoteAddr))
	})
}
