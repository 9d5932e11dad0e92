package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// HeaderNextBefore, on a page of deliveries that has an older page, is the cursor to pass as
// ?before= for it. Deprecated: the api.HeaderContinuationToken beside it does the same.
const HeaderNextBefore = api.HeaderNextBefore

// hookList answers the hooks of exactly the URL's scope, ordered by name (byte order, whatever
// the store's collation). Without paging parameters it answers every hook, as Pulumi Cloud's
// clients expect one array; ?limit= or ?continuationToken= page it (see paging.go). The store
// cuts the page (store.HookListParams After and Limit): a page asks for one hook more than it
// shows, to know whether a next page exists, and reads about a page of rows, not the scope.
// Over 1,000 hooks, a page of 100 costs about 0.8 ms against 5-7 ms for the whole scope, and
// all 10 pages 7.3-7.6 ms (42-45 ms when every page read the scope; BenchmarkListingPages).
func (s *Server) hookList(w http.ResponseWriter, r *http.Request, c *call) error {
	l := listing{kind: listingHooks, scope: c.scope}
	pg, err := readPaging(r, l)
	if err != nil {
		return err
	}
	p := store.HookListParams{Scope: c.scope, Exact: true}
	limit := pg.limit
	if pg.token != nil {
		p.After = pg.token.afterName
		if limit == 0 {
			limit = pg.token.limit
		}
	}
	if limit > 0 {
		p.Limit = limit + 1
	}
	hooks, err := s.engine.HookList(r.Context(), p)
	if err != nil {
		return err
	}
	if limit > 0 && len(hooks) > limit {
		hooks = hooks[:limit]
		setNextPage(w, r, l, pageToken{limit: limit, afterName: hooks[limit-1].Name})
	}
	out := make([]api.WebhookResponse, 0, len(hooks))
	for _, h := range hooks {
		out = append(out, api.FromHook(h))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) hookCreate(w http.ResponseWriter, r *http.Request, c *call) error {
	var body api.Webhook
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	spec, err := specForCreate(c.scope, body)
	if err != nil {
		return err
	}
	h, err := s.engine.HookCreate(r.Context(), spec)
	if err != nil {
		return hookFieldError(hookError(store.HookRef{Scope: spec.Scope, Name: spec.Name}, err))
	}
	w.Header().Set("Location", api.HookPath(h.Ref()))
	writeJSON(w, http.StatusCreated, api.FromHook(h))
	return nil
}

func (s *Server) hookGet(w http.ResponseWriter, r *http.Request, c *call) error {
	ref := c.ref(r)
	h, err := s.engine.HookGet(r.Context(), ref)
	if err != nil {
		return hookError(ref, err)
	}
	writeJSON(w, http.StatusOK, api.FromHook(h))
	return nil
}

func (s *Server) hookUpdate(w http.ResponseWriter, r *http.Request, c *call) error {
	ref := c.ref(r)
	var body api.Webhook
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	cur, err := s.engine.HookGet(r.Context(), ref)
	if err != nil {
		return hookError(ref, err)
	}
	spec, err := specForUpdate(cur, body)
	if err != nil {
		return err
	}
	h, err := s.engine.HookUpdate(r.Context(), engine.HookUpdateParams{Ref: ref, Spec: spec, Secret: api.SecretUpdate(body.Secret)})
	if err != nil {
		return hookFieldError(hookError(ref, err))
	}
	writeJSON(w, http.StatusOK, api.FromHook(h))
	return nil
}

func (s *Server) hookDelete(w http.ResponseWriter, r *http.Request, c *call) error {
	ref := c.ref(r)
	if err := s.engine.HookDelete(r.Context(), ref); err != nil {
		return hookError(ref, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) hookPing(w http.ResponseWriter, r *http.Request, c *call) error {
	ref := c.ref(r)
	a, err := s.engine.Ping(r.Context(), ref)
	if err != nil {
		return hookError(ref, err)
	}
	writeJSON(w, http.StatusOK, api.FromAttempt(a))
	return nil
}

// deliveryList answers one page of a hook's delivery log, newest first (default
// engine.DeliveryLogLimitDefault attempts). A page with an older page names it by
// continuation token and Link (see paging.go), and by the older X-Next-Before cursor.
func (s *Server) deliveryList(w http.ResponseWriter, r *http.Request, c *call) error {
	ref := c.ref(r)
	l := listing{kind: listingDeliveries, scope: c.scope, hook: ref.Name}
	pg, err := readPaging(r, l)
	if err != nil {
		return err
	}
	p := engine.DeliveryLogParams{Limit: pg.limit, Before: pg.before}
	if pg.token != nil {
		p.Before = pg.token.before
		if p.Limit == 0 {
			p.Limit = pg.token.limit
		}
	}
	if p.Limit == 0 {
		p.Limit = engine.DeliveryLogLimitDefault
	}
	page, err := s.engine.DeliveryLogPage(r.Context(), ref, p)
	if err != nil {
		return hookError(ref, err)
	}
	out := make([]api.WebhookDelivery, 0, len(page.Attempts))
	for _, a := range page.Attempts {
		out = append(out, api.FromAttempt(a))
	}
	if page.Next != 0 {
		w.Header().Set(HeaderNextBefore, strconv.FormatInt(page.Next, 10))
		setNextPage(w, r, l, pageToken{limit: p.Limit, before: page.Next})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) redeliver(w http.ResponseWriter, r *http.Request, c *call) error {
	ref := c.ref(r)
	id := r.PathValue("event")
	a, err := s.engine.Redeliver(r.Context(), ref, id)
	if errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusNotFound, fmt.Sprintf("delivery %s of webhook %s not found", webhook.Quote(id), webhook.Quote(ref.String())))
	}
	if err != nil {
		return hookError(ref, err)
	}
	writeJSON(w, http.StatusOK, api.FromAttempt(a))
	return nil
}

// hookFieldError renames the fields of validation errors to their wire names: the webhook
// vocabulary says environmentName where the hook API says envName.
func hookFieldError(err error) error {
	var fe webhook.FieldErrors
	if !errors.As(err, &fe) {
		return err
	}
	out := make(webhook.FieldErrors, len(fe))
	for i, e := range fe {
		if e.Field == "environmentName" {
			e.Field = "envName"
		}
		out[i] = e
	}
	return out
}

// specForCreate builds the spec of a new hook from the URL's scope and the body. The body's
// scope fields may repeat the URL's but not contradict it; the fields the Webhook schema
// requires must be present.
func specForCreate(scope webhook.Scope, b api.Webhook) (webhook.Spec, error) {
	var errs webhook.FieldErrors
	if b.OrganizationName == nil {
		errs.Add("organizationName", fmt.Sprintf("is required: set it to %q, the organization in the URL", scope.Org))
	}
	checkScope(&errs, scope, b)
	if b.Active == nil {
		errs.Add("active", "is required: true to deliver events, false to create the webhook paused")
	}
	if b.DisplayName == nil {
		errs.Add("displayName", "is required: give the webhook a human-readable name")
	}
	if b.PayloadURL == nil {
		errs.Add("payloadUrl", "is required: give the URL that receives deliveries (project/stack for pulumi_deployments)")
	}
	if len(errs) > 0 {
		return webhook.Spec{}, errs
	}
	spec := webhook.Spec{
		Scope:       scope,
		Name:        deref(b.Name),
		DisplayName: *b.DisplayName,
		PayloadURL:  *b.PayloadURL,
		Secret:      deref(b.Secret),
		Active:      *b.Active,
		Format:      webhook.Format(deref(b.Format)),
	}
	if b.Name != nil && *b.Name == "" {
		return webhook.Spec{}, fieldError("name", "is empty: leave it out to have a name generated, or give one")
	}
	if err := checkFormat(b.Format); err != nil {
		return webhook.Spec{}, err
	}
	spec.Filters, spec.Groups = filtersAndGroups(b)
	spec.Normalize()
	return spec, nil // The engine validates the rest.
}

// specForUpdate applies a PATCH body to the current hook: fields left out keep their value.
// Scope and name can be repeated but not changed.
func specForUpdate(cur *store.Hook, b api.Webhook) (webhook.Spec, error) {
	var errs webhook.FieldErrors
	checkScope(&errs, cur.Scope, b)
	if b.Name != nil && *b.Name != cur.Name {
		errs.Add("name", fmt.Sprintf("cannot change from %q to %s: a webhook's name is fixed; create a new webhook instead", cur.Name, webhook.Quote(*b.Name)))
	}
	if len(errs) > 0 {
		return webhook.Spec{}, errs
	}
	if err := checkFormat(b.Format); err != nil {
		return webhook.Spec{}, err
	}
	spec := cur.Spec
	spec.Secret = ""
	if b.DisplayName != nil {
		spec.DisplayName = *b.DisplayName
	}
	if b.PayloadURL != nil {
		spec.PayloadURL = *b.PayloadURL
	}
	if b.Active != nil {
		spec.Active = *b.Active
	}
	if b.Format != nil {
		spec.Format = webhook.Format(*b.Format)
	}
	filters, groups := filtersAndGroups(b)
	if b.Filters != nil {
		spec.Filters = filters
	}
	if b.Groups != nil {
		spec.Groups = groups
	}
	spec.Normalize()
	return spec, nil // The engine validates the result.
}

// checkFormat refuses "format": "", which would otherwise silently mean the default.
func checkFormat(format *string) error {
	if format != nil && *format == "" {
		return fieldError("format", fmt.Sprintf("is empty: leave it out for %q, or give one of the formats", webhook.FormatDefault))
	}
	return nil
}

// checkScope reports body scope fields that contradict the URL's scope. An empty scope field
// is refused rather than taken for "none": leave it out instead.
func checkScope(errs *webhook.FieldErrors, scope webhook.Scope, b api.Webhook) {
	if b.OrganizationName != nil && *b.OrganizationName != scope.Org {
		errs.Add("organizationName", fmt.Sprintf("%s does not match the organization in the URL (%q): make them the same", webhook.Quote(*b.OrganizationName), scope.Org))
	}
	where := map[webhook.ScopeKind]string{
		webhook.ScopeOrganization: "this URL manages organization webhooks",
		webhook.ScopeStack:        "this URL manages the webhooks of stack " + scope.String(),
		webhook.ScopeEnvironment:  "this URL manages the webhooks of environment " + scope.String(),
	}[scope.Kind()]
	for _, f := range []struct {
		field string
		body  *string
		url   string
	}{
		{"projectName", b.ProjectName, scope.Project},
		{"stackName", b.StackName, scope.Stack},
		{"envName", b.EnvName, scope.Environment},
	} {
		switch {
		case f.body == nil || (*f.body == f.url && f.url != ""):
		case *f.body == "":
			errs.Add(f.field, fmt.Sprintf("is empty: leave it out (%s)", where))
		case f.url == "":
			errs.Add(f.field, fmt.Sprintf("is %s but %s: remove it, or use the URL of the scope you mean", webhook.Quote(*f.body), where))
		default:
			errs.Add(f.field, fmt.Sprintf("%s does not match the URL's %q: make them the same", webhook.Quote(*f.body), f.url))
		}
	}
}

func filtersAndGroups(b api.Webhook) ([]webhook.Filter, []webhook.Group) {
	var filters []webhook.Filter
	var groups []webhook.Group
	if b.Filters != nil {
		for _, f := range *b.Filters {
			filters = append(filters, webhook.Filter(f))
		}
	}
	if b.Groups != nil {
		for _, g := range *b.Groups {
			groups = append(groups, webhook.Group(g))
		}
	}
	return filters, groups
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
