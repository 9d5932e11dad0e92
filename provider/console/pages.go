package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Page sizes and bounds.
const (
	// ChartAttemptsPerHook bounds how many of each hook's newest attempts the chart counts.
	ChartAttemptsPerHook = 500
	// RecentEventsMax is how many events the overview lists.
	RecentEventsMax = 20
	// recentDeliveriesScan bounds the deliveries looked up to find the recent events.
	recentDeliveriesScan = 200
	// DeliveriesPerPage is the page size of a hook's delivery log.
	DeliveriesPerPage = 100
)

// scopeFromPath returns the scope the URL names (its organization, stack or environment).
func scopeFromPath(r *http.Request) webhook.Scope {
	return webhook.Scope{Org: r.PathValue("org"), Project: r.PathValue("project"), Stack: r.PathValue("stack"), Environment: r.PathValue("env")}
}

type hookRow struct {
	Hook *store.Hook
	Last *store.Attempt
	OK   bool
}

type eventRow struct {
	Event      *store.Event
	Deliveries []deliveryRow
}

type deliveryRow struct {
	Delivery *store.Delivery
	Hook     *store.Hook // nil when the hook was deleted
}

type overviewData struct {
	Scope  webhook.Scope
	Hooks  []hookRow
	Chart  chart
	Events []eventRow
	// Deployments are a stack's newest, on a stack's page only.
	Deployments []*store.Deployment
}

// overviewPage lists the hooks of the organization (or of one stack or environment, the pages
// console links in payloads point at), the 24-hour chart and the recent events.
func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	scope := scopeFromPath(r)
	if err := scope.Validate(); err != nil {
		return errNotFound("page " + webhook.Quote(r.URL.Path))
	}
	all, err := c.engine.HookList(ctx, store.HookListParams{Scope: webhook.Scope{Org: scope.Org}})
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	d := overviewData{Scope: scope}
	var attempts []*store.Attempt
	byID := map[int64]*store.Hook{}
	for _, h := range all {
		byID[h.ID] = h
		as, err := c.engine.DeliveryLog(ctx, h.Ref(), engine.DeliveryLogParams{Limit: ChartAttemptsPerHook})
		if err != nil {
			return err
		}
		attempts = append(attempts, as...)
		if scope.Kind() != webhook.ScopeOrganization && h.Scope != scope {
			continue
		}
		row := hookRow{Hook: h}
		if len(as) > 0 {
			row.Last, row.OK = as[0], as[0].Succeeded()
		}
		d.Hooks = append(d.Hooks, row)
	}
	slices.SortFunc(attempts, func(a, b *store.Attempt) int { return b.StartedAt.Compare(a.StartedAt) })
	var inScope []*store.Attempt
	for _, a := range attempts {
		if h := byID[a.HookID]; h != nil && (scope.Kind() == webhook.ScopeOrganization || h.Scope == scope) {
			inScope = append(inScope, a)
		}
	}
	d.Chart = newChart(inScope, now)
	if scope.Kind() == webhook.ScopeStack {
		if d.Deployments, err = c.store.DeploymentList(ctx, store.DeploymentListParams{Stack: scope, Limit: StackDeploymentsMax}); err != nil {
			return err
		}
	}
	d.Events, err = c.recentEvents(r, attempts, byID, scope)
	if err != nil {
		return err
	}
	title := "Webhooks of " + scope.Org
	if scope.Kind() != webhook.ScopeOrganization {
		title = "Webhooks of " + scopeLabel(scope)
	}
	c.show(w, r, v, http.StatusOK, "overview", title, "Webhooks", d)
	return nil
}

// recentEvents finds the newest events that reached the organization's hooks, from their
// attempts (newest first), with all their deliveries. On a stack or environment page, only the
// events about it.
func (c *Console) recentEvents(r *http.Request, attempts []*store.Attempt, hooks map[int64]*store.Hook, scope webhook.Scope) ([]eventRow, error) {
	ctx := r.Context()
	seenDelivery, seenEvent := map[string]bool{}, map[string]bool{}
	var out []eventRow
	for _, a := range attempts {
		if len(out) >= RecentEventsMax || len(seenDelivery) >= recentDeliveriesScan {
			break
		}
		if seenDelivery[a.DeliveryID] {
			continue
		}
		seenDelivery[a.DeliveryID] = true
		d, err := c.store.DeliveryGet(ctx, a.DeliveryID)
		if errors.Is(err, store.ErrNotFound) {
			continue // Pruned meanwhile.
		}
		if err != nil {
			return nil, fmt.Errorf("recent events: %w", err)
		}
		if seenEvent[d.EventID] {
			continue
		}
		seenEvent[d.EventID] = true
		row, err := c.eventRow(r, d.EventID, hooks)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if scope.Kind() != webhook.ScopeOrganization && row.Event.Subject != scope {
			continue
		}
		out = append(out, row)
	}
	return out, nil
}

