package server_test

import (
	"net/http"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

// An idempotency key replays only the request it was first used for: the same key with
// another event is 422 and stores nothing, instead of answering with the first event.
func TestIdempotencyKeyWithAnotherRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := servertest.NewReceiver(t)
	hook := hookBody("acme", rcv.URL())
	hook["projectName"], hook["stackName"] = "web", "prod"
	b.do("acme", "POST", "/api/stacks/acme/web/prod/hooks", hook).want(http.StatusCreated)
	hook["stackName"] = "dev"
	b.do("acme", "POST", "/api/stacks/acme/web/dev/hooks", hook).want(http.StatusCreated)
	key := withHeader("Idempotency-Key", "build-4711")
	events := "/api/orgs/acme/events"

	var first api.EmitResponse
	b.do("acme", "POST", events, `{"filter":"update_succeeded","projectName":"web","stackName":"prod","payload":{"user":{"name":"ci","login":"ci"},"n":12345678901234567890}}`, key).
		want(http.StatusAccepted).decode(&first)
	// The same request, formatted otherwise, replays.
	var again api.EmitResponse
	r := b.do("acme", "POST", events, `{ "stackName": "prod", "payload": { "n": 12345678901234567890, "user": {"login":"ci", "name": "ci"} }, "projectName": "web", "filter": "update_succeeded" }`, key).
		want(http.StatusAccepted)
	r.decode(&again)
	if again != first || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay of the same request: %+v (replayed %q), first %+v", again, r.Header.Get("Idempotent-Replayed"), first)
	}
	for name, body := range map[string]string{
		"another payload":    `{"filter":"update_succeeded","projectName":"web","stackName":"prod","payload":{"user":{"name":"mallory","login":"ci"},"n":12345678901234567890}}`,
		"another big number": `{"filter":"update_succeeded","projectName":"web","stackName":"prod","payload":{"user":{"name":"ci","login":"ci"},"n":12345678901234567891}}`,
		"no payload":         `{"filter":"update_succeeded","projectName":"web","stackName":"prod"}`,
		"another stack":      `{"filter":"update_succeeded","projectName":"web","stackName":"dev","payload":{"user":{"name":"ci","login":"ci"},"n":12345678901234567890}}`,
		"another filter":     `{"filter":"update_failed","projectName":"web","stackName":"prod","payload":{"user":{"name":"ci","login":"ci"},"n":12345678901234567890}}`,
	} {
		e := b.do("acme", "POST", events, body, key).want(http.StatusUnprocessableEntity).apiError()
		if e.Code != http.StatusUnprocessableEntity {
			t.Errorf("%s: %+v", name, e)
		}
		mustContain(t, name, e.Message, "Idempotency-Key", "different event", "new key")
	}
	// Only the first event was delivered: one delivery to the prod hook, none to dev.
	rcv.Wait(t, 1)
	waitQueueEmpty(t, b)
	if n := len(rcv.Requests()); n != 1 {
		t.Errorf("receiver got %d deliveries, want 1", n)
	}
	// The key is still the first request's.
	b.do("acme", "POST", events, `{"filter":"update_succeeded","projectName":"web","stackName":"prod","payload":{"user":{"name":"ci","login":"ci"},"n":12345678901234567890}}`, key).
		want(http.StatusAccepted).decode(&again)
	if again.EventID != first.EventID {
		t.Errorf("the key now replays %s, want %s", again.EventID, first.EventID)
	}
}
