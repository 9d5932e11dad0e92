package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Completions: recording an attempt's outcome, fenced by the lease, one at a time or many at
// once.

// runCompletions runs the completion tests.
func runCompletions(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"Complete", testComplete},
		{"CompleteLeaseLost", testCompleteLeaseLost},
		{"CompleteDisableHook", testCompleteDisableHook},
		{"CompleteAfterHookDeleted", testCompleteAfterHookDeleted},
		{"CompleteMany", testCompleteMany},
		{"CompleteManyDisableHook", testCompleteManyDisableHook},
		{"CompleteManyCanceled", testCompleteManyCanceled},
		{"CompleteManyMixed", testCompleteManyMixed},
		{"CompleteManyLarge", testCompleteManyLarge},
	})
}

func testComplete(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	rec := store.Attempt{
		StartedAt: T0, Duration: 1500 * time.Millisecond, RequestURL: cd.URL,
		RequestHeaders: map[string][]string{"Pulumi-Webhook-Id": {cd.ID}}, RequestBody: cd.Body,
		ResponseCode: 503, ResponseHeaders: map[string][]string{"Retry-After": {"30"}}, ResponseBody: []byte("busy"),
	}
	retryAt := T0.Add(30 * time.Second)
	if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliveryPending,
		NextAttemptAt: retryAt, Record: rec, Now: T0.Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	d := getDelivery(t, b, dids[0])
	if d.State != store.DeliveryPending || !d.NextAttemptAt.Equal(retryAt) || d.Attempts != 1 || d.LastError == "" || !d.LeaseUntil.IsZero() {
		t.Fatalf("delivery after a retryable failure = %+v", d)
	}
	if got := claim(t, b, "w", retryAt.Add(-time.Nanosecond), 1, 0); len(got) != 0 {
		t.Fatal("a retry was claimed before its time")
	}
	cd = claim(t, b, "w", retryAt, 1, 0)[0]
	if cd.Attempts != 2 {
		t.Fatalf("retry attempt number %d, want 2", cd.Attempts)
	}
	rec.ResponseCode, rec.ResponseBody, rec.ResponseHeaders = 200, []byte("ok"), nil
	if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 2, State: store.DeliverySucceeded,
		Record: rec, Now: retryAt}); err != nil {
		t.Fatal(err)
	}
	if d := getDelivery(t, b, dids[0]); d.State != store.DeliverySucceeded || d.Attempts != 2 || !d.UpdatedAt.Equal(retryAt) {
		t.Fatalf("delivery after success = %+v", d)
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil || len(atts) != 2 {
		t.Fatalf("AttemptList = %d, %v", len(atts), err)
	}
	a1, a2 := atts[1], atts[0]
	if a2.Number != 2 || a2.ResponseCode != 200 || string(a2.ResponseBody) != "ok" || a1.Number != 1 || a1.ResponseCode != 503 ||
		a1.ResponseHeaders["Retry-After"][0] != "30" || a1.RequestHeaders["Pulumi-Webhook-Id"][0] != cd.ID || a1.Duration != 1500*time.Millisecond ||
		!a1.StartedAt.Equal(T0) || a1.DeliveryID != cd.ID || a1.HookID != h.ID || a1.Filter != webhook.StackCreated || a1.Kind != webhook.KindStack ||
		string(a1.RequestBody) != string(cd.Body) || a1.RequestURL != h.PayloadURL || a2.ID <= a1.ID {
		t.Fatalf("attempts = %+v / %+v", a1, a2)
	}
	err = b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 2, State: store.DeliveryRunning, Now: T0})
	if err == nil || errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("DeliveryComplete to running = %v, want a validation error", err)
	}
}

func testCompleteLeaseLost(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	try := func(worker string, attempt int) error {
		return b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: worker, Attempt: attempt, State: store.DeliverySucceeded, Now: T0})
	}
	wantErr(t, "complete by another worker", try("other", 1), store.ErrLeaseLost)
	wantErr(t, "complete with another attempt number", try("w", 2), store.ErrLeaseLost)
	wantErr(t, "complete of an unknown delivery", b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: "nope", Worker: "w", Attempt: 1,
		State: store.DeliverySucceeded, Now: T0}), store.ErrLeaseLost)
	if err := try("w", 1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second completion", try("w", 1), store.ErrLeaseLost)
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 1 {
		t.Fatalf("rejected completions recorded attempts: %d", len(atts))
	}
}

