package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/render"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

const (
	// IdempotencyWindow is how long an idempotency key replays the first result of Emit.
	IdempotencyWindow = 24 * time.Hour
	// IdempotencyKeyMaxLen bounds the length of an idempotency key.
	IdempotencyKeyMaxLen = 255
	// CauseDepthMax bounds a chain of deployment requests: a deployment_queued event whose
	// chain of causes is this long creates no further deployment, even without a cycle.
	CauseDepthMax = 16
)

// Deployment request statuses.
const (
	// DeploymentStatusQueued is a request waiting for the deployment runner.
	DeploymentStatusQueued = "queued"
	// DeploymentStatusCycleDetected is a request refused because its target already appears
	// in the chain of deployments that led to it (or the chain is CauseDepthMax long).
	DeploymentStatusCycleDetected = "cycle_detected"
)

// ErrIdempotencyKeyReused means an idempotency key was given again, within
// IdempotencyWindow, with a different request (another filter, subject or payload): the key
// replays only the request it was first used for.
var ErrIdempotencyKeyReused = errors.New("idempotency key already used for a different request")

// idempotencyRecord is what an idempotency key stores: the first answer, and a digest of the
// request it answered so that a different request with the same key is refused rather than
// answered with another event's result. Records written before the digest existed have none
// and replay as before.
type idempotencyRecord struct {
	EmitResult
	Request string `json:"request,omitempty"`
}

