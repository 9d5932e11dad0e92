package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Sessions are kept in the store (store.Session), so that every server on one store knows
// them, and a restart keeps them. The cookie carries a random session ID; the store keeps its
// hash and the ID of the API token signed in with, never the token.

// startSession stores a new session of token t and returns its ID, for the cookie.
func (c *Console) startSession(ctx context.Context, t *store.Token) (string, error) {
	id, now := randomToken(), c.cfg.Now()
	err := c.store.SessionCreate(ctx, store.SessionCreateParams{
		Session: store.Session{IDHash: store.HashSessionID(id), TokenID: t.ID, CSRF: randomToken(),
			CreatedAt: now, ExpiresAt: now.Add(c.cfg.SessionTTL)},
		PerTokenLimit: c.cfg.SessionsPerToken, Now: now})
	if err != nil {
		return "", fmt.Errorf("start the session: %w", err)
	}
	return id, nil
}

// session returns the live session whose ID the cookie carries, or an authError.
func (c *Console) session(ctx context.Context, id string) (*store.Session, error) {
	s, err := c.store.SessionGet(ctx, store.SessionGetParams{IDHash: store.HashSessionID(id), Now: c.cfg.Now()})
	if errors.Is(err, store.ErrNotFound) {
		return nil, &authError{msg: "your session has ended: sign in again", signin: true}
	}
	if err != nil {
		return nil, fmt.Errorf("read the session: %w", err)
	}
	return s, nil
}

// randomToken returns 32 random bytes, base64url: session IDs and CSRF tokens.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+): it crashes the program instead.
	return base64.RawURLEncoding.EncodeToString(b)
}

// cookie returns a cookie of the console: HTTP-only, SameSite=Strict, for the whole site,
// Secure when the request came over TLS.
func cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(maxAge.Seconds())}
	if maxAge < 0 {
		ck.MaxAge = -1
	}
	return ck
}

type signinData struct {
	CSRF  string
	Next  string
	Error string
}

// signinForm shows the sign-in form with a fresh CSRF token in a cookie and the form.
func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	csrf := randomToken()
	http.SetCookie(w, cookie(r, SigninCookie, csrf, time.Hour))
	c.render(w, r, http.StatusOK, "signin", pageData{Title: "Sign in", Data: signinData{CSRF: csrf, Next: localPath(r.URL.Query().Get("next"))}})
}

// signin trades an API token for a session.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, c.cfg.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, nil, badForm(err))
		return
	}
	ck, err := r.Cookie(SigninCookie)
	if err != nil || !sameToken(r.PostForm.Get(CSRFField), ck.Value) {
		c.fail(w, r, nil, errCSRF)
		return
	}
	next := localPath(r.PostForm.Get("next"))
	again := func(code int, msg string) {
		c.render(w, r, code, "signin", pageData{Title: "Sign in", Data: signinData{CSRF: ck.Value, Next: next, Error: msg}})
	}
	plain := strings.TrimSpace(r.PostForm.Get("token"))
	if plain == "" {
		again(http.StatusBadRequest, "token: is required: paste an API token (create one with `pulumi-webhooks token create --org ORG`)")
		return
	}
	t, err := c.token(r.Context(), plain)
	var ae *authError
	if errors.As(err, &ae) {
		again(http.StatusUnauthorized, "token: "+ae.msg)
		return
	}
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	id, err := c.startSession(r.Context(), t)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	http.SetCookie(w, cookie(r, SessionCookie, id, c.cfg.SessionTTL))
	http.SetCookie(w, cookie(r, SigninCookie, "", -1))
	if next == "" {
		next = orgPath(t.Org)
	}
	c.log.InfoContext(r.Context(), "console sign-in", "org", t.Org, "token", t.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, v *viewer) error {
	// Deleting the session from the store ends it on every server.
	if v.session != nil {
		if err := c.store.SessionDelete(r.Context(), v.session.IDHash); err != nil {
			return fmt.Errorf("sign out: %w", err)
		}
	}
	http.SetCookie(w, cookie(r, SessionCookie, "", -1))
	http.Redirect(w, r, "/-/signin", http.StatusSeeOther)
	return nil
}

// localPath returns p when it is a path on this site, else "": the sign-in form never sends
// anyone elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return ""
	}
	return p
}
