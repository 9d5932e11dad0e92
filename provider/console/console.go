package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Defaults for Config fields left zero.
const (
	// SessionTTLDefault is how long a sign-in lasts.
	SessionTTLDefault = 12 * time.Hour
	// SessionsPerTokenDefault bounds the sessions of one API token; the oldest go first.
	SessionsPerTokenDefault = 100
	// MaxFormBytesDefault caps form bodies.
	MaxFormBytesDefault = 1 << 20
)

// Cookie names.
const (
	// SessionCookie holds the random session ID (never the token).
	SessionCookie = "pwh_session"
	// SigninCookie holds the sign-in form's CSRF token until the form is sent.
	SigninCookie = "pwh_signin"
	// CSRFField is the form field of the CSRF token.
	CSRFField = "csrf"
)

// Config builds a Console. Engine, Authenticate and AuthenticateID are required.
type Config struct {
	Engine *engine.Engine
	// Store keeps the sessions and reads events and deliveries for the event pages; nil means
	// the engine's store. Consoles on one store (several servers, or one restarted) share
	// their sessions.
	Store store.Store
	// Authenticate returns the API token whose plain text is given, or an error wrapping
	// store.ErrNotFound when it is unknown or revoked (server.Server.AuthenticateToken).
	Authenticate func(ctx context.Context, token string) (*store.Token, error)
	// AuthenticateID does the same for the token with the ID given, a session's token
	// (server.Server.AuthenticateTokenID).
	AuthenticateID func(ctx context.Context, id string) (*store.Token, error)
	Logger         *slog.Logger
	SessionTTL     time.Duration
	// SessionsPerToken caps the sessions of one API token: a sign-in beyond it ends the
	// token's oldest session.
	SessionsPerToken int
	MaxFormBytes     int64
	Now              func() time.Time
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Store == nil && c.Engine != nil {
		c.Store = c.Engine.Config().Store
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = SessionTTLDefault
	}
	if c.SessionsPerToken == 0 {
		c.SessionsPerToken = SessionsPerTokenDefault
	}
	if c.MaxFormBytes == 0 {
		c.MaxFormBytes = MaxFormBytesDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Engine == nil:
		return errors.New("console: Config.Engine is required")
	case c.Store == nil:
		return errors.New("console: Config.Store is required")
	case c.Authenticate == nil:
		return errors.New("console: Config.Authenticate is required")
	case c.AuthenticateID == nil:
		return errors.New("console: Config.AuthenticateID is required: give server.Server.AuthenticateTokenID")
	case c.SessionTTL < 0:
		return fmt.Errorf("console: Config.SessionTTL is %s: give a positive duration", c.SessionTTL)
	case c.SessionsPerToken < 0:
		return fmt.Errorf("console: Config.SessionsPerToken is %d: give a positive number", c.SessionsPerToken)
	case c.MaxFormBytes < 0:
		return fmt.Errorf("console: Config.MaxFormBytes is %d: give a positive size", c.MaxFormBytes)
	}
	return nil
}

// Console serves the web console. Its Handler is safe for concurrent use.
type Console struct {
	cfg    Config
	engine *engine.Engine
	store  store.Store
	log    *slog.Logger
	pages  *pages
	mux    *http.ServeMux
}

// New builds a Console.
func New(cfg Config) (*Console, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c := &Console{cfg: cfg, engine: cfg.Engine, store: cfg.Store, log: cfg.Logger, pages: p, mux: http.NewServeMux()}
	c.routes()
	return c, nil
}

// Handler returns the console's HTTP handler.
func (c *Console) Handler() http.Handler { return c.secure(c.mux) }

// viewer is who is looking: the token, and the session when signed in through the form.
type viewer struct {
	token   *store.Token
	session *store.Session
}

func (v *viewer) csrf() string {
	if v.session == nil {
		return ""
	}
	return v.session.CSRF
}

type pageHandler func(w http.ResponseWriter, r *http.Request, v *viewer) error

// hookRoot is one of the three URL prefixes of a hook, as the API has them.
type hookRoot struct {
	path string
	kind webhook.ScopeKind
}

