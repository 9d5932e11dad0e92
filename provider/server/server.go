// Package server serves the pulumi-webhooks REST API: the Pulumi Cloud webhook endpoints for
// organization, stack and ESC environment scopes, event ingestion (POST
// /api/orgs/{org}/events), health and readiness probes, and Prometheus metrics. It is a thin
// layer over the engine: it authenticates the caller, checks that the request's organization is
// the token's, decodes and validates the body, calls one engine method, and maps the result to
// a status code and a JSON body. Store errors are mapped to HTTP statuses here and nowhere else.
//
// The hook endpoints follow the Pulumi Cloud OpenAPI document (its facts are in
// internal/refdocs), with these additions, each compatible with clients written for Pulumi Cloud:
//
//   - Errors are {"code": N, "message": "field: problem and fix; ..."} plus, for 400, an
//     "errors" list of {"field", "message"} so clients can rebuild per-field errors.
//   - Bodies are strict: unknown fields, keys in another case ("PAYLOADURL"), a key given
//     twice, null values, wrong JSON types and unknown enum values (format, filters, groups)
//     are 400 naming the field, and so is "" where it would silently mean a default (format,
//     scope fields). A Content-Type other than JSON is 415 (none at all is taken as JSON);
//     any body over Config.MaxBodyBytes is 413, whatever it holds. Every string and list is
//     bounded by the rules of package webhook, and a 400 lists at most
//     webhook.FieldErrorsMax problems and counts the rest.
//     The response-only fields hasSecret and secretCiphertext may be sent back and are ignored.
//   - PATCH changes only the fields it is given ("secret": "" removes the secret, an absent
//     secret keeps it, "filters": [] clears the filters); scope fields and the name may be
//     repeated but not changed.
//   - The listings page, bodies staying the bare arrays (paging.go): GET .../hooks and GET
//     .../deliveries take ?limit= (1-1000) and ?continuationToken=, and a page that has a next
//     page names it in X-Continuation-Token and a Link rel="next". The hook listing answers
//     every hook unless asked for a page; the delivery log answers 100 attempts by default and
//     still takes the older ?before=<cursor> with the X-Next-Before header.
//   - POST /api/orgs/{org}/events fires an event (checked by engine.EmitParams.Validate) and
//     answers 202 {"eventId", "deliveries", "deploymentRequests"}; an Idempotency-Key header
//     replays the first answer for 24 hours, marked with Idempotent-Replayed: true, to the same
//     request only: the key with another filter, subject or payload is 422.
//   - A token of another organization gets 404 for everything, exactly as if the object did
//     not exist.
//   - Each token may make Config.RateLimit requests per second on average and
//     Config.RateBurst at once; beyond that the answer is 429 with Retry-After (seconds).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Defaults for Config fields left zero.
const (
	// MaxBodyBytesDefault caps request bodies; larger ones are answered 413.
	MaxBodyBytesDefault = 1 << 20
	// ReadyTimeoutDefault bounds the store check behind /readyz.
	ReadyTimeoutDefault = 2 * time.Second
)

