package console

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// session is one sign-in. The token stays on the server: the cookie carries only the ID.
type session struct {
	token   string
	csrf    string
	created time.Time
	expires time.Time
}

// sessions keeps sign-ins in memory: a restart signs everyone out, which is the safe failure.
type sessions struct {
	ttl time.Duration
	max int

	mu   sync.Mutex
	byID map[string]*session
}

func newSessions(ttl time.Duration, max int) *sessions {
	return &sessions{ttl: ttl, max: max, byID: map[string]*session{}}
}

// add starts a session for token and returns its ID.
func (s *sessions) add(token string, now time.Time) (string, *session) {
	id, ss := randomToken(), &session{token: token, csrf: randomToken(), created: now, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sid, x := range s.byID {
		if !now.Before(x.expires) {
			delete(s.byID, sid)
		}
	}
	for len(s.byID) >= s.max {
		var oldest string
		for sid, x := range s.byID {
			if oldest == "" || x.created.Before(s.byID[oldest].created) {
				oldest = sid
			}
		}
		delete(s.byID, oldest)
	}
	s.byID[id] = ss
	return id, ss
}

// get returns the live session with ID id, or nil.
func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[id]
	if ss == nil {
		return nil
	}
	if !now.Before(ss.expires) {
		delete(s.byID, id)
		return nil
	}
	return ss
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
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
	id, _ := c.sessions.add(plain, c.cfg.Now())
	http.SetCookie(w, cookie(r, SessionCookie, id, c.cfg.SessionTTL))
	http.SetCookie(w, cookie(r, SigninCookie, "", -1))
	if next == "" {
		next = orgPath(t.Org)
	}
	c.log.InfoContext(r.Context(), "console sign-in", "org", t.Org, "token", t.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, v *viewer) error {
	if ck, err := r.Cookie(SessionCookie); err == nil {
		c.sessions.remove(ck.Value)
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
