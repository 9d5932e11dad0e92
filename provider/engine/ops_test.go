package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestPing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/broken" {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("pong"))
	})
	const secret = "ping-secret"
	h := b.createHook(t, hookSpec("pinged", rc.url("/ok"), func(s *webhook.Spec) {
		s.Secret = secret
		s.Scope = stackSubject
		s.Active = false // ping works on inactive hooks too
	}))
	a, err := b.eng.Ping(ctx, h.Ref())
	if err != nil {
		t.Fatal(err)
	}
	got := rc.next(t)
	checkSigned(t, got, secret)
	if got.header.Get("Pulumi-Webhook-Kind") != "ping" || got.header.Get("Pulumi-Webhook-ID") != a.DeliveryID {
		t.Errorf("ping headers: kind %q id %q; want ping and %s", got.header.Get("Pulumi-Webhook-Kind"), got.header.Get("Pulumi-Webhook-ID"), a.DeliveryID)
	}
	if a.ID == 0 || a.ResponseCode != 200 || string(a.ResponseBody) != "pong" || a.Kind != webhook.KindPing || a.Filter != webhook.Ping || a.HookID != h.ID {
		t.Errorf("ping attempt = %+v", a)
	}
	b.obs.wantOutcome(t, OutcomeSucceeded)
	d := b.delivery(t, a.DeliveryID)
	if d.State != store.DeliverySucceeded || string(d.Body) != string(got.body) {
		t.Errorf("ping delivery = %+v", d)
	}
	// The body is exactly Pulumi Cloud's ping, whatever the hook's scope.
	if want := fmt.Sprintf(`{"timestamp":%d,"message":"%s"}`, b.clock.Now().Unix(), webhook.PingMessage); string(got.body) != want {
		t.Errorf("ping body %s, want %s", got.body, want)
	}

	// A failing endpoint is an attempt with its answer, not an error.
	broken := b.createHook(t, hookSpec("broken", rc.url("/broken")))
	a, err = b.eng.Ping(ctx, broken.Ref())
	if err != nil || a.ResponseCode != 500 {
		t.Fatalf("ping of a failing endpoint: %+v, %v", a, err)
	}
	b.obs.wantOutcome(t, OutcomeFailed)
	if d := b.delivery(t, a.DeliveryID); d.State != store.DeliveryFailed {
		t.Errorf("failed ping delivery state %s", d.State)
	}

	_, err = b.eng.Ping(ctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "nope"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ping of a missing hook: %v, want ErrNotFound", err)
	}
	_, err = b.eng.Ping(ctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}})
	wantFieldError(t, err, "name")
	deployer := b.createHook(t, webhook.Spec{Scope: stackSubject, Name: "deployer", DisplayName: "d", PayloadURL: "web/other", Active: true, Format: webhook.FormatPulumiDeployments})
	_, err = b.eng.Ping(ctx, deployer.Ref())
	wantFieldError(t, err, "format")
}

func TestRedeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	const secret = "redeliver-secret"
	h := b.createHook(t, hookSpec("again", rc.url("/"), func(s *webhook.Spec) { s.Secret = secret }))
	other := b.createHook(t, hookSpec("other", rc.url("/other"), func(s *webhook.Spec) { s.Filters = []webhook.Filter{webhook.StackCreated} }))
	b.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject,
		Overrides: json.RawMessage(`{"user": {"name": "Jo", "githubLogin": "jo", "avatarUrl": ""}}`)})
	first := rc.next(t)
	b.obs.wantOutcome(t, OutcomeSucceeded)
	id := b.onlyDelivery(t, res.EventID).ID

	b.clock.Advance(time.Hour)
	a, err := b.eng.Redeliver(ctx, h.Ref(), id)
	if err != nil {
		t.Fatal(err)
	}
	again := rc.next(t)
	if string(again.body) != string(first.body) || again.header.Get("Pulumi-Webhook-ID") != id {
		t.Errorf("redelivery differs: id %q body %s; want %s and %s", again.header.Get("Pulumi-Webhook-ID"), again.body, id, first.body)
	}
	checkSigned(t, again, secret)
	if again.header.Get("webhook-timestamp") == first.header.Get("webhook-timestamp") {
		t.Errorf("redelivery reused the old webhook-timestamp %s", first.header.Get("webhook-timestamp"))
	}
	if a.DeliveryID != id || a.ResponseCode != 200 || a.Number != 2 {
		t.Errorf("redelivery attempt = %+v; want attempt 2 of %s", a, id)
	}
	log, err := b.eng.DeliveryLog(ctx, h.Ref(), DeliveryLogParams{})
	if err != nil || len(log) != 2 || log[0].ID != a.ID || log[1].DeliveryID != id {
		t.Fatalf("delivery log = %+v, %v; want the redelivery first, then the original", log, err)
	}

	if _, err := b.eng.Redeliver(ctx, other.Ref(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("redeliver through another hook: %v, want ErrNotFound", err)
	}
	if _, err := b.eng.Redeliver(ctx, h.Ref(), "no-such-delivery"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("redeliver an unknown delivery: %v, want ErrNotFound", err)
	}
	_, err = b.eng.Redeliver(ctx, h.Ref(), "")
	wantFieldError(t, err, "deliveryId")
	if _, err := b.eng.Redeliver(ctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "gone"}, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("redeliver through a missing hook: %v", err)
	}
}

func TestDeliveryLogPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	h := b.createHook(t, hookSpec("paged", rc.url("/")))
	var ids []int64
	for range 5 {
		a, err := b.eng.Ping(ctx, h.Ref())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	var got []int64
	before := int64(0)
	for page := 0; ; page++ {
		as, err := b.eng.DeliveryLog(ctx, h.Ref(), DeliveryLogParams{Limit: 2, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 0 {
			break
		}
		if len(as) > 2 || page > 3 {
			t.Fatalf("page %d has %d attempts", page, len(as))
		}
		for _, a := range as {
			got = append(got, a.ID)
		}
		before = as[len(as)-1].ID
	}
	if len(got) != 5 {
		t.Fatalf("paged through %v, want 5 attempts", got)
	}
	for i := range got {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("paged order %v, want newest first of %v", got, ids)
		}
	}
	for _, c := range []struct {
		p     DeliveryLogParams
		field string
	}{
		{DeliveryLogParams{Limit: -1}, "limit"},
		{DeliveryLogParams{Limit: DeliveryLogLimitMax + 1}, "limit"},
		{DeliveryLogParams{Before: -5}, "before"},
	} {
		_, err := b.eng.DeliveryLog(ctx, h.Ref(), c.p)
		wantFieldError(t, err, c.field)
	}
	if _, err := b.eng.DeliveryLog(ctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "none"}, DeliveryLogParams{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("log of a missing hook: %v", err)
	}
}

// TestDeliveryLogPageNext: Next names the older page exactly when one exists (a full last page
// has none), and following it while attempts are recorded visits the first ones once each.
func TestDeliveryLogPageNext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	h := b.createHook(t, hookSpec("next", rc.url("/")))
	if page, err := b.eng.DeliveryLogPage(ctx, h.Ref(), DeliveryLogParams{}); err != nil || len(page.Attempts) != 0 || page.Next != 0 {
		t.Fatalf("an empty log = %+v, %v", page, err)
	}
	var ids []int64 // newest first
	for range 4 {
		a, err := b.eng.Ping(ctx, h.Ref())
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]int64{a.ID}, ids...)
	}
	if page, err := b.eng.DeliveryLogPage(ctx, h.Ref(), DeliveryLogParams{Limit: 4}); err != nil || len(page.Attempts) != 4 || page.Next != 0 {
		t.Fatalf("a full last page = %d attempts, Next %d, %v; want 4 and no Next", len(page.Attempts), page.Next, err)
	}
	var got []int64
	p := DeliveryLogParams{Limit: 3}
	for {
		page, err := b.eng.DeliveryLogPage(ctx, h.Ref(), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Attempts {
			got = append(got, a.ID)
		}
		if page.Next == 0 {
			break
		}
		if page.Next != page.Attempts[len(page.Attempts)-1].ID {
			t.Fatalf("Next %d is not the page's last attempt", page.Next)
		}
		if _, err := b.eng.Ping(ctx, h.Ref()); err != nil { // recorded between pages
			t.Fatal(err)
		}
		p.Before = page.Next
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("paged through %v, want %v", got, ids)
	}
	if _, err := b.eng.DeliveryLogPage(ctx, h.Ref(), DeliveryLogParams{Limit: DeliveryLogLimitMax + 1}); err == nil {
		t.Error("a page over the maximum was accepted")
	}
}