var hookRoots = []hookRoot{
	{"/-/orgs/{org}", webhook.ScopeOrganization},
	{"/-/stacks/{org}/{project}/{stack}", webhook.ScopeStack},
	{"/-/environments/{org}/{project}/{env}", webhook.ScopeEnvironment},
}

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /{$}", c.home)
	m.HandleFunc("GET /favicon.ico", http.NotFound)
	m.HandleFunc("GET /-/signin", c.signinForm)
	m.HandleFunc("POST /-/signin", c.signin)
	m.Handle("POST /-/signout", c.page(c.signout))
	m.Handle("GET /-/assets/{file}", assetHandler())

	overview := c.page(c.overviewPage)
	m.Handle("GET /{org}", overview)
	m.Handle("GET /{org}/{project}/{stack}", overview)
	for _, section := range []string{"updates", "previews"} {
		m.Handle("GET /{org}/{project}/{stack}/"+section+"/{id}", overview)
	}
	m.Handle("GET /{org}/esc/{project}/{env}", overview)
	m.Handle("GET /{org}/{project}/{stack}/deployments/{deployment}", c.page(c.deploymentPage))
	m.Handle("GET /-/stacks/{org}/{project}/{stack}/deployments", c.page(c.deploymentsPage))
	m.Handle("POST /-/stacks/{org}/{project}/{stack}/deployments/{deployment}/cancel", c.page(c.cancelDeployment))

	m.Handle("GET /-/orgs/{org}/new-hook", c.page(c.newHookForm))
	m.Handle("POST /-/orgs/{org}/new-hook", c.page(c.createHook))
	m.Handle("GET /-/orgs/{org}/events/{event}", c.page(c.eventPage))
	m.Handle("GET /-/orgs/{org}/deployments", c.page(c.recentDeploymentsPage))
	for _, root := range hookRoots {
		h := root.path + "/hooks/{hook}"
		m.Handle("GET "+h, c.page(c.hookPage))
		m.Handle("GET "+h+"/edit", c.page(c.editHookForm))
		m.Handle("POST "+h+"/edit", c.page(c.editHook))
		m.Handle("POST "+h+"/active", c.page(c.setActive))
		m.Handle("POST "+h+"/delete", c.page(c.deleteHook))
		m.Handle("POST "+h+"/ping", c.page(c.ping))
		m.Handle("POST "+h+"/deliveries/{delivery}/redeliver", c.page(c.redeliver))
	}
}

// secure sets the headers every answer carries: no scripts, no framing, no sniffing, no
// caching of pages that show an organization's data.
func (c *Console) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/-/assets/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// page wraps a handler of an authenticated page: it finds the viewer, checks the CSRF token of
// a form sent with a session, checks that the URL's organization is the token's, and renders
// any error as a page.
func (c *Console) page(h pageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := c.authenticate(r)
		if err != nil {
			var ae *authError
			if errors.As(err, &ae) && ae.signin && r.Method == http.MethodGet {
				http.Redirect(w, r, "/-/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, err)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, c.cfg.MaxFormBytes)
			if err := r.ParseForm(); err != nil {
				c.fail(w, r, v, badForm(err))
				return
			}
			if v.session != nil && !sameToken(r.PostForm.Get(CSRFField), v.session.CSRF) {
				c.fail(w, r, v, errCSRF)
				return
			}
		}
		if org := r.PathValue("org"); org != "" && org != v.token.Org {
			// A token never learns whether another organization's objects exist.
			c.fail(w, r, v, errNotFound("organization "+webhook.Quote(org)))
			return
		}
		if err := h(w, r, v); err != nil {
			c.fail(w, r, v, err)
		}
	})
}

// authError is a request that is not signed in, or whose token does not work.
type authError struct {
	msg string
	// signin says a person could fix it by signing in (no credentials were sent, or the
	// session ended), as opposed to a script sending a bad header.
	signin bool
}

func (e *authError) Error() string { return e.msg }

// authenticate returns who is asking: the Authorization header's token, or the session's.
func (c *Console) authenticate(r *http.Request) (*viewer, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, plain, ok := strings.Cut(h, " ")
		plain = strings.TrimSpace(plain)
		if !ok || !strings.EqualFold(scheme, "token") || plain == "" {
			return nil, &authError{msg: "Authorization header is not of the form \"token <api token>\""}
		}
		t, err := c.token(r.Context(), plain)
		if err != nil {
			return nil, err
		}
		return &viewer{token: t}, nil
	}
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, &authError{msg: "not signed in: sign in with an API token", signin: true}
	}
	s, err := c.session(r.Context(), ck.Value)
	if err != nil {
		return nil, err
	}
	t, err := checkToken(c.cfg.AuthenticateID(r.Context(), s.TokenID))
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			// The token was revoked: the session ends with it, on every server.
			if err := c.store.SessionDelete(r.Context(), s.IDHash); err != nil {
				c.log.WarnContext(r.Context(), "could not delete the session of a revoked token", "token", s.TokenID, "error", err)
			}
			ae.signin = true
		}
		return nil, err
	}
	return &viewer{token: t, session: s}, nil
}

// token returns the API token whose plain text is given, or an authError.
func (c *Console) token(ctx context.Context, plain string) (*store.Token, error) {
	return checkToken(c.cfg.Authenticate(ctx, plain))
}

// checkToken turns the answer of Authenticate or AuthenticateID into the token or an
// authError (unknown or revoked) or an error of the lookup.
func checkToken(t *store.Token, err error) (*store.Token, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, &authError{msg: "invalid or revoked API token: check the token, or create a new one with `pulumi-webhooks token create`"}
	}
	if err != nil {
		return nil, fmt.Errorf("check the API token: %w", err)
	}
	return t, nil
}

func sameToken(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// home sends a signed-in person to their organization, anyone else to the sign-in form.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	v, err := c.authenticate(r)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) && ae.signin {
			http.Redirect(w, r, "/-/signin", http.StatusSeeOther)
			return
		}
		c.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, "/"+url.PathEscape(v.token.Org), http.StatusSeeOther)
}