func testCompleteDisableHook(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	other := createHook(t, b, spec(orgScope("acme"), "other"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated,
		enqueue{hook: h}, enqueue{hook: h, endpoint: "held:443"}, enqueue{hook: h, next: T0.Add(time.Hour)}, enqueue{hook: other})
	cds := claim(t, b, "w", T0, 2, 0)
	if len(cds) != 2 {
		t.Fatalf("claimed %d", len(cds))
	}
	reason := "the endpoint answered 410 Gone"
	if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: dids[0], Worker: "w", Attempt: 1, State: store.DeliveryFailed,
		Record: store.Attempt{ResponseCode: 410, StartedAt: T0}, DisableHookReason: reason, Now: T0}); err != nil {
		t.Fatal(err)
	}
	got, _ := b.st.HookGetByID(b.ctx, h.ID)
	if got.Active || got.DisabledReason != reason {
		t.Fatalf("hook after 410 = active %v reason %q", got.Active, got.DisabledReason)
	}
	want := []store.DeliveryState{store.DeliveryFailed, store.DeliveryDiscarded, store.DeliveryDiscarded, store.DeliveryPending}
	for i, id := range dids {
		if d := getDelivery(t, b, id); d.State != want[i] {
			t.Fatalf("delivery %d is %s, want %s", i, d.State, want[i])
		}
	}
	// The other worker's hold on the discarded delivery is gone.
	wantErr(t, "complete of a discarded delivery", complete(b, cds[1], store.DeliverySucceeded, T0), store.ErrLeaseLost)
	if st, _ := b.st.DeliveryStats(b.ctx, T0); st.HooksDisabled != 1 {
		t.Fatalf("HooksDisabled = %d", st.HooksDisabled)
	}
}

func testCompleteAfterHookDeleted(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	if err := b.st.HookDelete(b.ctx, h.Ref()); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "complete after the hook was deleted", complete(b, cd, store.DeliverySucceeded, T0), store.ErrLeaseLost)
}

