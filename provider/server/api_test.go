package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
)

// scopes are the three URL families of the hook API, for org "acme".
var scopes = []struct {
	name      string
	base      string
	extra     map[string]any // scope fields the body may repeat
	wantField string         // the response field naming the scope, besides organizationName
}{
	{"organization", "/api/orgs/acme/hooks", nil, ""},
	{"stack", "/api/stacks/acme/web/prod/hooks", map[string]any{"projectName": "web", "stackName": "prod"}, "stackName"},
	{"environment", "/api/esc/environments/acme/app/dev/hooks", map[string]any{"projectName": "app", "envName": "dev"}, "envName"},
}

func TestHookLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := servertest.NewReceiver(t)
	for _, sc := range scopes {
		t.Run(sc.name, func(t *testing.T) {
			b := b.on(t)
			body := hookBody("acme", rcv.URL())
			body["name"] = "h1"
			body["secret"] = "s3cret-" + sc.name
			for k, v := range sc.extra {
				body[k] = v
			}
			created := b.do("acme", "POST", sc.base, body).want(http.StatusCreated)
			if !strings.HasSuffix(created.Header.Get("Location"), sc.base+"/h1") {
				t.Errorf("Location = %q", created.Header.Get("Location"))
			}
			var raw map[string]any
			created.decode(&raw)
			for k, v := range sc.extra {
				if raw[k] != v {
					t.Errorf("created %s = %v, want %v (response: %s)", k, raw[k], v, created.Body)
				}
			}
			if _, ok := raw["environmentName"]; ok {
				t.Errorf("response uses environmentName; the API's name is envName: %s", created.Body)
			}
			var h api.WebhookResponse
			created.decode(&h)
			sum := sha256.Sum256([]byte("s3cret-" + sc.name))
			if h.Name != "h1" || !h.Active || h.Format != "raw" || !h.HasSecret || len(h.SecretCiphertext) != 64 || h.SecretCiphertext == hex.EncodeToString(sum[:]) {
				t.Errorf("created = %+v", h)
			}

			var got api.WebhookResponse
			b.do("acme", "GET", sc.base+"/h1", nil).want(http.StatusOK).decode(&got)
			if got.DisplayName != "test hook" || got.PayloadURL != rcv.URL() {
				t.Errorf("get = %+v", got)
			}
			var list []api.WebhookResponse
			b.do("acme", "GET", sc.base, nil).want(http.StatusOK).decode(&list)
			if len(list) != 1 || list[0].Name != "h1" {
				t.Errorf("list = %+v, want exactly h1 of this scope", list)
			}

			// PATCH changes only what it is given.
			var upd api.WebhookResponse
			b.do("acme", "PATCH", sc.base+"/h1", map[string]any{"displayName": "renamed"}).want(http.StatusOK).decode(&upd)
			if upd.DisplayName != "renamed" || upd.PayloadURL != rcv.URL() || !upd.Active || !upd.HasSecret || upd.SecretCiphertext != h.SecretCiphertext {
				t.Errorf("after PATCH displayName: %+v", upd)
			}
			filters := []string{"update_succeeded"}
			if sc.name == "environment" {
				filters = []string{"environment_revision_created"}
			}
			b.do("acme", "PATCH", sc.base+"/h1", map[string]any{"filters": filters, "active": false, "secret": "other"}).want(http.StatusOK).decode(&upd)
			if !slices.Equal(upd.Filters, filters) || upd.Active || upd.DisplayName != "renamed" || upd.SecretCiphertext == h.SecretCiphertext || !upd.HasSecret {
				t.Errorf("after PATCH filters/active/secret: %+v", upd)
			}
			// An empty secret keeps the secret, as Pulumi Cloud does; "__remove-secret" removes it.
			var kept, cleared api.WebhookResponse
			b.do("acme", "PATCH", sc.base+"/h1", map[string]any{"filters": []string{}, "secret": ""}).want(http.StatusOK).decode(&kept)
			if len(kept.Filters) != 0 || !kept.HasSecret || kept.SecretCiphertext != upd.SecretCiphertext || kept.Active {
				t.Errorf("after clearing filters with an empty secret: %+v", kept)
			}
			b.do("acme", "PATCH", sc.base+"/h1", map[string]any{"secret": "__remove-secret"}).want(http.StatusOK).decode(&cleared)
			if len(cleared.Filters) != 0 || cleared.HasSecret || cleared.SecretCiphertext != "" || cleared.Active {
				t.Errorf("after removing the secret: %+v", cleared)
			}
			// Sending back what GET returned (with its response-only fields) is accepted.
			var again api.WebhookResponse
			b.do("acme", "PATCH", sc.base+"/h1", got).want(http.StatusOK).decode(&again)
			if again.DisplayName != "test hook" {
				t.Errorf("after PATCH with a GET body: %+v", again)
			}

			// Ping, the delivery log and redelivery answer as documented in every scope.
			var ping, re api.WebhookDelivery
			b.do("acme", "POST", sc.base+"/h1/ping", nil).want(http.StatusOK).decode(&ping)
			var log []api.WebhookDelivery
			b.do("acme", "GET", sc.base+"/h1/deliveries", nil).want(http.StatusOK).decode(&log)
			if len(log) != 1 || log[0].ID != ping.ID {
				t.Errorf("deliveries after a ping: %+v", log)
			}
			b.do("acme", "POST", sc.base+"/h1/deliveries/"+ping.ID+"/redeliver", nil).want(http.StatusOK).decode(&re)
			if re.ID != ping.ID || re.ResponseCode != http.StatusOK {
				t.Errorf("redelivered ping: %+v", re)
			}

			del := b.do("acme", "DELETE", sc.base+"/h1", nil).want(http.StatusNoContent)
			if len(del.Body) != 0 {
				t.Errorf("204 with body %q", del.Body)
			}
			b.do("acme", "GET", sc.base+"/h1", nil).want(http.StatusNotFound)
			b.do("acme", "DELETE", sc.base+"/h1", nil).want(http.StatusNotFound)
		})
	}
}

func TestCreateGeneratesNameAndRejectsDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var h api.WebhookResponse
	b.do("acme", "POST", "/api/orgs/acme/hooks", hookBody("acme", "https://example.com/x")).want(http.StatusCreated).decode(&h)
	if h.Name == "" {
		t.Fatalf("no generated name: %+v", h)
	}
	body := hookBody("acme", "https://example.com/x")
	body["name"] = h.Name
	e := b.do("acme", "POST", "/api/orgs/acme/hooks", body).want(http.StatusConflict).apiError()
	mustContain(t, "409 message", e.Message, h.Name, "already exists")
	// The same name in another scope is another hook.
	body["projectName"], body["stackName"] = "web", "prod"
	b.do("acme", "POST", "/api/stacks/acme/web/prod/hooks", body).want(http.StatusCreated)
}

func TestSecretNeverInResponses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const secret = "do-not-leak-7f3a"
	body := hookBody("acme", "https://example.com/x")
	body["name"], body["secret"] = "s", secret
	for _, r := range []*result{
		b.do("acme", "POST", "/api/orgs/acme/hooks", body).want(http.StatusCreated),
		b.do("acme", "GET", "/api/orgs/acme/hooks/s", nil).want(http.StatusOK),
		b.do("acme", "GET", "/api/orgs/acme/hooks", nil).want(http.StatusOK),
		b.do("acme", "PATCH", "/api/orgs/acme/hooks/s", map[string]any{"displayName": "x"}).want(http.StatusOK),
		b.do("acme", "PATCH", "/api/orgs/acme/hooks/s", map[string]any{"secret": "", "payloadUrl": "not a url " + secret}).want(http.StatusBadRequest),
	} {
		if strings.Contains(string(r.Body), secret[:12]) && r.Status < 400 {
			t.Errorf("%s leaks the secret: %s", r.req, r.Body)
		}
		if strings.Contains(string(r.Body), `"secret"`) {
			t.Errorf("%s has a secret field: %s", r.req, r.Body)
		}
	}
}

func TestPingDeliveriesRedeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := servertest.NewReceiver(t)
	body := hookBody("acme", rcv.URL())
	body["name"], body["secret"], body["projectName"], body["stackName"] = "p", "ping-secret", "web", "prod"
	base := "/api/stacks/acme/web/prod/hooks/p"
	b.do("acme", "POST", "/api/stacks/acme/web/prod/hooks", body).want(http.StatusCreated)

	var ping api.WebhookDelivery
	b.do("acme", "POST", base+"/ping", nil).want(http.StatusOK).decode(&ping)
	if ping.Kind != "ping" || ping.ResponseCode != 200 || ping.ID == "" || ping.RequestURL != rcv.URL() || ping.Payload == "" || ping.ResponseBody != "ok" {
		t.Errorf("ping = %+v", ping)
	}
	if !strings.Contains(ping.RequestHeaders, "Pulumi-Webhook-Signature: ") || ping.Timestamp < time.Now().Add(-time.Minute).Unix() {
		t.Errorf("ping request headers/timestamp: %+v", ping)
	}
	reqs := rcv.Wait(t, 1)
	if err := signature.Verify("ping-secret", reqs[0].Header.Get(signature.HeaderSignature), reqs[0].Body); err != nil {
		t.Errorf("ping signature: %v", err)
	}
	if got := reqs[0].Header.Get(signature.HeaderID); got != ping.ID {
		t.Errorf("Pulumi-Webhook-ID = %q, want the delivery id %q", got, ping.ID)
	}

	// An emitted event shows up in the log after its delivery.
	var ev api.EmitResponse
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod"}).
		want(http.StatusAccepted).decode(&ev)
	if ev.Deliveries != 1 {
		t.Fatalf("emit = %+v, want 1 delivery", ev)
	}
	reqs = rcv.Wait(t, 2)
	evID := reqs[1].Header.Get(signature.HeaderID)
	// The attempt is recorded just after the receiver answers.
	var log []api.WebhookDelivery
	waitfor.Condition(t, "the update in the delivery log", func() bool {
		b.do("acme", "GET", base+"/deliveries", nil).want(http.StatusOK).decode(&log)
		return len(log) >= 2
	})
	if len(log) != 2 || log[0].ID != evID || log[0].Kind != "stack_update" || log[1].ID != ping.ID {
		t.Fatalf("deliveries = %+v, want the update then the ping, newest first", log)
	}
	var page []api.WebhookDelivery
	r := b.do("acme", "GET", base+"/deliveries?limit=1", nil).want(http.StatusOK)
	r.decode(&page)
	next := r.Header.Get("X-Next-Before")
	if len(page) != 1 || next == "" {
		t.Fatalf("first page = %+v, next = %q", page, next)
	}
	b.do("acme", "GET", base+"/deliveries?limit=1&before="+next, nil).want(http.StatusOK).decode(&page)
	if len(page) != 1 || page[0].ID != ping.ID {
		t.Errorf("second page = %+v, want the ping", page)
	}

	var re api.WebhookDelivery
	b.do("acme", "POST", base+"/deliveries/"+evID+"/redeliver", nil).want(http.StatusOK).decode(&re)
	reqs = rcv.Wait(t, 3)
	if re.ID != evID || re.ResponseCode != 200 || reqs[2].Header.Get(signature.HeaderID) != evID || string(reqs[2].Body) != string(reqs[1].Body) {
		t.Errorf("redelivery = %+v; body same: %v", re, string(reqs[2].Body) == string(reqs[1].Body))
	}
	// A failing receiver still gives 200 with the recorded failure.
	rcv.SetStatus(http.StatusInternalServerError)
	b.do("acme", "POST", base+"/ping", nil).want(http.StatusOK).decode(&ping)
	if ping.ResponseCode != 500 {
		t.Errorf("ping of a failing receiver = %+v", ping)
	}
}

func TestEmitDeliversSignedEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stackRcv, envRcv, orgRcv := servertest.NewReceiver(t), servertest.NewReceiver(t), servertest.NewReceiver(t)
	stack := hookBody("acme", stackRcv.URL())
	stack["secret"], stack["projectName"], stack["stackName"] = "stack-secret", "web", "prod"
	b.do("acme", "POST", "/api/stacks/acme/web/prod/hooks", stack).want(http.StatusCreated)
	env := hookBody("acme", envRcv.URL())
	env["projectName"], env["envName"] = "app", "dev"
	b.do("acme", "POST", "/api/esc/environments/acme/app/dev/hooks", env).want(http.StatusCreated)
	org := hookBody("acme", orgRcv.URL())
	org["filters"] = []string{"stack_created"}
	b.do("acme", "POST", "/api/orgs/acme/hooks", org).want(http.StatusCreated)

	var res api.EmitResponse
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{
		"filter": "update_succeeded", "projectName": "web", "stackName": "prod",
		"payload": map[string]any{"user": map[string]any{"name": "Ci Bot", "githubLogin": "cibot", "avatarUrl": "https://example.com/a.png"}},
	}).want(http.StatusAccepted).decode(&res)
	if res.EventID == "" || res.Deliveries != 1 {
		t.Fatalf("emit = %+v, want 1 delivery (the stack hook; the org hook filters stack_created)", res)
	}
	got := stackRcv.Wait(t, 1)[0]
	if err := signature.Verify("stack-secret", got.Header.Get(signature.HeaderSignature), got.Body); err != nil {
		t.Errorf("signature: %v", err)
	}
	if got.Header.Get(signature.HeaderKind) != "stack_update" || !strings.Contains(string(got.Body), "cibot") {
		t.Errorf("delivery kind %q body %s", got.Header.Get(signature.HeaderKind), got.Body)
	}

	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "environment_revision_created", "projectName": "app", "environmentName": "dev"}).
		want(http.StatusAccepted).decode(&res)
	if res.Deliveries != 1 {
		t.Errorf("environment event = %+v, want 1 delivery", res)
	}
	envRcv.Wait(t, 1)
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "stack_created", "projectName": "web", "stackName": "new"}).
		want(http.StatusAccepted).decode(&res)
	if res.Deliveries != 1 {
		t.Errorf("stack_created = %+v, want 1 delivery (the org hook)", res)
	}
	orgRcv.Wait(t, 1)
	// An event nobody listens to is stored with no deliveries.
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "update_failed", "projectName": "other", "stackName": "s"}).
		want(http.StatusAccepted).decode(&res)
	if res.Deliveries != 0 {
		t.Errorf("unheard event = %+v", res)
	}
}

func TestEmitIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := servertest.NewReceiver(t)
	hook := hookBody("acme", rcv.URL())
	hook["projectName"], hook["stackName"] = "web", "prod"
	b.do("acme", "POST", "/api/stacks/acme/web/prod/hooks", hook).want(http.StatusCreated)
	ev := map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod"}
	key := withHeader("Idempotency-Key", "deploy-42")

	first := b.do("acme", "POST", "/api/orgs/acme/events", ev, key).want(http.StatusAccepted)
	second := b.do("acme", "POST", "/api/orgs/acme/events", ev, key).want(http.StatusAccepted)
	if string(first.Body) != string(second.Body) {
		t.Errorf("replay answered %s, first answer was %s", second.Body, first.Body)
	}
	if first.Header.Get("Idempotent-Replayed") != "" || second.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed: first %q, second %q", first.Header.Get("Idempotent-Replayed"), second.Header.Get("Idempotent-Replayed"))
	}
	var res api.EmitResponse
	first.decode(&res)
	ds, err := b.Store.DeliveryListByEvent(t.Context(), res.EventID)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries of the event: %v, %v", ds, err)
	}
	// Another key (and no key) stores a new event.
	var other api.EmitResponse
	b.do("acme", "POST", "/api/orgs/acme/events", ev, withHeader("Idempotency-Key", "deploy-43")).want(http.StatusAccepted).decode(&other)
	if other.EventID == res.EventID {
		t.Errorf("a new key replayed the old event")
	}
	// The same key in another organization is that organization's own.
	var globex api.EmitResponse
	b.do("globex", "POST", "/api/orgs/globex/events", ev, key).want(http.StatusAccepted).decode(&globex)
	if globex.EventID == res.EventID {
		t.Errorf("globex replayed acme's event")
	}
	rcv.Wait(t, 2)
	// Let the workers go idle, then check that exactly the two acme events were delivered.
	waitQueueEmpty(t, b)
	if n := len(rcv.Requests()); n != 2 {
		t.Errorf("receiver got %d deliveries, want 2 (the replay must not deliver again)", n)
	}
}