// eventRow reads an event and its deliveries, naming each delivery's hook from hooks (or the
// store, when hooks lacks it).
func (c *Console) eventRow(r *http.Request, id string, hooks map[int64]*store.Hook) (eventRow, error) {
	ctx := r.Context()
	ev, err := c.store.EventGet(ctx, id)
	if err != nil {
		return eventRow{}, fmt.Errorf("event %s: %w", id, err)
	}
	ds, err := c.store.DeliveryListByEvent(ctx, id)
	if err != nil {
		return eventRow{}, fmt.Errorf("deliveries of event %s: %w", id, err)
	}
	row := eventRow{Event: ev}
	for _, d := range ds {
		h := hooks[d.HookID]
		if h == nil {
			h, err = c.store.HookGetByID(ctx, d.HookID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				h = nil
			case err != nil:
				return eventRow{}, fmt.Errorf("hook of delivery %s: %w", d.ID, err)
			}
			if h != nil && h.Org != ev.Subject.Org {
				h = nil
			}
		}
		row.Deliveries = append(row.Deliveries, deliveryRow{Delivery: d, Hook: h})
	}
	return row, nil
}

type eventData struct {
	Row eventRow
}

// eventPage shows one event: its payload and every delivery of it.
func (c *Console) eventPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	id := r.PathValue("event")
	row, err := c.eventRow(r, id, map[int64]*store.Hook{})
	if errors.Is(err, store.ErrNotFound) || (err == nil && row.Event.Subject.Org != v.token.Org) {
		return errNotFound("event " + webhook.Quote(id))
	}
	if err != nil {
		return err
	}
	c.show(w, r, v, http.StatusOK, "event", "Event "+string(row.Event.Filter), "Recent events", eventData{Row: row})
	return nil
}

type hookData struct {
	Hook     *store.Hook
	Groups   []webhook.Group
	Attempts []*store.Attempt
	Chart    chart
	Status   string
	Event    string
	Statuses []string
	Events   []string
	Older    string
	Newer    bool
}

// hookPage shows one hook: its settings, its chart and its delivery log, newest first,
// filtered by status and event.
func (c *Console) hookPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	ref := store.HookRef{Scope: scopeFromPath(r), Name: r.PathValue("hook")}
	h, err := c.engine.HookGet(ctx, ref)
	if err != nil {
		return hookNotFound(ref, err)
	}
	q := r.URL.Query()
	d := hookData{Hook: h, Groups: h.EffectiveGroups(), Status: q.Get("status"), Event: q.Get("event"),
		Statuses: []string{"succeeded", "failed"}}
	for _, f := range webhook.AllFilters() {
		d.Events = append(d.Events, string(f))
	}
	d.Events = append(d.Events, string(webhook.Ping))
	var errs webhook.FieldErrors
	if d.Status != "" && !slices.Contains(d.Statuses, d.Status) {
		errs.Add("status", fmt.Sprintf("%s is not a status: choose succeeded or failed, or none for all", webhook.Quote(d.Status)))
	}
	if d.Event != "" && !slices.Contains(d.Events, d.Event) {
		errs.Add("event", fmt.Sprintf("%s is not an event: choose one of the listed events, or none for all", webhook.Quote(d.Event)))
	}
	var before int64
	if s := q.Get("before"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 1 {
			errs.Add("before", fmt.Sprintf("%s is not a positive number: follow the Older link", webhook.Quote(s)))
		}
	}
	if err := errs.Err(); err != nil {
		return err
	}
	page, err := c.engine.DeliveryLogPage(ctx, ref, engine.DeliveryLogParams{Limit: DeliveriesPerPage, Before: before})
	if err != nil {
		return hookNotFound(ref, err)
	}
	for _, a := range page.Attempts {
		if (d.Status == "succeeded") != a.Succeeded() && d.Status != "" {
			continue
		}
		if d.Event != "" && string(a.Filter) != d.Event {
			continue
		}
		d.Attempts = append(d.Attempts, a)
	}
	if page.Next != 0 {
		nq := url.Values{"before": {strconv.FormatInt(page.Next, 10)}}
		if d.Status != "" {
			nq.Set("status", d.Status)
		}
		if d.Event != "" {
			nq.Set("event", d.Event)
		}
		d.Older = hookPath(ref) + "?" + nq.Encode()
	}
	d.Newer = before != 0
	recent, err := c.engine.DeliveryLog(ctx, ref, engine.DeliveryLogParams{Limit: ChartAttemptsPerHook})
	if err != nil {
		return hookNotFound(ref, err)
	}
	d.Chart = newChart(recent, c.cfg.Now())
	c.show(w, r, v, http.StatusOK, "hook", h.DisplayName, "Webhooks", d)
	return nil
}

// hookNotFound names the hook in a 404; other errors pass.
func hookNotFound(ref store.HookRef, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("webhook " + webhook.Quote(ref.String()))
	}
	return err
}