// testCompleteMany completes a batch in which some items succeed, one retries, and others
// are refused each for its own reason; the refused ones write nothing and do not stop the
// others.
func testCompleteMany(t *testing.T, b *testBundle) {
	if errs := b.st.DeliveryCompleteMany(b.ctx, nil); len(errs) != 0 {
		t.Fatalf("DeliveryCompleteMany(nil) = %v", errs)
	}
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated,
		enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h})
	cds := claim(t, b, "w", T0, 5, 0)
	if len(cds) != 5 {
		t.Fatalf("claimed %d", len(cds))
	}
	byID := map[string]*store.ClaimedDelivery{}
	for _, cd := range cds {
		byID[cd.ID] = cd
	}
	item := func(id string, state store.DeliveryState) store.DeliveryCompleteParams {
		cd := byID[id]
		return store.DeliveryCompleteParams{ID: id, Worker: "w", Attempt: cd.Attempts, State: state, Now: T0.Add(time.Second),
			NextAttemptAt: T0.Add(time.Minute),
			Record: store.Attempt{StartedAt: T0, Duration: time.Millisecond, RequestURL: cd.URL, RequestBody: cd.Body, ResponseCode: 200,
				RequestHeaders: map[string][]string{"Pulumi-Webhook-Id": {id}}}}
	}
	ps := []store.DeliveryCompleteParams{
		item(dids[0], store.DeliverySucceeded),
		item(dids[1], store.DeliveryPending),
		item(dids[2], store.DeliveryRunning), // not a result: invalid
		item(dids[3], store.DeliverySucceeded),
		item(dids[0], store.DeliverySucceeded), // the same delivery again: already completed
		{ID: "no-such-delivery", Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0},
		item(dids[4], store.DeliveryFailed),
	}
	ps[3].Worker = "someone-else"
	ps[6].Record.ResponseCode, ps[6].Record.RequestBody = 500, []byte("a body other than the delivery's")
	errs := b.st.DeliveryCompleteMany(b.ctx, ps)
	if len(errs) != len(ps) {
		t.Fatalf("DeliveryCompleteMany returned %d errors for %d items", len(errs), len(ps))
	}
	for i, want := range []error{nil, nil, nil, store.ErrLeaseLost, store.ErrLeaseLost, store.ErrLeaseLost, nil} {
		switch {
		case i == 2:
			if errs[i] == nil || errors.Is(errs[i], store.ErrLeaseLost) {
				t.Fatalf("item %d (state running) error = %v, want a validation error", i, errs[i])
			}
		case want == nil && errs[i] != nil:
			t.Fatalf("item %d: %v", i, errs[i])
		case want != nil:
			wantErr(t, fmt.Sprintf("item %d", i), errs[i], want)
		}
	}
	wantStates := []store.DeliveryState{store.DeliverySucceeded, store.DeliveryPending, store.DeliveryRunning, store.DeliveryRunning, store.DeliveryFailed}
	for i, id := range dids {
		if d := getDelivery(t, b, id); d.State != wantStates[i] {
			t.Fatalf("delivery %d is %s, want %s", i, d.State, wantStates[i])
		}
	}
	if d := getDelivery(t, b, dids[1]); !d.NextAttemptAt.Equal(T0.Add(time.Minute)) || d.LastError == "" {
		t.Fatalf("retried delivery = %+v", d)
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 3 {
		t.Fatalf("%d attempts recorded, want 3 (refused items record nothing)", len(atts))
	}
	got := map[string]*store.Attempt{}
	for _, a := range atts {
		got[a.DeliveryID] = a
	}
	for _, i := range []int{0, 1, 6} {
		a := got[ps[i].ID]
		if a == nil || a.Number != 1 || a.HookID != h.ID || a.Filter != webhook.StackCreated || string(a.RequestBody) != string(ps[i].Record.RequestBody) ||
			a.RequestHeaders["Pulumi-Webhook-Id"][0] != ps[i].ID || a.ResponseCode != ps[i].Record.ResponseCode {
			t.Fatalf("attempt of item %d = %+v", i, a)
		}
	}
	// The items refused for their lease can still be completed by their holder.
	if errs := b.st.DeliveryCompleteMany(b.ctx, []store.DeliveryCompleteParams{item(dids[2], store.DeliverySucceeded), item(dids[3], store.DeliverySucceeded)}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("completing the refused items = %v", errs)
	}
	// A batch of only invalid items touches nothing.
	errs = b.st.DeliveryCompleteMany(b.ctx, []store.DeliveryCompleteParams{{ID: dids[1], Worker: "w", Attempt: 1, State: "bogus", Now: T0}})
	if len(errs) != 1 || errs[0] == nil {
		t.Fatalf("DeliveryCompleteMany of an invalid item = %v", errs)
	}
}

// testCompleteManyDisableHook: a 410 early in a batch disables the hook and discards its
// other deliveries, so a later item for that hook finds its lease lost, while an item for
// another hook is recorded.
func testCompleteManyDisableHook(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	other := createHook(t, b, spec(orgScope("acme"), "other"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: other})
	cds := claim(t, b, "w", T0, 3, 0)
	if len(cds) != 3 {
		t.Fatalf("claimed %d", len(cds))
	}
	reason := "the endpoint answered 410 Gone"
	ps := []store.DeliveryCompleteParams{
		{ID: dids[0], Worker: "w", Attempt: 1, State: store.DeliveryFailed, Record: store.Attempt{ResponseCode: 410, StartedAt: T0}, DisableHookReason: reason, Now: T0},
		{ID: dids[1], Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Record: store.Attempt{ResponseCode: 200, StartedAt: T0}, Now: T0},
		{ID: dids[2], Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Record: store.Attempt{ResponseCode: 200, StartedAt: T0}, Now: T0},
	}
	errs := b.st.DeliveryCompleteMany(b.ctx, ps)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("DeliveryCompleteMany = %v", errs)
	}
	wantErr(t, "completing a delivery the same batch discarded", errs[1], store.ErrLeaseLost)
	got, _ := b.st.HookGetByID(b.ctx, h.ID)
	if got.Active || got.DisabledReason != reason {
		t.Fatalf("hook after 410 = active %v reason %q", got.Active, got.DisabledReason)
	}
	for i, want := range []store.DeliveryState{store.DeliveryFailed, store.DeliveryDiscarded, store.DeliverySucceeded} {
		if d := getDelivery(t, b, dids[i]); d.State != want {
			t.Fatalf("delivery %d is %s, want %s", i, d.State, want)
		}
	}
}