func deployHook(name string, on webhook.Scope, target string) webhook.Spec {
	return webhook.Spec{Scope: on, Name: name, DisplayName: name, PayloadURL: target, Active: true, Format: webhook.FormatPulumiDeployments}
}

func TestDeploymentRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	a := webhook.Scope{Org: "acme", Project: "web", Stack: "a"}
	target := webhook.Scope{Org: "acme", Project: "net", Stack: "b"}
	b.createHook(t, deployHook("deploy-b", a, "net/b"))
	watcher := b.createHook(t, hookSpec("watch", "http://127.0.0.1:9/", func(s *webhook.Spec) {
		s.Filters = []webhook.Filter{webhook.DeploymentQueued}
	}))
	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: a})
	if res.DeploymentRequests != 1 || res.Deliveries != 1 {
		t.Fatalf("EmitResult = %+v; want 1 deployment request and 1 delivery (deployment_queued to the watcher)", res)
	}
	reqs, err := b.eng.DeploymentRequests(ctx, target)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("DeploymentRequests(b) = %+v, %v", reqs, err)
	}
	r := reqs[0]
	if r.Status != DeploymentStatusQueued || r.EventID != res.EventID || r.Target != target || strings.Join(r.Cause, ",") != "acme/net/b" {
		t.Errorf("request = %+v", r)
	}
	// The deployment_queued event about b reached the org hook, carrying the cause.
	as, err := b.store.AttemptList(ctx, store.AttemptListParams{HookID: watcher.ID, Limit: 10})
	if err != nil || len(as) != 0 {
		t.Fatalf("no attempts expected yet: %v %v", as, err)
	}
	ev := findEvent(t, b, webhook.DeploymentQueued, target)
	if strings.Join(ev.Cause, ",") != "acme/net/b" || !strings.Contains(string(ev.Payload), `"stackName":"b"`) {
		t.Errorf("deployment_queued event = %+v", ev)
	}
	if other, err := b.eng.DeploymentRequests(ctx, a); err != nil || len(other) != 0 {
		t.Errorf("requests for a = %v, %v; want none", other, err)
	}
	for _, bad := range []struct {
		s     webhook.Scope
		field string
	}{
		{webhook.Scope{Project: "p", Stack: "s"}, "organizationName"},
		{webhook.Scope{Org: "o", Stack: "s"}, "projectName"},
		{webhook.Scope{Org: "o", Project: "p"}, "stackName"},
		{webhook.Scope{Org: "o", Project: "p", Environment: "e"}, "environmentName"},
		{webhook.Scope{Org: "o", Project: "p", Stack: "a/b"}, "stackName"},
	} {
		_, err := b.eng.DeploymentRequests(ctx, bad.s)
		wantFieldError(t, err, bad.field)
	}
}

