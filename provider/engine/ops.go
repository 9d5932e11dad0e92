package engine

import (
	"context"
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/render"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/sender"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Delivery log page sizes.
const (
	DeliveryLogLimitDefault = 100
	DeliveryLogLimitMax     = 1000
)

// DeliveryLogParams pages through a hook's attempts, newest first. Limit 0 means
// DeliveryLogLimitDefault; Before, when non-zero, returns attempts older than the attempt
// with that ID (pass the last ID of the previous page).
type DeliveryLogParams struct {
	Limit  int
	Before int64
}

// Ping sends a ping event to the hook ref names, now, whether or not it is active, and returns
// the recorded attempt. The ping is stored as an event with one delivery, so it appears in the
// delivery log and can be redelivered. A failed ping is an attempt with an error or a non-2xx
// response code, not an error of Ping.
func (e *Engine) Ping(ctx context.Context, ref store.HookRef) (*store.Attempt, error) {
	h, err := e.HookGet(ctx, ref)
	if err != nil {
		return nil, err
	}
	if h.Format == webhook.FormatPulumiDeployments {
		return nil, webhook.FieldErrors{{Field: "format", Message: "a pulumi_deployments webhook starts deployments instead of sending HTTP requests, so it cannot be pinged: ping a raw, slack or ms_teams webhook"}}
	}
	secret, err := e.store.HookSecretGet(ctx, h.ID)
	if err != nil {
		return nil, fmt.Errorf("ping webhook %s: read its secret: %w", ref, err)
	}
	now := e.cfg.Now()
	subject := h.Scope
	ev := &store.Event{ID: newID(), Filter: webhook.Ping, Kind: webhook.KindPing, Subject: subject, CreatedAt: now}
	ev.Payload, err = render.Payload(render.PayloadParams{
		EventID: ev.ID, Filter: webhook.Ping, Subject: subject, ConsoleURL: e.cfg.ConsoleURL, Now: now,
	})
	if err != nil {
		return nil, fmt.Errorf("ping webhook %s: build the payload: %w", ref, err)
	}
	body, err := render.Render(h.Format, render.Input{Filter: webhook.Ping, Subject: subject, Payload: ev.Payload, ConsoleURL: e.cfg.ConsoleURL})
	if err != nil {
		return nil, fmt.Errorf("ping webhook %s: render %s: %w", ref, h.Format, err)
	}
	d := &store.DeliveryInsertParams{
		ID: newID(), HookID: h.ID, Format: h.Format, Body: body, Endpoint: endpointOf(h.PayloadURL),
		State: store.DeliveryFailed, NextAttemptAt: now,
	}
	res := e.sender.Send(ctx, sender.Request{URL: h.PayloadURL, DeliveryID: d.ID, Kind: webhook.KindPing, Body: body, Secret: secret})
	if res.Outcome == sender.Succeeded {
		d.State = store.DeliverySucceeded
	}
	rec := res.Attempt
	rec.DeliveryID, rec.HookID, rec.Number, rec.Filter, rec.Kind = d.ID, h.ID, 1, webhook.Ping, webhook.KindPing
	a, err := e.store.AttemptRecord(ctx, store.AttemptRecordParams{Event: ev, Delivery: d, Record: rec, Now: e.cfg.Now()})
	if err != nil {
		return nil, fmt.Errorf("ping webhook %s: record the attempt: %w", ref, err)
	}
	e.observe(d.State, rec)
	e.logSync(ctx, "webhook pinged", ref, d.ID, h.PayloadURL, rec)
	return a, nil
}

// Redeliver sends a recorded delivery of the hook ref names again: the original body, byte for
// byte, with the same Pulumi-Webhook-ID, to the hook's current URL and signed with its current
// secret. The new attempt is recorded and returned. A delivery of another hook is
// store.ErrNotFound.
func (e *Engine) Redeliver(ctx context.Context, ref store.HookRef, deliveryID string) (*store.Attempt, error) {
	if deliveryID == "" {
		return nil, webhook.FieldErrors{{Field: "deliveryId", Message: "is required: give the ID of a delivery from the webhook's delivery log"}}
	}
	h, err := e.HookGet(ctx, ref)
	if err != nil {
		return nil, err
	}
	d, err := e.store.DeliveryGet(ctx, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("redeliver %q to webhook %s: %w", deliveryID, ref, err)
	}
	if d.HookID != h.ID {
		return nil, fmt.Errorf("redeliver %q: no such delivery of webhook %s: %w", deliveryID, ref, store.ErrNotFound)
	}
	if d.Format == webhook.FormatPulumiDeployments || h.Format == webhook.FormatPulumiDeployments {
		return nil, webhook.FieldErrors{{Field: "deliveryId", Message: fmt.Sprintf("delivery %q started a deployment and has no HTTP request to send again: redeliver a delivery of a raw, slack or ms_teams webhook", deliveryID)}}
	}
	secret, err := e.store.HookSecretGet(ctx, h.ID)
	if err != nil {
		return nil, fmt.Errorf("redeliver %q to webhook %s: read its secret: %w", deliveryID, ref, err)
	}
	res := e.sender.Send(ctx, sender.Request{URL: h.PayloadURL, DeliveryID: d.ID, Kind: d.Kind, Body: d.Body, Secret: secret})
	rec := res.Attempt
	rec.DeliveryID, rec.HookID, rec.Number, rec.Filter, rec.Kind = d.ID, h.ID, d.Attempts+1, d.Filter, d.Kind
	a, err := e.store.AttemptRecord(ctx, store.AttemptRecordParams{Record: rec, Now: e.cfg.Now()})
	if err != nil {
		return nil, fmt.Errorf("redeliver %q to webhook %s: record the attempt: %w", deliveryID, ref, err)
	}
	state := store.DeliveryFailed
	if res.Outcome == sender.Succeeded {
		state = store.DeliverySucceeded
	}
	e.observe(state, rec)
	e.logSync(ctx, "delivery redelivered", ref, d.ID, h.PayloadURL, rec)
	return a, nil
}

// logSync logs a ping or redelivery: where it went and how it ended, never the URL's path
// (it may carry a token), the body or the secret.
func (e *Engine) logSync(ctx context.Context, msg string, ref store.HookRef, deliveryID, payloadURL string, rec store.Attempt) {
	attrs := []any{"hook", ref.String(), "hook_id", rec.HookID, "delivery", deliveryID, "endpoint", endpointOf(payloadURL),
		"status", rec.ResponseCode, "duration", rec.Duration.String()}
	if rec.Error != "" {
		attrs = append(attrs, "error", redact(rec.Error, payloadURL))
	}
	e.log.InfoContext(ctx, msg, attrs...)
}

func (e *Engine) observe(state store.DeliveryState, rec store.Attempt) {
	if e.cfg.Observer == nil {
		return
	}
	outcome := OutcomeFailed
	if state == store.DeliverySucceeded {
		outcome = OutcomeSucceeded
	}
	e.cfg.Observer.AttemptFinished(outcome, rec.Duration)
}

// DeliveryLog returns the hook's recorded attempts, newest first, one page at a time.
func (e *Engine) DeliveryLog(ctx context.Context, ref store.HookRef, p DeliveryLogParams) ([]*store.Attempt, error) {
	page, err := e.DeliveryLogPage(ctx, ref, p)
	return page.Attempts, err
}

// DeliveryLogPage is one page of a hook's delivery log.
type DeliveryLogPage struct {
	// Attempts are the page's attempts, newest first.
	Attempts []*store.Attempt
	// Next, when non-zero, is the Before of the next (older) page: older attempts exist. It
	// is zero on the last page, even a full one.
	Next int64
}

// DeliveryLogPage returns one page of the hook's recorded attempts, newest first, and tells
// whether an older page exists. Attempt IDs only grow, so attempts recorded while a caller
// pages land before its first page, never between its pages: following Next visits every
// older attempt once.
func (e *Engine) DeliveryLogPage(ctx context.Context, ref store.HookRef, p DeliveryLogParams) (DeliveryLogPage, error) {
	var errs webhook.FieldErrors
	switch {
	case p.Limit < 0:
		errs.Add("limit", fmt.Sprintf("is %d: give a page size between 1 and %d, or 0 for %d", p.Limit, DeliveryLogLimitMax, DeliveryLogLimitDefault))
	case p.Limit > DeliveryLogLimitMax:
		errs.Add("limit", fmt.Sprintf("is %d: give at most %d and page with before", p.Limit, DeliveryLogLimitMax))
	case p.Limit == 0:
		p.Limit = DeliveryLogLimitDefault
	}
	if p.Before < 0 {
		errs.Add("before", fmt.Sprintf("is %d: give the ID of the last attempt of the previous page, or 0 for the newest", p.Before))
	}
	if err := errs.Err(); err != nil {
		return DeliveryLogPage{}, err
	}
	h, err := e.HookGet(ctx, ref)
	if err != nil {
		return DeliveryLogPage{}, err
	}
	as, err := e.store.AttemptList(ctx, store.AttemptListParams{HookID: h.ID, Limit: p.Limit, Before: p.Before})
	if err != nil {
		return DeliveryLogPage{}, fmt.Errorf("delivery log of webhook %s: %w", ref, err)
	}
	page := DeliveryLogPage{Attempts: as}
	if len(as) == 0 {
		return page, nil
	}
	// One more indexed lookup tells a last page from a full one, whatever page size the
	// store caps Limit at.
	last := as[len(as)-1].ID
	older, err := e.store.AttemptList(ctx, store.AttemptListParams{HookID: h.ID, Limit: 1, Before: last})
	if err != nil {
		return DeliveryLogPage{}, fmt.Errorf("delivery log of webhook %s: %w", ref, err)
	}
	if len(older) > 0 {
		page.Next = last
	}
	return page, nil
}

// QueueStats describes the delivery queue now (for metrics and readiness).
func (e *Engine) QueueStats(ctx context.Context) (store.QueueStats, error) {
	s, err := e.store.DeliveryStats(ctx, e.cfg.Now())
	if err != nil {
		return store.QueueStats{}, fmt.Errorf("queue stats: %w", err)
	}
	return s, nil
}

// DeploymentRequests lists the deployment requests recorded for target, a stack.
func (e *Engine) DeploymentRequests(ctx context.Context, target webhook.Scope) ([]*store.DeploymentRequest, error) {
	if err := target.CheckStack("the target of deployment requests"); err != nil {
		return nil, err
	}
	rs, err := e.store.DeploymentRequestList(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("deployment requests of %s: %w", target.String(), err)
	}
	return rs, nil
}
