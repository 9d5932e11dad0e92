package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// assetHandler serves the embedded stylesheet and images under /-/assets/.
func assetHandler() http.Handler {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // The directory is embedded at build time.
	}
	files := http.StripPrefix("/-/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// pages holds one template set per page: the layout plus the page's own file.
type pages struct {
	byName map[string]*template.Template
}

var pageNames = []string{"signin", "error", "overview", "hook", "form", "event", "deployments", "deployment"}

func parsePages() (*pages, error) {
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// navItem is one entry of the navigation bar.
type navItem struct {
	Label, Path string
	Current     bool
}

// pageData is what the layout needs, with the page's own data in Data.
type pageData struct {
	Title  string
	Org    string
	CSRF   string
	Nav    []navItem
	Notice string
	Data   any
}

// navFor is the navigation of org's pages; on a page about a stack (stack is not empty), its
// deployments join it.
func navFor(org string, stack webhook.Scope, current string) []navItem {
	items := []navItem{
		{Label: "Webhooks", Path: orgPath(org)},
		{Label: "Recent events", Path: orgPath(org) + "#events"},
		{Label: "New webhook", Path: "/-/orgs/" + url.PathEscape(org) + "/new-hook"},
		{Label: "Deployments", Path: "/-/orgs/" + url.PathEscape(org) + "/deployments"},
	}
	if stack.Stack != "" && stack.Project != "" && stack.Org == org {
		items = append(items, navItem{Label: stackDeploymentsLabel(stack), Path: deploymentsPath(stack)})
	}
	for i := range items {
		items[i].Current = items[i].Label == current
	}
	return items
}

// show renders a page for a viewer.
func (c *Console) show(w http.ResponseWriter, r *http.Request, v *viewer, code int, name, title, nav string, data any) {
	pd := pageData{Title: title, Data: data}
	if v != nil {
		stack := webhook.Scope{Org: r.PathValue("org"), Project: r.PathValue("project"), Stack: r.PathValue("stack")}
		pd.Org, pd.CSRF, pd.Nav = v.token.Org, v.csrf(), navFor(v.token.Org, stack, nav)
	}
	pd.Notice = notices[r.URL.Query().Get("done")]
	c.render(w, r, code, name, pd)
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, pd pageData) {
	var buf bytes.Buffer
	if err := c.pages.byName[name].Execute(&buf, pd); err != nil {
		c.log.ErrorContext(r.Context(), "console page failed", "page", name, "error", err)
		http.Error(w, "internal error: see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w) // The status is sent; a write error means the client left.
}

// notices are the messages a redirect after a form may ask for (?done=...): fixed texts, so a
// link cannot put words in the console's mouth.
var notices = map[string]string{
	"created":     "Webhook created.",
	"updated":     "Webhook saved.",
	"activated":   "Webhook activated.",
	"deactivated": "Webhook deactivated: it receives no events until it is activated again.",
	"deleted":     "Webhook deleted.",
	"pinged":      "Ping sent: its attempt is the newest below.",
	"redelivered": "Delivery sent again: its new attempt is the newest below.",
	"canceled":    "Cancel requested: a deployment that had not started has failed; a running one is stopped by its runner within moments.",
}

// Errors a page can end with besides the engine's.
var (
	errCSRF = &statusError{code: http.StatusForbidden, msg: "the form's security token is missing or out of date (or the form came from another site): reload the page and send it again"}
)

type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func errNotFound(what string) error {
	return &statusError{code: http.StatusNotFound, msg: what + " not found"}
}

func badForm(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &statusError{code: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the form is larger than %d bytes: send less", mbe.Limit)}
	}
	return &statusError{code: http.StatusBadRequest, msg: "the form could not be read: " + err.Error()}
}

type errorData struct {
	Code    int
	Message string
	Fields  webhook.FieldErrors
}

// fail renders err as an error page with its status. Anything unexpected is 500 with a generic
// message; the details go to the log only.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *viewer, err error) {
	var (
		se *statusError
		ae *authError
		fe webhook.FieldErrors
	)
	d := errorData{}
	switch {
	case errors.As(err, &ae):
		d.Code, d.Message = http.StatusUnauthorized, ae.msg
		w.Header().Set("WWW-Authenticate", "token")
	case errors.As(err, &se):
		d.Code, d.Message = se.code, se.msg
	case errors.As(err, &fe):
		d.Code, d.Message = http.StatusBadRequest, "the request is not valid"
		d.Fields, _ = fe.Reported()
	case errors.Is(err, store.ErrNotFound):
		d.Code, d.Message = http.StatusNotFound, "not found: it was deleted, or never existed"
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // The client went away.
	default:
		c.log.ErrorContext(r.Context(), "console request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		d.Code, d.Message = http.StatusInternalServerError, "internal error: see the server log"
	}
	c.show(w, r, v, d.Code, "error", http.StatusText(d.Code), "", d)
}

// Paths of the pages.

func orgPath(org string) string { return "/" + url.PathEscape(org) }

// scopePath is the overview page of a scope: the paths of the console links in payloads.
func scopePath(s webhook.Scope) string {
	switch {
	case s.Stack != "":
		return "/" + url.PathEscape(s.Org) + "/" + url.PathEscape(s.Project) + "/" + url.PathEscape(s.Stack)
	case s.Environment != "":
		return "/" + url.PathEscape(s.Org) + "/esc/" + url.PathEscape(s.Project) + "/" + url.PathEscape(s.Environment)
	}
	return orgPath(s.Org)
}

// hookPath is a hook's page; the scope is in the path as in the API's.
func hookPath(ref store.HookRef) string {
	var root string
	switch {
	case ref.Stack != "":
		root = "/-/stacks/" + url.PathEscape(ref.Org) + "/" + url.PathEscape(ref.Project) + "/" + url.PathEscape(ref.Stack)
	case ref.Environment != "":
		root = "/-/environments/" + url.PathEscape(ref.Org) + "/" + url.PathEscape(ref.Project) + "/" + url.PathEscape(ref.Environment)
	default:
		root = "/-/orgs/" + url.PathEscape(ref.Org)
	}
	return root + "/hooks/" + url.PathEscape(ref.Name)
}

func eventPath(org, id string) string {
	return "/-/orgs/" + url.PathEscape(org) + "/events/" + url.PathEscape(id)
}

// scopeLabel describes a scope for people: "organization", "stack web/prod", ...
func scopeLabel(s webhook.Scope) string {
	switch {
	case s.Stack != "":
		return "stack " + s.Project + "/" + s.Stack
	case s.Environment != "":
		return "environment " + s.Project + "/" + s.Environment
	}
	return "organization"
}

var funcs = template.FuncMap{
	"hookPath":        func(h *store.Hook) string { return hookPath(h.Ref()) },
	"eventPath":       eventPath,
	"scopePath":       scopePath,
	"scopeLabel":      scopeLabel,
	"orgPath":         orgPath,
	"deploymentPath":  deploymentPath,
	"deploymentsPath": deploymentsPath,
	"logText":         logText,
	"deploymentTable": func(ds []*store.Deployment, showStack bool) deploymentTable {
		return deploymentTable{Rows: ds, ShowStack: showStack}
	},
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ms": func(d time.Duration) string {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	},
	"headers": api.FormatHeaders,
	"body": func(b []byte) string {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			return out.String()
		}
		return webhook.Printable(string(b))
	},
	"printable": webhook.Printable,
	// anchor is the element of the form a field error is about: its input, or the list of
	// checkboxes for "filters[2]".
	"anchor": func(field string) string {
		base, _, _ := strings.Cut(field, "[")
		switch base {
		case "filters", "groups", "organizationName":
			return base + "-err"
		}
		return base
	},
	"has": func(list []string, v string) bool { return slices.Contains(list, v) },
}