// waitQueueEmpty waits until no delivery is pending or running.
func waitQueueEmpty(t *testing.T, b *testBundle) {
	t.Helper()
	waitfor.NoError(t, func() error {
		st, err := b.Engine.QueueStats(t.Context())
		if err == nil && (st.Pending != 0 || st.Running != 0) {
			err = fmt.Errorf("queue not empty: %+v", st)
		}
		return err
	})
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do("", "GET", "/healthz", nil).want(http.StatusOK)
	b.do("", "GET", "/readyz", nil).want(http.StatusOK)

	gone := servertest.NewReceiver(t)
	gone.SetStatus(http.StatusGone)
	ok := servertest.NewReceiver(t)
	for name, url := range map[string]string{"gone": gone.URL(), "ok": ok.URL()} {
		h := hookBody("acme", url)
		h["name"], h["projectName"], h["stackName"] = name, "web", "prod"
		b.do("acme", "POST", "/api/stacks/acme/web/prod/hooks", h).want(http.StatusCreated)
	}
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod"}).want(http.StatusAccepted)
	ok.Wait(t, 1)
	gone.Wait(t, 1)
	waitQueueEmpty(t, b)
	var h api.WebhookResponse
	b.do("acme", "GET", "/api/stacks/acme/web/prod/hooks/gone", nil).want(http.StatusOK).decode(&h)
	if h.Active {
		t.Errorf("a hook whose endpoint answered 410 is still active")
	}

	m := string(b.do("", "GET", "/metrics", nil).want(http.StatusOK).Body)
	for _, want := range []string{
		`pulumi_webhooks_delivery_attempts_total{outcome="succeeded"} 1`,
		`pulumi_webhooks_delivery_attempt_duration_seconds_count{outcome="succeeded"} 1`,
		`pulumi_webhooks_hooks_disabled_total 1`,
		`pulumi_webhooks_queue_depth{state="pending"} 0`,
		`pulumi_webhooks_queue_depth{state="running"} 0`,
		`pulumi_webhooks_oldest_due_delivery_age_seconds 0`,
		`pulumi_webhooks_disabled_hooks 1`,
		`pulumi_webhooks_http_requests_total{code="202",method="POST",route="/api/orgs/{org}/events"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Pending work that is due shows up as depth and age.
	if err := b.Engine.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "update_failed", "projectName": "web", "stackName": "prod"}).want(http.StatusAccepted)
	time.Sleep(20 * time.Millisecond)
	m = string(b.do("", "GET", "/metrics", nil).want(http.StatusOK).Body)
	if !strings.Contains(m, `pulumi_webhooks_queue_depth{state="pending"} 1`) || strings.Contains(m, "pulumi_webhooks_oldest_due_delivery_age_seconds 0\n") {
		t.Errorf("metrics with one due delivery:\n%s", grep(m, "pulumi_webhooks_queue_depth", "oldest_due"))
	}
	if err := b.Engine.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ok.Wait(t, 2)

	b.Server.Drain()
	if e := b.do("", "GET", "/readyz", nil).want(http.StatusServiceUnavailable).apiError(); e.Message != "shutting down" {
		t.Errorf("readyz while draining: %+v", e)
	}
	b.do("", "GET", "/healthz", nil).want(http.StatusOK)
}

func TestReadyzStoreDown(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *servertest.Opts) { o.NoWorkers = true })
	if err := b.Store.DB().Close(); err != nil { // the store's file handle, not the bundle's cleanup
		t.Fatal(err)
	}
	if e := b.do("", "GET", "/readyz", nil).want(http.StatusServiceUnavailable).apiError(); e.Message != "store unreachable" {
		t.Errorf("readyz = %+v", e)
	}
	// An API request then fails with a generic 500 that reveals nothing of the cause.
	e := b.do("acme", "GET", "/api/orgs/acme/hooks", nil).want(http.StatusInternalServerError).apiError()
	if e.Message != "internal server error: see the server log" {
		t.Errorf("500 message = %q", e.Message)
	}
}

func grep(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
