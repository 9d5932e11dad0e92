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
)

// Deployment request statuses.
const (
	// DeploymentStatusQueued is a request waiting for the deployment runner.
	DeploymentStatusQueued = "queued"
	// DeploymentStatusCycleDetected is a request refused because its target already appears
	// in the chain of deployments that led to it.
	DeploymentStatusCycleDetected = "cycle_detected"
	// DeploymentStatusSkipped is a request refused because queuing it would pass a bound on
	// the work one event may create (Config.MaxDeploymentRequestsPerEvent or
	// Config.MaxDeploymentChainLength); its Reason names the bound. The deployment runner
	// leaves it alone.
	DeploymentStatusSkipped = "skipped"
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
	// Cause, for an event that a deployment produced, is that deployment's chain of targets
	// (store.Deployment.Cause), so that the hooks it sets off see the chain and cycles stop.
	Cause []string
	// Actor, when the event source knows who caused the event (the API token that emitted
	// it), is the payload's user; a "user" in Overrides replaces it. It is not part of the
	// request an idempotency key stands for.
	Actor *webhook.User
}

// EmitResult says what Emit stored. Deliveries counts the HTTP deliveries enqueued and
// DeploymentRequests the deployment requests recorded (queued, cycle_detected or skipped),
// both including those of deployment_queued events the call set off. Replayed is true when the
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
	if err := p.Validate(); err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	eventID := newID()
	payload, err := render.Payload(render.PayloadParams{
		EventID: eventID, Filter: p.Filter, Subject: p.Subject, Overrides: p.Overrides,
		ConsoleURL: e.cfg.ConsoleURL, Now: now, Actor: p.Actor, OrgDisplayName: e.cfg.OrgDisplayNames[p.Subject.Org],
	})
	if err != nil {
		var fe webhook.FieldErrors
		if errors.As(err, &fe) {
			return nil, err // names "payload" or "payload.<field>"
		}
		return nil, fmt.Errorf("emit %s for %s: build the payload: %w", p.Filter, p.Subject.String(), err)
	}
	var res *EmitResult
	var stopped *emitter // set when deployment chains were stopped, for the log
	digest := ""
	if p.IdempotencyKey != "" {
		digest = p.requestDigest() // what the key stands for; nothing to compare without one
	}
	direct := directClaims{run: e.currentRun()}
	err = e.store.EventEmit(ctx, func(tx store.EmitTx) error {
		res, stopped = &EmitResult{EventID: eventID}, nil // the store may run fn again after a conflict
		direct.reset()
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
		em := emitter{e: e, tx: tx, now: now, res: res, direct: &direct}
		ev := &store.Event{
			ID: eventID, Filter: p.Filter, Kind: p.Filter.Kind(), Subject: p.Subject,
			Payload: payload, Cause: slices.Clone(p.Cause), CreatedAt: now,
		}
		if err := em.emit(ctx, ev); err != nil {
			return err
		}
		if em.stopped > 0 {
			stopped = &em
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
		direct.reset()
		return nil, fmt.Errorf("emit %s for %s: %w", p.Filter, p.Subject.String(), err)
	}
	e.startClaimed(direct.run, direct.claimed) // durable now: send them
	if res.Replayed {
		e.log.InfoContext(ctx, "event replayed for idempotency key", "event", res.EventID,
			"filter", string(p.Filter), "subject", p.Subject.String())
		return res, nil
	}
	e.log.InfoContext(ctx, "event emitted", "event", res.EventID, "filter", string(p.Filter),
		"subject", p.Subject.String(), "deliveries", res.Deliveries, "deployment_requests", res.DeploymentRequests)
	if stopped != nil {
		e.log.WarnContext(ctx, "deployment chains stopped", "event", res.EventID, "requests_not_queued", stopped.stopped,
			"first_target", stopped.firstStop.Target.String(), "first_status", stopped.firstStop.Status,
			"first_reason", stopped.firstStop.Reason)
	}
	if res.Deliveries > len(direct.claimed) {
		e.notify() // some wait in the queue
	}
	return res, nil
}

// directClaims are the deliveries one Emit stores already claimed by this process's idle
// workers (store.EmitClaimer), and the slots they hold, started once the emit is durable.
type directClaims struct {
	run     *workerRun // nil while the workers are not running: no direct claims
	claimed []*store.ClaimedDelivery
}

// reset gives back the slots of claims a transaction made that will not commit (the store
// runs fn again, or the emit failed).
func (d *directClaims) reset() {
	if d.run != nil && len(d.claimed) > 0 {
		d.run.giveSlots(len(d.claimed))
	}
	d.claimed = nil
}

// currentRun returns the running workers' run, or nil.
func (e *Engine) currentRun() *workerRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.run
}