// findEvent finds the single event of filter about subject through its deliveries' events.
func findEvent(t *testing.T, b *testBundle, f webhook.Filter, subject webhook.Scope) *store.Event {
	t.Helper()
	var id string
	if err := b.store.DB().QueryRow(`SELECT id FROM events WHERE filter = ? AND stack = ?`, string(f), subject.Stack).Scan(&id); err != nil {
		t.Fatalf("find %s event about %s: %v", f, subject.String(), err)
	}
	ev, err := b.eng.cfg.Store.EventGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestDeploymentCycles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stack := func(s string) webhook.Scope { return webhook.Scope{Org: "acme", Project: "p", Stack: s} }

	t.Run("a->b->a", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.createHook(t, deployHook("to-b", stack("a"), "p/b"))
		b.createHook(t, deployHook("to-a", stack("b"), "p/a"))
		res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stack("a")})
		// a's update queues b; b's deployment_queued queues a; a's deployment_queued would
		// queue b again: recorded as a cycle, and nothing further.
		if res.DeploymentRequests != 3 {
			t.Fatalf("EmitResult = %+v, want 3 deployment requests", res)
		}
		toB, err := b.eng.DeploymentRequests(ctx, stack("b"))
		if err != nil || len(toB) != 2 {
			t.Fatalf("requests for b = %+v, %v", toB, err)
		}
		statuses := map[string][]string{}
		for _, r := range toB {
			statuses[r.Status] = r.Cause
			if r.Status == DeploymentStatusCycleDetected && !strings.Contains(r.Reason, "cycle") {
				t.Errorf("cycle reason = %q", r.Reason)
			}
		}
		if strings.Join(statuses[DeploymentStatusQueued], ",") != "acme/p/b" ||
			strings.Join(statuses[DeploymentStatusCycleDetected], ",") != "acme/p/b,acme/p/a,acme/p/b" {
			t.Errorf("requests for b by status: %v", statuses)
		}
		toA, err := b.eng.DeploymentRequests(ctx, stack("a"))
		if err != nil || len(toA) != 1 || toA[0].Status != DeploymentStatusQueued {
			t.Errorf("requests for a = %+v, %v; want one queued", toA, err)
		}
	})

	t.Run("self", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.createHook(t, deployHook("to-self", stack("c"), "p/c"))
		res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stack("c")})
		rs, err := b.eng.DeploymentRequests(ctx, stack("c"))
		if err != nil || len(rs) != 2 || res.DeploymentRequests != 2 {
			t.Fatalf("requests for c = %+v, %v (result %+v); want queued then cycle_detected", rs, err, res)
		}
		n := map[string]int{}
		for _, r := range rs {
			n[r.Status]++
		}
		if n[DeploymentStatusQueued] != 1 || n[DeploymentStatusCycleDetected] != 1 {
			t.Errorf("statuses = %v", n)
		}
	})

	t.Run("depth bound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const chain = MaxDeploymentChainLengthDefault + 4
		for i := range chain {
			b.createHook(t, deployHook("next", stack(stackName(i)), "p/"+stackName(i+1)))
		}
		res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stack(stackName(0))})
		if res.DeploymentRequests != MaxDeploymentChainLengthDefault+1 {
			t.Fatalf("EmitResult = %+v, want %d requests (the last refused)", res, MaxDeploymentChainLengthDefault+1)
		}
		last, err := b.eng.DeploymentRequests(ctx, stack(stackName(MaxDeploymentChainLengthDefault+1)))
		if err != nil || len(last) != 1 || last[0].Status != DeploymentStatusSkipped || !strings.Contains(last[0].Reason, "too long") ||
			!strings.Contains(last[0].Reason, "MaxDeploymentChainLength") {
			t.Fatalf("request at the bound = %+v, %v", last, err)
		}
		if beyond, _ := b.eng.DeploymentRequests(ctx, stack(stackName(MaxDeploymentChainLengthDefault+2))); len(beyond) != 0 {
			t.Errorf("the chain went past the bound: %+v", beyond)
		}
	})
}