// Config builds a Server. Engine is required.
type Config struct {
	Engine *engine.Engine
	// Store holds the API tokens; nil means the engine's store.
	Store  store.Store
	Logger *slog.Logger
	// Metrics, when set, is served on /metrics and counts requests.
	Metrics      *Metrics
	MaxBodyBytes int64
	ReadyTimeout time.Duration
	// RateLimit is how many API requests per second one token may make on average, and
	// RateBurst how many at once; more are answered 429 with Retry-After. rate.Inf turns the
	// limit off. Probes and metrics are not limited.
	RateLimit rate.Limit
	RateBurst int
	// RateLimitersMax bounds how many tokens' buckets are kept in memory.
	RateLimitersMax int
	Now             func() time.Time
	// Console, when set, serves every path the API does not (the web console at /), except
	// under /api/, which stays JSON.
	Console http.Handler
	// ReadyDetails, when set, adds fields to /readyz's body, such as the backend watchers'
	// states; they never make the server unready.
	ReadyDetails func() map[string]any
	// ParseCron checks a drift schedule's cron expression and returns when it next fires
	// (deploy.ParseCron); without it the drift schedule endpoints answer 501.
	ParseCron func(expr string, now time.Time) (time.Time, error)
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Store == nil && c.Engine != nil {
		c.Store = c.Engine.Config().Store
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = MaxBodyBytesDefault
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = ReadyTimeoutDefault
	}
	if c.RateLimit == 0 {
		c.RateLimit = RateLimitDefault
	}
	if c.RateBurst == 0 {
		c.RateBurst = RateBurstDefault
	}
	if c.RateLimitersMax == 0 {
		c.RateLimitersMax = RateLimitersMaxDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Engine == nil:
		return errors.New("server: Config.Engine is required")
	case c.Store == nil:
		return errors.New("server: Config.Store is required")
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("server: Config.MaxBodyBytes is %d: give a positive size", c.MaxBodyBytes)
	case c.RateLimit < 0 || math.IsNaN(float64(c.RateLimit)):
		return fmt.Errorf("server: Config.RateLimit is %g: give a positive rate, or rate.Inf for none", float64(c.RateLimit))
	case c.RateBurst < 0:
		return fmt.Errorf("server: Config.RateBurst is %d: give a positive number of requests", c.RateBurst)
	case c.RateLimitersMax < 0:
		return fmt.Errorf("server: Config.RateLimitersMax is %d: give a positive number", c.RateLimitersMax)
	}
	return nil
}

// Server is the HTTP API. Its Handler is safe for concurrent use.
type Server struct {
	cfg      Config
	engine   *engine.Engine
	store    store.Store
	log      *slog.Logger
	mux      *http.ServeMux
	limiters *tokenLimiters
	draining atomic.Bool
}

// New builds a Server.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, engine: cfg.Engine, store: cfg.Store, log: cfg.Logger, mux: http.NewServeMux(),
		limiters: newTokenLimiters(cfg.RateLimit, cfg.RateBurst, cfg.RateLimitersMax)}
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return s.observe(s.mux) }

// Drain makes /readyz answer 503 so load balancers stop sending traffic; call it when
// shutdown begins.
func (s *Server) Drain() { s.draining.Store(true) }

// call is what an API handler gets besides the request: the caller's token and the scope the
// URL names.
type call struct {
	token *store.Token
	scope webhook.Scope
}

// ref returns the hook the URL names.
func (c *call) ref(r *http.Request) store.HookRef {
	return store.HookRef{Scope: c.scope, Name: r.PathValue("hook")}
}

type apiHandler func(w http.ResponseWriter, r *http.Request, c *call) error

type methods map[string]apiHandler

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	}
	prefixes := []struct {
		path string
		kind webhook.ScopeKind
	}{
		{"/api/orgs/{org}", webhook.ScopeOrganization},
		{"/api/stacks/{org}/{project}/{stack}", webhook.ScopeStack},
		{"/api/esc/environments/{org}/{project}/{env}", webhook.ScopeEnvironment},
	}
	for _, p := range prefixes {
		s.api(p.path+"/hooks", p.kind, methods{http.MethodGet: s.hookList, http.MethodPost: s.hookCreate})
		s.api(p.path+"/hooks/{hook}", p.kind, methods{
			http.MethodGet: s.hookGet, http.MethodPatch: s.hookUpdate, http.MethodDelete: s.hookDelete,
		})
		s.api(p.path+"/hooks/{hook}/ping", p.kind, methods{http.MethodPost: s.hookPing})
		s.api(p.path+"/hooks/{hook}/secret/check", p.kind, methods{http.MethodPost: s.hookSecretCheck})
		s.api(p.path+"/hooks/{hook}/deliveries", p.kind, methods{http.MethodGet: s.deliveryList})
		s.api(p.path+"/hooks/{hook}/deliveries/{event}/redeliver", p.kind, methods{http.MethodPost: s.redeliver})
	}
	s.api("/api/orgs/{org}/events", webhook.ScopeOrganization, methods{http.MethodPost: s.emit})
	s.deploymentRoutes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Console != nil && r.URL.Path != "/api" && !strings.HasPrefix(r.URL.Path, "/api/") {
			s.cfg.Console.ServeHTTP(w, r)
			return
		}
		s.writeError(w, r, apiError(http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", webhook.Quote(r.Method), webhook.Quote(r.URL.Path))))
	})
}