// testCompleteManyCanceled: when the transaction cannot run, every item gets the error and
// nothing is written.
func testCompleteManyCanceled(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h})
	cds := claim(t, b, "w", T0, 2, 0)
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	ps := []store.DeliveryCompleteParams{
		{ID: cds[0].ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0},
		{ID: cds[1].ID, Worker: "w", Attempt: 1, State: "bogus", Now: T0},
	}
	errs := b.st.DeliveryCompleteMany(ctx, ps)
	if len(errs) != 2 || !errors.Is(errs[0], context.Canceled) || errs[1] == nil || errors.Is(errs[1], context.Canceled) {
		t.Fatalf("DeliveryCompleteMany with a canceled context = %v, want context.Canceled for the valid item and its own error for the invalid one", errs)
	}
	for _, id := range dids {
		if d := getDelivery(t, b, id); d.State != store.DeliveryRunning {
			t.Fatalf("delivery %s is %s after a canceled batch, want running", id, d.State)
		}
	}
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 0 {
		t.Fatalf("a canceled batch recorded %d attempts", len(atts))
	}
}

// testCompleteManyMixed completes a batch naming each delivery once and disabling no hook, with
// deliveries of two hooks and two events: recorded items, a retry, items refused for their
// lease (another worker, another attempt, an unknown delivery) and an invalid one, in one
// transaction. Each item gets its own result; refused ones write nothing.
func testCompleteManyMixed(t *testing.T, b *testBundle) {
	h1 := createHook(t, b, spec(orgScope("acme"), "h1"))
	h2 := createHook(t, b, spec(orgScope("acme"), "h2"))
	_, d1 := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h1}, enqueue{hook: h2}, enqueue{hook: h1})
	_, d2 := emit(t, b, orgScope("acme"), webhook.StackDeleted, enqueue{hook: h2}, enqueue{hook: h1}, enqueue{hook: h2})
	cds := claim(t, b, "w", T0, 6, 0)
	if len(cds) != 6 {
		t.Fatalf("claimed %d", len(cds))
	}
	byID := map[string]*store.ClaimedDelivery{}
	for _, cd := range cds {
		byID[cd.ID] = cd
	}
	item := func(id string, state store.DeliveryState, code int) store.DeliveryCompleteParams {
		cd := byID[id]
		return store.DeliveryCompleteParams{ID: id, Worker: "w", Attempt: cd.Attempts, State: state, Now: T0.Add(time.Second),
			NextAttemptAt: T0.Add(time.Minute),
			Record: store.Attempt{StartedAt: T0, Duration: 2 * time.Millisecond, RequestURL: cd.URL, RequestBody: cd.Body, ResponseCode: code,
				RequestHeaders: map[string][]string{"Pulumi-Webhook-Id": {id}}, ResponseHeaders: map[string][]string{"X-Seen": {id}},
				ResponseBody: []byte("answer to " + id)}}
	}
	ps := []store.DeliveryCompleteParams{
		item(d1[0], store.DeliverySucceeded, 200),
		item(d2[0], store.DeliveryPending, 503),
		item(d1[1], store.DeliverySucceeded, 200), // held by w, completed by another worker
		item(d2[1], store.DeliverySucceeded, 200), // another attempt number
		{ID: "no-such-delivery", Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0},
		item(d1[2], "bogus", 200), // invalid
		item(d2[2], store.DeliveryFailed, 500),
	}
	ps[2].Worker = "someone-else"
	ps[3].Attempt = 2
	ps[6].Record.RequestBody = []byte("a body other than the delivery's")
	errs := b.st.DeliveryCompleteMany(b.ctx, ps)
	if len(errs) != len(ps) {
		t.Fatalf("DeliveryCompleteMany returned %d errors for %d items", len(errs), len(ps))
	}
	for _, i := range []int{0, 1, 6} {
		if errs[i] != nil {
			t.Fatalf("item %d: %v", i, errs[i])
		}
	}
	for _, i := range []int{2, 3, 4} {
		wantErr(t, fmt.Sprintf("item %d", i), errs[i], store.ErrLeaseLost)
	}
	if errs[5] == nil || errors.Is(errs[5], store.ErrLeaseLost) {
		t.Fatalf("item 5 (state bogus) error = %v, want a validation error", errs[5])
	}
	want := map[string]store.DeliveryState{d1[0]: store.DeliverySucceeded, d2[0]: store.DeliveryPending, d1[1]: store.DeliveryRunning,
		d2[1]: store.DeliveryRunning, d1[2]: store.DeliveryRunning, d2[2]: store.DeliveryFailed}
	for id, st := range want {
		d := getDelivery(t, b, id)
		if d.State != st {
			t.Fatalf("delivery %s is %s, want %s", id, d.State, st)
		}
		if st != store.DeliveryRunning && (!d.LeaseUntil.IsZero() || !d.UpdatedAt.Equal(T0.Add(time.Second))) {
			t.Fatalf("completed delivery %s = %+v", id, d)
		}
	}
	if d := getDelivery(t, b, d2[0]); !d.NextAttemptAt.Equal(T0.Add(time.Minute)) || d.LastError == "" {
		t.Fatalf("retried delivery = %+v", d)
	}
	if d := getDelivery(t, b, d2[2]); d.LastError == "" {
		t.Fatalf("failed delivery has no last error: %+v", d)
	}
	var atts []*store.Attempt
	for _, h := range []*store.Hook{h1, h2} {
		a, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
		if err != nil {
			t.Fatal(err)
		}
		atts = append(atts, a...)
	}
	if len(atts) != 3 {
		t.Fatalf("%d attempts recorded, want 3 (refused items record nothing)", len(atts))
	}
	got := map[string]*store.Attempt{}
	for _, a := range atts {
		got[a.DeliveryID] = a
	}
	for _, i := range []int{0, 1, 6} {
		p, a := ps[i], got[ps[i].ID]
		if a == nil || a.Number != 1 || a.HookID != byID[p.ID].HookID || a.Filter != byID[p.ID].Filter || a.Kind != byID[p.ID].Kind ||
			string(a.RequestBody) != string(p.Record.RequestBody) || a.RequestURL != p.Record.RequestURL ||
			a.RequestHeaders["Pulumi-Webhook-Id"][0] != p.ID || a.ResponseHeaders["X-Seen"][0] != p.ID ||
			string(a.ResponseBody) != "answer to "+p.ID || a.ResponseCode != p.Record.ResponseCode ||
			a.Duration != 2*time.Millisecond || !a.StartedAt.Equal(T0) {
			t.Fatalf("attempt of item %d = %+v", i, a)
		}
	}
	// Attempts are numbered in the order of the items.
	if !(got[ps[0].ID].ID < got[ps[1].ID].ID && got[ps[1].ID].ID < got[ps[6].ID].ID) {
		t.Fatalf("attempt IDs %d, %d, %d are not in item order", got[ps[0].ID].ID, got[ps[1].ID].ID, got[ps[6].ID].ID)
	}
}