// TestDeploymentAllToAll chains 8 stacks to each other with pulumi_deployments hooks, every
// stack to every other. Unbounded, one update would set off about 7! (5,040) chains and tens
// of thousands of requests inside one store transaction. Bounded, the event queues exactly
// MaxDeploymentRequestsPerEvent deployments, nearest targets first, records the rest as
// skipped with the reason, and stores one deployment_queued event per queued request.
func TestDeploymentAllToAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const stacks, perEvent = 8, 20
	b := setup(t, func(c *Config) { c.MaxDeploymentRequestsPerEvent = perEvent })
	stack := func(i int) webhook.Scope { return webhook.Scope{Org: "acme", Project: "p", Stack: stackName(i)} }
	for i := range stacks {
		for j := range stacks {
			if i != j {
				b.createHook(t, deployHook("to-"+stackName(j), stack(i), "p/"+stackName(j)))
			}
		}
	}
	b.createHook(t, hookSpec("watch", "http://127.0.0.1:9/", func(s *webhook.Spec) {
		s.Filters = []webhook.Filter{webhook.DeploymentQueued}
	}))

	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stack(0)})

	n := map[string]int{}
	depth := map[int]int{} // queued requests by chain length
	var all []*store.DeploymentRequest
	for i := range stacks {
		rs, err := b.eng.DeploymentRequests(ctx, stack(i))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rs...)
	}
	for _, r := range all {
		n[r.Status]++
		switch r.Status {
		case DeploymentStatusQueued:
			depth[len(r.Cause)]++
		case DeploymentStatusSkipped:
			if !strings.Contains(r.Reason, "MaxDeploymentRequestsPerEvent") || !strings.Contains(r.Reason, fmt.Sprint(perEvent)) {
				t.Errorf("skipped request's reason = %q, want it to name the bound", r.Reason)
			}
		}
	}
	if n[DeploymentStatusQueued] != perEvent {
		t.Fatalf("queued %d deployments (%v), want exactly the bound %d", n[DeploymentStatusQueued], n, perEvent)
	}
	// Breadth first: the event's 7 direct targets, then 13 of the 42 two steps away.
	if depth[1] != stacks-1 || depth[2] != perEvent-(stacks-1) || len(depth) != 2 {
		t.Errorf("queued requests by chain length = %v, want the 7 direct targets first", depth)
	}
	// Each stored deployment_queued event has 7 deployers; the first 20 decisions queue, and
	// every other decision is a cycle or skipped: (1 + 20) events x 7 hooks.
	if len(all) != (1+perEvent)*(stacks-1) || res.DeploymentRequests != len(all) {
		t.Errorf("recorded %d requests, EmitResult says %d; want %d", len(all), res.DeploymentRequests, (1+perEvent)*(stacks-1))
	}
	if n[DeploymentStatusSkipped] == 0 || n[DeploymentStatusCycleDetected] == 0 {
		t.Errorf("statuses = %v, want cycles and skipped ones recorded", n)
	}
	// One deployment_queued delivery per queued request reached the watcher.
	if res.Deliveries != perEvent {
		t.Errorf("EmitResult = %+v, want %d deliveries to the watcher", res, perEvent)
	}
	var events int
	if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM events`).Scan(&events); err != nil || events != perEvent+1 {
		t.Errorf("stored %d events (%v), want the update and %d deployment_queued", events, err, perEvent)
	}
	if !strings.Contains(b.logs.String(), "deployment chains stopped") {
		t.Errorf("no warning logged for the stopped chains")
	}
}

// TestDeploymentAllToAllDefaults runs the same 8-stack all-to-all chain with the defaults: it
// finishes (bounded by MaxDeploymentRequestsPerEventDefault) instead of building thousands of
// requests in one transaction.
func TestDeploymentAllToAllDefaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const stacks = 8
	b := setup(t)
	stack := func(i int) webhook.Scope { return webhook.Scope{Org: "acme", Project: "p", Stack: stackName(i)} }
	for i := range stacks {
		for j := range stacks {
			if i != j {
				b.createHook(t, deployHook("to-"+stackName(j), stack(i), "p/"+stackName(j)))
			}
		}
	}
	emitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := b.eng.Emit(emitCtx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stack(0)})
	if err != nil {
		t.Fatalf("Emit: %v", err)
	}
	queued := 0
	for i := range stacks {
		rs, err := b.eng.DeploymentRequests(ctx, stack(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Status == DeploymentStatusQueued {
				queued++
			}
		}
	}
	if want := (1 + MaxDeploymentRequestsPerEventDefault) * (stacks - 1); queued != MaxDeploymentRequestsPerEventDefault || res.DeploymentRequests != want {
		t.Fatalf("queued %d, recorded %d requests; want %d queued of %d", queued, res.DeploymentRequests, MaxDeploymentRequestsPerEventDefault, want)
	}
}

func stackName(i int) string { return "s" + string(rune('a'+i)) }

func TestIdempotencyReplay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createHook(t, hookSpec("once", "http://127.0.0.1:9/"))
	p := EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, IdempotencyKey: "key-1"}
	first := b.emit(t, p)
	second := b.emit(t, p)
	if first.Replayed || !second.Replayed || second.EventID != first.EventID || second.Deliveries != first.Deliveries {
		t.Fatalf("first %+v, second %+v; want the second to replay the first", first, second)
	}
	var events int
	if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM events`).Scan(&events); err != nil || events != 1 {
		t.Fatalf("events stored: %d, %v; want 1", events, err)
	}
	// Another organization's key space is separate.
	otherOrg := p
	otherOrg.Subject.Org = "other"
	if r := b.emit(t, otherOrg); r.Replayed {
		t.Errorf("another org replayed acme's key")
	}
	// After the window the key is new again.
	b.clock.Advance(IdempotencyWindow + time.Minute)
	if r := b.emit(t, p); r.Replayed || r.EventID == first.EventID || r.Deliveries != 1 {
		t.Errorf("after 24h: %+v; want a new event", r)
	}
}

func TestEmitValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	env := webhook.Scope{Org: "acme", Project: "web", Environment: "prod"}
	cases := []struct {
		name  string
		p     EmitParams
		field string
	}{
		{"no filter", EmitParams{Subject: stackSubject}, "filter"},
		{"unknown filter", EmitParams{Filter: "update_exploded", Subject: stackSubject}, "filter"},
		{"ping cannot be emitted", EmitParams{Filter: webhook.Ping, Subject: stackSubject}, "filter"},
		{"no org", EmitParams{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Project: "p", Stack: "s"}}, "organizationName"},
		{"stack event without stack", EmitParams{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "o", Project: "p"}}, "stackName"},
		{"stack event without project", EmitParams{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "o", Stack: "s"}}, "projectName"},
		{"stack event about an environment", EmitParams{Filter: webhook.UpdateSucceeded, Subject: env}, "environmentName"},
		{"environment event without environment", EmitParams{Filter: webhook.EnvironmentCreated, Subject: webhook.Scope{Org: "o", Project: "p"}}, "environmentName"},
		{"environment event without project", EmitParams{Filter: webhook.EnvironmentCreated, Subject: webhook.Scope{Org: "o", Environment: "e"}}, "projectName"},
		{"environment event about a stack", EmitParams{Filter: webhook.EnvironmentTagCreated, Subject: stackSubject}, "stackName"},
		{"slash in a name", EmitParams{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "o", Project: "p", Stack: "a/b"}}, "stackName"},
		{"payload not an object", EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, Overrides: json.RawMessage(`[1]`)}, "payload"},
		{"payload not JSON", EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, Overrides: json.RawMessage(`{oops`)}, "payload"},
		{"payload field of the wrong type", EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, Overrides: json.RawMessage(`{"isPreview": "yes"}`)}, "payload.isPreview"},
		{"idempotency key too long", EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, IdempotencyKey: strings.Repeat("k", IdempotencyKeyMaxLen+1)}, "idempotencyKey"},
		{"idempotency key with white space", EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, IdempotencyKey: "a b"}, "idempotencyKey"},
		{"idempotency key not ASCII", EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, IdempotencyKey: "clé"}, "idempotencyKey"},
		{"invisible character in a name", EmitParams{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "o", Project: "p\u200b", Stack: "s"}}, "projectName"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.eng.Emit(context.Background(), c.p)
			wantFieldError(t, err, c.field)
		})
	}
	// Every problem is reported at once.
	_, err := b.eng.Emit(context.Background(), EmitParams{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "o", Project: "p"},
		Overrides: json.RawMessage(`[1]`), IdempotencyKey: "a b"})
	for _, field := range []string{"stackName", "payload", "idempotencyKey"} {
		wantFieldError(t, err, field)
	}
	var n int
	if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil || n != 0 {
		t.Errorf("invalid emits stored %d events (%v)", n, err)
	}
	// Overrides replace generated fields and reach the receiver's body.
	b.createHook(t, hookSpec("o", "http://127.0.0.1:9/"))
	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, Overrides: json.RawMessage(`{"resourceChanges": {"create": 3}}`)})
	if d := b.onlyDelivery(t, res.EventID); !strings.Contains(string(d.Body), `"resourceChanges":{"create":3}`) {
		t.Errorf("override missing from the body: %s", d.Body)
	}
}