// notify wakes this process's dispatcher without blocking.
func (e *Engine) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// emitter stores one event and what follows from it inside EventEmit's transaction.
//
// pulumi_deployments hooks can chain stacks to each other: a deployment request for a stack
// emits deployment_queued about it, whose own pulumi_deployments hooks request more. Hooks
// that chain n stacks all to all would set off about (n-1)! requests, all in this one
// transaction, so the work one Emit creates is bounded. The chain is walked breadth first
// (the targets nearest the event first); Config.MaxDeploymentRequestsPerEvent bounds how many
// requests are queued in all, and Config.MaxDeploymentChainLength how many follow one
// another. A request past either bound is recorded as skipped with the reason and emits
// nothing, so the chain stops there. Every event stored is either the one emitted or the
// deployment_queued of a queued request, so an Emit stores at most
// MaxDeploymentRequestsPerEvent+1 events, each with one delivery or request record per
// matching hook.
type emitter struct {
	e   *Engine
	tx  store.EmitTx
	now time.Time
	res *EmitResult
	// queued counts the deployment requests queued so far.
	queued int
	// next holds the deployment_queued events still to store, in the order they were queued.
	next []*store.Event
	// stopped counts the requests recorded as cycle_detected or skipped; firstStop is the first.
	stopped   int
	firstStop *store.DeploymentRequest
	// direct collects the deliveries stored claimed by this process's idle workers.
	direct *directClaims
}

// insert stores ev's deliveries ds. While this process's workers have idle slots and the store
// can, it stores as many as the slots, the caps and the queue allow already claimed by them
// (store.EmitClaimer): they start once the emit is durable, without the claim loop.
func (em *emitter) insert(ctx context.Context, ev *store.Event, ds []store.DeliveryInsertParams) error {
	ec, ok := em.tx.(store.EmitClaimer)
	if !ok || em.direct == nil || em.direct.run == nil {
		return em.tx.DeliveryInsertMany(ctx, ev.ID, em.now, ds)
	}
	r := em.direct.run
	want := 0
	for i := range ds {
		if ds[i].State == store.DeliveryPending {
			want++
		}
	}
	n := r.takeSlots(want)
	if n == 0 {
		return em.tx.DeliveryInsertMany(ctx, ev.ID, em.now, ds)
	}
	cds, err := ec.DeliveryInsertClaimed(ctx, ev.ID, em.now, ds, em.e.claimParams(n))
	if err != nil {
		r.giveSlots(n)
		return err
	}
	r.giveSlots(n - len(cds))
	em.direct.claimed = append(em.direct.claimed, cds...)
	return nil
}