// requestDigest identifies what an Emit asks for: the filter, the subject and the overrides,
// the latter in a canonical form (keys sorted, no white space, numbers as written), so the
// same request sent with other formatting still replays.
func (p EmitParams) requestDigest() string {
	h := sha256.New()
	for _, v := range []string{string(p.Filter), p.Subject.Org, p.Subject.Project, p.Subject.Stack, p.Subject.Environment} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	h.Write(canonicalJSON(p.Overrides))
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalJSON re-encodes raw with sorted keys and no white space; raw that does not parse
// (validate refuses it anyway) is used as it is.
func canonicalJSON(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

// EmitParams is an event to deliver.
type EmitParams struct {
	Filter webhook.Filter
	// Subject is the stack (Org+Project+Stack) or environment (Org+Project+Environment).
	Subject webhook.Scope
	// Overrides, when set, is a JSON object whose top-level fields replace those of the
	// generated payload (user, resourceChanges, kind, version...).
	Overrides json.RawMessage
	// IdempotencyKey, when set, makes a second Emit with the same key in the same
	// organization within IdempotencyWindow return the first result and store nothing.
	IdempotencyKey string
}

// EmitResult says what Emit stored. Deliveries counts the HTTP deliveries enqueued and
// DeploymentRequests the deployment requests recorded (queued or cycle_detected), both
// including those of deployment_queued events the call set off. Replayed is true when the
// result is the stored answer to an earlier call with the same idempotency key.
type EmitResult struct {
	EventID            string `json:"eventId"`
	Deliveries         int    `json:"deliveries"`
	DeploymentRequests int    `json:"deploymentRequests"`
	Replayed           bool   `json:"replayed,omitempty"`
}

// Emit stores an event about p.Subject with a delivery for every hook that matches it, all in
// one transaction, and wakes this process's workers. When Emit returns without error nothing
// can be lost: workers of this or any process sharing the store deliver it.
//
// Bad input comes back as webhook.FieldErrors naming the field: "filter", the subject's
// "organizationName", "projectName", "stackName", "environmentName", "payload" (or
// "payload.<field>"), "idempotencyKey".
func (e *Engine) Emit(ctx context.Context, p EmitParams) (*EmitResult, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	eventID := newID()
	payload, err := render.Payload(render.PayloadParams{
		EventID: eventID, Filter: p.Filter, Subject: p.Subject, Overrides: p.Overrides,
		ConsoleURL: e.cfg.ConsoleURL, Now: now,
	})
	if err != nil {
		var fe webhook.FieldErrors
		if errors.As(err, &fe) {
			return nil, err // names "payload" or "payload.<field>"
		}
		return nil, fmt.Errorf("emit %s for %s: build the payload: %w", p.Filter, p.Subject.String(), err)
	}
	var res *EmitResult
	digest := p.requestDigest()
	err = e.store.EventEmit(ctx, func(tx store.EmitTx) error {
		res = &EmitResult{EventID: eventID} // the store may run fn again after a conflict
		if p.IdempotencyKey != "" {
			prev, err := tx.IdempotencyGet(ctx, p.Subject.Org, p.IdempotencyKey, now.Add(-IdempotencyWindow))
			switch {
			case err == nil:
				var rec idempotencyRecord
				if err := json.Unmarshal(prev, &rec); err != nil {
					return fmt.Errorf("read the stored result of idempotency key: %w", err)
				}
				if rec.Request != "" && rec.Request != digest {
					return fmt.Errorf("%w (event %s)", ErrIdempotencyKeyReused, rec.EventID)
				}
				*res = rec.EmitResult
				res.Replayed = true
				return nil
			case !errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("look up idempotency key: %w", err)
			}
		}
		em := emitter{e: e, tx: tx, now: now, res: res}
		ev := &store.Event{
			ID: eventID, Filter: p.Filter, Kind: p.Filter.Kind(), Subject: p.Subject,
			Payload: payload, CreatedAt: now,
		}
		if err := em.emit(ctx, ev); err != nil {
			return err
		}
		if p.IdempotencyKey != "" {
			b, err := json.Marshal(idempotencyRecord{EmitResult: *res, Request: digest})
			if err != nil {
				return err
			}
			if err := tx.IdempotencyPut(ctx, p.Subject.Org, p.IdempotencyKey, b, now); err != nil {
				return fmt.Errorf("store idempotency key: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("emit %s for %s: %w", p.Filter, p.Subject.String(), err)
	}
	if res.Replayed {
		e.log.InfoContext(ctx, "event replayed for idempotency key", "event", res.EventID,
			"filter", string(p.Filter), "subject", p.Subject.String())
		return res, nil
	}
	e.log.InfoContext(ctx, "event emitted", "event", res.EventID, "filter", string(p.Filter),
		"subject", p.Subject.String(), "deliveries", res.Deliveries, "deployment_requests", res.DeploymentRequests)
	if res.Deliveries > 0 {
		e.notify()
	}
	return res, nil
}

// notify wakes this process's dispatcher without blocking.
func (e *Engine) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// emitter stores one event and what follows from it inside EventEmit's transaction.
type emitter struct {
	e   *Engine
	tx  store.EmitTx
	now time.Time
	res *EmitResult
}

func (em *emitter) emit(ctx context.Context, ev *store.Event) error {
	if err := em.tx.EventInsert(ctx, ev); err != nil {
		return fmt.Errorf("store event: %w", err)
	}
	hooks, err := em.tx.HookCandidates(ctx, ev.Subject, ev.Filter.OrgOnly())
	if err != nil {
		return fmt.Errorf("find hooks: %w", err)
	}
	var ds []store.DeliveryInsertParams
	var deployers []*store.Hook
	rendered := map[webhook.Format][]byte{}
	for _, h := range hooks {
		if !Matches(h.Spec, ev.Filter, ev.Subject) {
			continue
		}
		if h.Format == webhook.FormatPulumiDeployments {
			// Carried out right here, in this transaction: recorded as done.
			deployers = append(deployers, h)
			ds = append(ds, store.DeliveryInsertParams{
				ID: newID(), HookID: h.ID, Format: h.Format, Body: ev.Payload,
				Endpoint: "pulumi-deployments", State: store.DeliverySucceeded, NextAttemptAt: em.now,
			})
			continue
		}
		// A rendering depends only on the event and the format: render each format once.
		body, ok := rendered[h.Format]
		if !ok {
			body, err = render.Render(h.Format, render.Input{
				Filter: ev.Filter, Subject: ev.Subject, Payload: ev.Payload, ConsoleURL: em.e.cfg.ConsoleURL,
			})
			if err != nil {
				return fmt.Errorf("render %s for webhook %s: %w", h.Format, h.Ref(), err)
			}
			rendered[h.Format] = body
		}
		ds = append(ds, store.DeliveryInsertParams{
			ID: newID(), HookID: h.ID, Format: h.Format, Body: body,
			Endpoint: endpointOf(h.PayloadURL), State: store.DeliveryPending, NextAttemptAt: em.now,
		})
		em.res.Deliveries++
	}
	if len(ds) > 0 {
		if err := em.tx.DeliveryInsertMany(ctx, ev.ID, em.now, ds); err != nil {
			return fmt.Errorf("store deliveries: %w", err)
		}
	}
	for _, h := range deployers {
		if err := em.deploy(ctx, ev, h); err != nil {
			return err
		}
	}
	return nil
}

// deploy records the deployment request a pulumi_deployments hook makes for ev and, unless
// the target is already in ev's chain of causes, emits deployment_queued for the target.
func (em *emitter) deploy(ctx context.Context, ev *store.Event, h *store.Hook) error {
	project, stack, err := webhook.ParseDeploymentTarget(h.PayloadURL)
	if err != nil {
		return fmt.Errorf("webhook %s: payloadUrl: %w", h.Ref(), err)
	}
	target := webhook.Scope{Org: h.Org, Project: project, Stack: stack}
	name := target.String()
	cause := append(slices.Clone(ev.Cause), name)
	req := &store.DeploymentRequest{
		ID: newID(), Target: target, HookID: h.ID, EventID: ev.ID, Cause: cause,
		Status: DeploymentStatusQueued, CreatedAt: em.now,
	}
	switch {
	case slices.Contains(ev.Cause, name):
		req.Status = DeploymentStatusCycleDetected
		req.Reason = fmt.Sprintf("cycle: %s was already deployed earlier in this chain (%s); no deployment is queued and the chain stops here",
			name, strings.Join(cause, " -> "))
	case len(ev.Cause) >= CauseDepthMax:
		req.Status = DeploymentStatusCycleDetected
		req.Reason = fmt.Sprintf("chain too long: %d deployments in a row triggered each other (limit %d); no deployment is queued and the chain stops here",
			len(ev.Cause), CauseDepthMax)
	}
	if err := em.tx.DeploymentRequestInsert(ctx, req); err != nil {
		return fmt.Errorf("store deployment request for %s: %w", name, err)
	}
	em.res.DeploymentRequests++
	if req.Status != DeploymentStatusQueued {
		em.e.log.WarnContext(ctx, "deployment chain stopped", "target", name, "hook", h.Ref().String(),
			"event", ev.ID, "reason", req.Reason)
		return nil
	}
	id := newID()
	payload, err := render.Payload(render.PayloadParams{
		EventID: id, Filter: webhook.DeploymentQueued, Subject: target,
		ConsoleURL: em.e.cfg.ConsoleURL, Now: em.now,
	})
	if err != nil {
		return fmt.Errorf("render deployment_queued for %s: %w", name, err)
	}
	return em.emit(ctx, &store.Event{
		ID: id, Filter: webhook.DeploymentQueued, Kind: webhook.DeploymentQueued.Kind(), Subject: target,
		Payload: payload, Cause: cause, CreatedAt: em.now,
	})
}

func (p EmitParams) validate() error {
	var errs webhook.FieldErrors
	switch {
	case p.Filter == "":
		errs.Add("filter", "is required: name the event, e.g. \"update_succeeded\"")
	case !p.Filter.Valid():
		_, err := webhook.ParseFilter(string(p.Filter))
		errs.Add("filter", err.Error())
	}
	s := p.Subject
	if s.Org == "" {
		errs.Add("organizationName", "is required: name the organization the event happened in")
	}
	switch p.Filter.Subject() {
	case webhook.ScopeStack:
		if s.Project == "" {
			errs.Add("projectName", fmt.Sprintf("is required: %q is a stack event, give the stack's project", p.Filter))
		}
		if s.Stack == "" {
			errs.Add("stackName", fmt.Sprintf("is required: %q is a stack event, give the stack's name", p.Filter))
		}
		if s.Environment != "" {
			errs.Add("environmentName", fmt.Sprintf("must be empty: %q is a stack event, name the stack with stackName instead", p.Filter))
		}
	case webhook.ScopeEnvironment:
		if s.Project == "" {
			errs.Add("projectName", fmt.Sprintf("is required: %q is an environment event, give the environment's project", p.Filter))
		}
		if s.Environment == "" {
			errs.Add("environmentName", fmt.Sprintf("is required: %q is an environment event, give the environment's name", p.Filter))
		}
		if s.Stack != "" {
			errs.Add("stackName", fmt.Sprintf("must be empty: %q is an environment event, name the environment with environmentName instead", p.Filter))
		}
	}
	for _, f := range []struct{ name, v string }{
		{"organizationName", s.Org}, {"projectName", s.Project}, {"stackName", s.Stack}, {"environmentName", s.Environment},
	} {
		if containsSpaceOrSlash(f.v) {
			errs.Add(f.name, fmt.Sprintf("%q contains a slash or white space: use the bare name", f.v))
		}
	}
	if len(p.IdempotencyKey) > IdempotencyKeyMaxLen {
		errs.Add("idempotencyKey", fmt.Sprintf("is %d bytes long: use at most %d", len(p.IdempotencyKey), IdempotencyKeyMaxLen))
	}
	return errs.Err()
}

func containsSpaceOrSlash(s string) bool { return strings.ContainsAny(s, "/ \t\r\n") }

// endpointOf is the host:port a payload URL reaches, the unit of the per-endpoint cap.
func endpointOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