// api registers an authenticated endpoint. Authentication comes first, so an anonymous
// caller learns nothing about which paths exist; then the method; then the organization.
func (s *Server) api(pattern string, kind webhook.ScopeKind, ms methods) {
	allow := make([]string, 0, len(ms))
	for m := range ms {
		allow = append(allow, m)
	}
	sort.Strings(allow)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		tok, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if wait := s.limiters.reserve(tok.ID, s.cfg.Now()); wait > 0 {
			s.rateLimited(w, r, wait)
			return
		}
		h, ok := ms[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeError(w, r, apiError(http.StatusMethodNotAllowed,
				fmt.Sprintf("method %s is not allowed on %s: use %s", webhook.Quote(r.Method), webhook.Quote(r.URL.Path), strings.Join(allow, " or "))))
			return
		}
		c := &call{token: tok, scope: scopeFromPath(r, kind)}
		if c.scope.Org != tok.Org {
			// A token never learns whether another organization's objects exist.
			s.writeError(w, r, s.crossOrg(r, c))
			return
		}
		if err := checkPathNames(r, c.scope); err != nil {
			s.writeError(w, r, err)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			// Announced too large: refused before reading, whatever the body holds.
			s.writeError(w, r, &http.MaxBytesError{Limit: s.cfg.MaxBodyBytes})
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		if err := h(w, r, c); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// crossOrg returns the same 404 the request would get if the object did not exist.
func (s *Server) crossOrg(r *http.Request, c *call) error {
	if name := r.PathValue("hook"); name != "" {
		return notFound(c.ref(r))
	}
	return apiError(http.StatusNotFound, fmt.Sprintf("organization %s not found", webhook.Quote(c.scope.Org)))
}

// checkPathNames refuses names in the URL that no object can have (too long, path-like,
// invisible characters), naming the field, before anything is looked up. A hook's name is
// checked as a reference to an existing hook (webhook.CheckHookRefName), so hooks named before
// the hook-name rule stay reachable.
func checkPathNames(r *http.Request, scope webhook.Scope) error {
	var errs webhook.FieldErrors
	for _, f := range []struct{ field, v string }{
		{"projectName", scope.Project}, {"stackName", scope.Stack}, {"envName", scope.Environment}, {"name", r.PathValue("hook")},
	} {
		if f.v == "" {
			continue
		}
		check := webhook.CheckScopeName
		if f.field == "name" {
			check = webhook.CheckHookRefName
		}
		if err := check(f.v); err != nil {
			errs.Add(f.field, "in the URL "+err.Error())
		}
	}
	return errs.Err()
}

func scopeFromPath(r *http.Request, kind webhook.ScopeKind) webhook.Scope {
	s := webhook.Scope{Org: r.PathValue("org")}
	switch kind {
	case webhook.ScopeStack:
		s.Project, s.Stack = r.PathValue("project"), r.PathValue("stack")
	case webhook.ScopeEnvironment:
		s.Project, s.Environment = r.PathValue("project"), r.PathValue("env")
	}
	return s
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 while the store answers and the server is not shutting down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.writeError(w, r, apiError(http.StatusServiceUnavailable, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if _, err := s.engine.QueueStats(ctx); err != nil {
		s.log.Warn("readiness check failed: store unreachable", "error", err)
		s.writeError(w, r, apiError(http.StatusServiceUnavailable, "store unreachable"))
		return
	}
	body := map[string]any{"status": "ok"}
	if s.cfg.ReadyDetails != nil {
		for k, v := range s.cfg.ReadyDetails() {
			if k != "status" {
				body[k] = v
			}
		}
	}
	writeJSON(w, http.StatusOK, body)
}