// emit stores ev and, breadth first, every deployment_queued event it sets off.
func (em *emitter) emit(ctx context.Context, ev *store.Event) error {
	em.next = append(em.next[:0], ev)
	for len(em.next) > 0 {
		ev := em.next[0]
		em.next[0] = nil
		em.next = em.next[1:]
		if err := em.store(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// store stores one event with its deliveries and deployment requests; a queued request adds
// its deployment_queued event to em.next.
func (em *emitter) store(ctx context.Context, ev *store.Event) error {
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
		if err := em.insert(ctx, ev, ds); err != nil {
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

// deploy records the deployment request a pulumi_deployments hook makes for ev and, unless the
// target is already in ev's chain of causes or a bound is reached, queues deployment_queued
// for the target.
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
	cfg := &em.e.cfg
	switch {
	case slices.Contains(ev.Cause, name):
		req.Status = DeploymentStatusCycleDetected
		req.Reason = fmt.Sprintf("cycle: %s was already deployed earlier in this chain (%s); no deployment is queued and the chain stops here",
			name, strings.Join(cause, " -> "))
	case len(ev.Cause) >= cfg.MaxDeploymentChainLength:
		req.Status = DeploymentStatusSkipped
		req.Reason = fmt.Sprintf("chain too long: %d deployments in a row triggered each other (limit %d, MaxDeploymentChainLength); no deployment is queued and the chain stops here",
			len(ev.Cause), cfg.MaxDeploymentChainLength)
	case em.queued >= cfg.MaxDeploymentRequestsPerEvent:
		req.Status = DeploymentStatusSkipped
		req.Reason = fmt.Sprintf("too many deployments from one event: the %s event %s already queued %d deployments (limit %d, MaxDeploymentRequestsPerEvent); no deployment is queued and the chain stops here",
			ev.Filter, ev.ID, em.queued, cfg.MaxDeploymentRequestsPerEvent)
	}
	if err := em.tx.DeploymentRequestInsert(ctx, req); err != nil {
		return fmt.Errorf("store deployment request for %s: %w", name, err)
	}
	em.res.DeploymentRequests++
	if req.Status != DeploymentStatusQueued {
		// One warning per Emit, with the first reason: a bound reached can stop many chains.
		if em.stopped == 0 {
			em.firstStop = req
		}
		em.stopped++
		em.e.log.DebugContext(ctx, "deployment chain stopped", "target", name, "hook", h.Ref().String(),
			"event", ev.ID, "status", req.Status, "reason", req.Reason)
		return nil
	}
	em.queued++
	// The request becomes a deployment of the target, run by the deployment runner with the
	// target's settings; its deployment_queued event carries the chain on.
	d := &store.Deployment{
		Stack: target, Operation: webhook.OperationUpdate, Source: DeploymentSourceWebhook, RequestID: req.ID,
		Cause: cause, CreatedAt: em.now,
	}
	if err := em.tx.DeploymentInsert(ctx, d); err != nil {
		return fmt.Errorf("store deployment of %s: %w", name, err)
	}
	ev2, err := em.queuedEvent(d, nil)
	if err != nil {
		return err
	}
	em.next = append(em.next, ev2)
	return nil
}

// Validate checks p as Emit does, and is the one check of an event request: the REST API and
// the CLI hand their requests to Emit (the CLI calls Validate first, before it opens the
// store). The filter and the subject follow the webhook.Event rules; the payload overrides are
// one JSON object (render.CheckOverrides; the types of their fields are checked when the
// payload is built); an idempotency key is at most IdempotencyKeyMaxLen bytes of printable
// ASCII. Every problem comes back at once, as webhook.FieldErrors naming "filter",
// "organizationName", "projectName", "stackName", "environmentName", "payload" and
// "idempotencyKey".
func (p EmitParams) Validate() error {
	var errs webhook.FieldErrors
	if err := (webhook.Event{Filter: p.Filter, Subject: p.Subject}).Validate(); err != nil {
		if !errors.As(err, &errs) {
			return err
		}
	}
	if err := render.CheckOverrides(p.Overrides); err != nil {
		errs.Add("payload", err.Error())
	}
	if p.IdempotencyKey != "" {
		if err := CheckIdempotencyKey(p.IdempotencyKey); err != nil {
			errs.Add("idempotencyKey", err.Error())
		}
	}
	return errs.Err()
}

// CheckIdempotencyKey checks an idempotency key: at most IdempotencyKeyMaxLen bytes of
// printable ASCII (it travels as an HTTP header and a command-line flag). The error says what
// is wrong and the fix; the caller names the field.
func CheckIdempotencyKey(key string) error {
	if len(key) > IdempotencyKeyMaxLen {
		return fmt.Errorf("is %d bytes long: use at most %d", len(key), IdempotencyKeyMaxLen)
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return errors.New("contains white space or a non-ASCII character: use printable ASCII, e.g. a UUID")
		}
	}
	return nil
}

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