// testCompleteManyLarge completes a batch larger than a backend may write in one statement,
// with one refused item late in it.
func testCompleteManyLarge(t *testing.T, b *testBundle) {
	const n = 75
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	es := make([]enqueue, n)
	for i := range es {
		es[i] = enqueue{hook: h}
	}
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	cds := claim(t, b, "w", T0, n, 0)
	if len(cds) != n {
		t.Fatalf("claimed %d", len(cds))
	}
	ps := make([]store.DeliveryCompleteParams, n)
	for i, cd := range cds {
		ps[i] = store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0,
			Record: store.Attempt{StartedAt: T0, RequestBody: cd.Body, ResponseCode: 200}}
	}
	ps[n-3].Attempt = 7
	errs := b.st.DeliveryCompleteMany(b.ctx, ps)
	for i, err := range errs {
		if i == n-3 {
			wantErr(t, "the refused item", err, store.ErrLeaseLost)
		} else if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	succeeded := 0
	for _, id := range dids {
		if getDelivery(t, b, id).State == store.DeliverySucceeded {
			succeeded++
		}
	}
	if d := getDelivery(t, b, ps[n-3].ID); succeeded != n-1 || d.State != store.DeliveryRunning {
		t.Fatalf("%d succeeded and the refused one is %s, want %d and running", succeeded, d.State, n-1)
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Limit: 1000})
	if err != nil || len(atts) != n-1 {
		t.Fatalf("AttemptList = %d, %v; want %d", len(atts), err, n-1)
	}
	for _, a := range atts {
		if a.DeliveryID == ps[n-3].ID {
			t.Fatal("the refused item's attempt was recorded")
		}
	}
}