func TestFormatsRenderPerHook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, f := range []webhook.Format{webhook.FormatRaw, webhook.FormatSlack, webhook.FormatMicrosoftTeams} {
		b.createHook(t, hookSpec(string(f), "https://hooks.example.com:8443/"+string(f), func(s *webhook.Spec) { s.Format = f }))
	}
	res := b.emit(t, EmitParams{Filter: webhook.UpdateFailed, Subject: stackSubject})
	ds := b.deliveriesOf(t, res.EventID)
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3", len(ds))
	}
	bodies := map[webhook.Format]string{}
	for _, d := range ds {
		if d.Endpoint != "hooks.example.com:8443" {
			t.Errorf("endpoint = %q, want host:port", d.Endpoint)
		}
		if !json.Valid(d.Body) {
			t.Errorf("%s body is not JSON: %s", d.Format, d.Body)
		}
		bodies[d.Format] = string(d.Body)
	}
	if !strings.Contains(bodies[webhook.FormatSlack], `"blocks"`) || !strings.Contains(bodies[webhook.FormatMicrosoftTeams], "AdaptiveCard") || !strings.Contains(bodies[webhook.FormatRaw], `"kind":"update"`) {
		t.Errorf("bodies do not look like their formats: %v", bodies)
	}
	for raw, want := range map[string]string{
		"https://h.example.com/x":     "h.example.com:443",
		"http://H.example.com/x":      "h.example.com:80",
		"http://[::1]:8080/":          "[::1]:8080",
		"http://127.0.0.1:9/p?q=1":    "127.0.0.1:9",
		"https://user@x.example:1/ok": "x.example:1",
	} {
		if got := endpointOf(raw); got != want {
			t.Errorf("endpointOf(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestHookCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	secret := "crud-secret"
	h, err := b.eng.HookCreate(ctx, webhook.Spec{Scope: stackSubject, DisplayName: "crud", PayloadURL: "https://example.com/h", Active: true, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if h.Name == "" || h.Format != webhook.FormatRaw || !h.HasSecret || h.Secret != "" || h.SecretDigest == "" {
		t.Errorf("created = %+v; want a generated name, raw format, a secret kept but not returned", h)
	}
	got, err := b.eng.HookGet(ctx, h.Ref())
	if err != nil || got.ID != h.ID {
		t.Fatalf("HookGet: %+v, %v", got, err)
	}
	dup := webhook.Spec{Scope: stackSubject, Name: h.Name, DisplayName: "dup", PayloadURL: "https://example.com/h", Active: true}
	if _, err := b.eng.HookCreate(ctx, dup); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("duplicate create: %v, want ErrAlreadyExists", err)
	}
	_, err = b.eng.HookCreate(ctx, webhook.Spec{Scope: stackSubject, PayloadURL: "ftp://x", Filters: []webhook.Filter{"nope"}})
	for _, f := range []string{"displayName", "payloadUrl", "filters[0]"} {
		wantFieldError(t, err, f)
	}

	spec := got.Spec
	spec.DisplayName = "renamed"
	spec.Filters = []webhook.Filter{webhook.UpdateFailed}
	up, err := b.eng.HookUpdate(ctx, HookUpdateParams{Ref: h.Ref(), Spec: spec})
	if err != nil || up.DisplayName != "renamed" || !up.HasSecret || len(up.Filters) != 1 {
		t.Fatalf("update keeping the secret: %+v, %v", up, err)
	}
	empty := ""
	up, err = b.eng.HookUpdate(ctx, HookUpdateParams{Ref: h.Ref(), Spec: webhook.Spec{DisplayName: "bare", PayloadURL: "https://example.com/h", Active: true}, Secret: &empty})
	if err != nil || up.HasSecret || up.DisplayName != "bare" {
		t.Fatalf("update removing the secret: %+v, %v", up, err)
	}
	moved := spec
	moved.Scope = webhook.Scope{Org: "acme"}
	_, err = b.eng.HookUpdate(ctx, HookUpdateParams{Ref: h.Ref(), Spec: moved})
	wantFieldError(t, err, "organizationName")
	renamed := spec
	renamed.Name = "other-name"
	_, err = b.eng.HookUpdate(ctx, HookUpdateParams{Ref: h.Ref(), Spec: renamed})
	wantFieldError(t, err, "name")
	bad := spec
	bad.PayloadURL = ""
	_, err = b.eng.HookUpdate(ctx, HookUpdateParams{Ref: h.Ref(), Spec: bad})
	wantFieldError(t, err, "payloadUrl")
	_, err = b.eng.HookUpdate(ctx, HookUpdateParams{Ref: store.HookRef{Scope: stackSubject, Name: "missing"}, Spec: webhook.Spec{DisplayName: "x", PayloadURL: "https://example.com"}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing hook: %v", err)
	}

	list, err := b.eng.HookList(ctx, store.HookListParams{Scope: webhook.Scope{Org: "acme"}})
	if err != nil || len(list) != 1 {
		t.Errorf("HookList = %v, %v", list, err)
	}
	if exact, err := b.eng.HookList(ctx, store.HookListParams{Scope: webhook.Scope{Org: "acme"}, Exact: true}); err != nil || len(exact) != 0 {
		t.Errorf("exact org list = %v, %v; the hook is a stack hook", exact, err)
	}
	_, err = b.eng.HookList(ctx, store.HookListParams{Scope: webhook.Scope{Project: "p"}})
	wantFieldError(t, err, "organizationName")

	if err := b.eng.HookDelete(ctx, h.Ref()); err != nil {
		t.Fatal(err)
	}
	if err := b.eng.HookDelete(ctx, h.Ref()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := b.eng.HookGet(ctx, h.Ref()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	for _, ref := range []store.HookRef{
		{Scope: webhook.Scope{Org: "acme"}},
		{Scope: webhook.Scope{Org: "acme"}, Name: "a b"},
		{Scope: webhook.Scope{Project: "p", Stack: "s"}, Name: "x"},
	} {
		_, err := b.eng.HookGet(ctx, ref)
		var fe webhook.FieldErrors
		if !errors.As(err, &fe) {
			t.Errorf("HookGet(%+v) = %v, want field errors", ref, err)
		}
		if err := b.eng.HookDelete(ctx, ref); !errors.As(err, &fe) {
			t.Errorf("HookDelete(%+v) = %v, want field errors", ref, err)
		}
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir()+"/cfg.db")
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Errorf("New without a store: %v", err)
	}
	for name, c := range map[string]Config{
		"Workers":                       {Store: st, Workers: -1},
		"PerEndpointLimit":              {Store: st, PerEndpointLimit: -1},
		"PerOrgLimit":                   {Store: st, PerOrgLimit: -1},
		"Timeout":                       {Store: st, Timeout: -time.Second},
		"RetrySchedule[1]":              {Store: st, RetrySchedule: []time.Duration{time.Second, 0}},
		"RetryAfterMax":                 {Store: st, RetryAfterMax: -1},
		"PollInterval":                  {Store: st, PollInterval: -1},
		"ResponseBodyLimit":             {Store: st, ResponseBodyLimit: -1},
		"MaxDeploymentRequestsPerEvent": {Store: st, MaxDeploymentRequestsPerEvent: -1},
		"MaxDeploymentChainLength":      {Store: st, MaxDeploymentChainLength: -1},
		"OrgDisplayNames":               {Store: st, OrgDisplayNames: webhook.OrgDisplayNames{"acme": ""}},
	} {
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: %v, want an error naming it", name, err)
		}
	}
	e, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	c := e.Config()
	for workers, want := range map[int]int{1: 1, 2: 1, 4: 3, 8: 7, 16: 14, 64: 56} {
		if got := PerOrgLimitDefault(workers); got != want {
			t.Errorf("PerOrgLimitDefault(%d) = %d, want %d", workers, got, want)
		}
	}
	if c.Workers != WorkersDefault || c.Timeout != TimeoutDefault || c.PollInterval != PollIntervalDefault || len(c.RetrySchedule) != 8 || c.Lease() <= c.Timeout ||
		c.MaxDeploymentRequestsPerEvent != MaxDeploymentRequestsPerEventDefault || c.MaxDeploymentChainLength != MaxDeploymentChainLengthDefault ||
		c.PerOrgLimit != 28 {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// TestStoreErrorsPropagate closes the store under the engine: every call returns an error
// (wrapped, never a panic), and the workers keep running and log the failure.
func TestStoreErrorsPropagate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	h := b.createHook(t, hookSpec("x", "http://127.0.0.1:9/"))
	b.store.Close()
	b.start(t)
	calls := map[string]func() error{
		"HookCreate": func() error { _, err := b.eng.HookCreate(ctx, hookSpec("y", "http://127.0.0.1:9/")); return err },
		"HookGet":    func() error { _, err := b.eng.HookGet(ctx, h.Ref()); return err },
		"HookList":   func() error { _, err := b.eng.HookList(ctx, store.HookListParams{}); return err },
		"HookUpdate": func() error {
			_, err := b.eng.HookUpdate(ctx, HookUpdateParams{Ref: h.Ref(), Spec: h.Spec})
			return err
		},
		"HookDelete": func() error { return b.eng.HookDelete(ctx, h.Ref()) },
		"Emit": func() error {
			_, err := b.eng.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
			return err
		},
		"Ping":               func() error { _, err := b.eng.Ping(ctx, h.Ref()); return err },
		"Redeliver":          func() error { _, err := b.eng.Redeliver(ctx, h.Ref(), "d"); return err },
		"DeliveryLog":        func() error { _, err := b.eng.DeliveryLog(ctx, h.Ref(), DeliveryLogParams{}); return err },
		"QueueStats":         func() error { _, err := b.eng.QueueStats(ctx); return err },
		"DeploymentRequests": func() error { _, err := b.eng.DeploymentRequests(ctx, stackSubject); return err },
	}
	for name, call := range calls {
		err := call()
		if err == nil {
			t.Errorf("%s on a closed store succeeded", name)
			continue
		}
		if errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v looks like not-found, want the database error", name, err)
		}
	}
	waitfor.Condition(t, "the workers to log the failing claim", func() bool {
		return strings.Contains(b.logs.String(), "claiming deliveries failed")
	})
}
