package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// faultDeadline bounds the wait in each fault case.
const faultDeadline = 90 * time.Second

// tagOf reads the tag a fault case's event carries in its raw payload's user.
func tagOf(r *received) string {
	var p struct {
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	_ = json.Unmarshal(r.Body, &p)
	return p.User.Name
}

// faultFlaky: a receiver answers 500 for a while, then 200. Every event arrives, each as one
// delivery retried on the short schedule with the same ID, body and valid signatures.
func (h *harness) faultFlaky(t *testing.T) {
	const events = 6
	secret := h.secret("fault/flaky")
	scope := subject{Org: orgFlaky}
	created, err := h.api[orgFlaky].createHook(t.Context(), scope, hookBody{
		OrganizationName: orgFlaky, DisplayName: "harness fault flaky", PayloadURL: h.recv[recvFlaky].url() + "/fault/flaky",
		Secret: secret, Active: true, Filters: []string{"update_failed"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu         sync.Mutex
		recoverAt  time.Time
		outageSpan = 1500 * time.Millisecond
	)
	h.recv[recvFlaky].setAnswer(0, func(n int, r *received) int {
		mu.Lock()
		defer mu.Unlock()
		if recoverAt.IsZero() {
			recoverAt = r.At.Add(outageSpan)
		}
		if r.At.Before(recoverAt) {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	m := h.mark()
	for i := range events {
		tag := fmt.Sprintf("hx-flaky-%d", i)
		res, err := h.api[orgFlaky].emit(t.Context(), orgFlaky, emitRequest{Filter: "update_failed", ProjectName: project,
			StackName: stackA, Payload: userOverride(tag)}, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Deliveries != 1 {
			t.Fatalf("%s answered %+v, want 1 delivery", tag, res)
		}
	}
	// Wait until every event got a 200, and nothing is left to retry.
	end := time.Now().Add(faultDeadline)
	var got []*received
	for {
		got = h.since(m, recvFlaky)
		ok := map[string]bool{}
		for _, r := range got {
			if r.Status == http.StatusOK {
				ok[tagOf(r)] = true
			}
		}
		if len(ok) == events && h.queueIdle(t) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after %s, %d of %d events reached the flaky receiver with a 200", faultDeadline, len(ok), events)
		}
		time.Sleep(100 * time.Millisecond)
	}

	type tally struct {
		ids             map[string]bool
		body            []byte
		failed, success int
	}
	byTag := map[string]*tally{}
	failures := 0
	for _, r := range got {
		tag := tagOf(r)
		tl := byTag[tag]
		if tl == nil {
			tl = &tally{ids: map[string]bool{}, body: r.Body}
			byTag[tag] = tl
		}
		tl.ids[r.deliveryID()] = true
		if !bytes.Equal(tl.body, r.Body) {
			t.Errorf("%s: a retry sent a different body", tag)
		}
		if err := checkPulumiSignature(secret, r); err != nil {
			t.Errorf("%s: %v", tag, err)
		}
		if err := checkStandardSignature(secret, r); err != nil {
			t.Errorf("%s: %v", tag, err)
		}
		if r.Status == http.StatusOK {
			tl.success++
		} else {
			tl.failed++
			failures++
		}
	}
	if failures == 0 {
		t.Errorf("the flaky receiver never answered 500: the case did not test retries")
	}
	for tag, tl := range byTag {
		if len(tl.ids) != 1 || tl.success != 1 {
			t.Errorf("%s: %d delivery IDs and %d successful attempts, want 1 and 1", tag, len(tl.ids), tl.success)
		}
	}
	t.Logf("flaky receiver: %d requests for %d events, %d answered 500", len(got), events, failures)

	// The delivery log shows the failed attempts and the successful ones.
	res := runCLI(t.Context(), h.store, "deliveries", "list", resourceID(scope, created.Name), "--json", "--store", h.store)
	if res.err != nil {
		t.Fatal(res.err)
	}
	h.assertNoSecrets(t, "deliveries list", res.stdout, res.stderr)
	var attempts []struct {
		ResponseCode int `json:"responseCode"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &attempts); err != nil {
		t.Fatalf("decode deliveries list --json: %v\n%s", err, res.stdout)
	}
	codes := map[int]int{}
	for _, a := range attempts {
		codes[a.ResponseCode]++
	}
	if codes[200] != events || codes[500] != failures || len(attempts) != len(got) {
		t.Errorf("the delivery log holds %d attempts with codes %v, want %d with %d x 200 and %d x 500", len(attempts), codes, len(got), events, failures)
	}
	if err := h.api[orgFlaky].deleteHook(t.Context(), scope, created.Name); err != nil {
		t.Error(err)
	}
}

// faultGone: the YAML stack's hook whose receiver answers 410 is disabled after one delivery,
// receives nothing more, and `pulumi refresh` shows it as active: false. The organization's
// hooks that subscribe to the same event get it as usual, as the table says.
func (h *harness) faultGone(t *testing.T, yamlStack *pstack) {
	gone := subject{Org: org1, Project: project, Stack: goneName}
	first := event{Tag: "hx-gone-0", Filter: "update_failed", Subject: gone, ViaCLI: true}
	second := event{Tag: "hx-gone-1", Filter: "update_failed", Subject: gone}
	plan := planFor(2)
	want := expect(plan, []event{first}).Events[first.Tag]
	for i := range plan {
		if plan[i].Lang == "yaml" && plan[i].Key == "gone" {
			plan[i].Active = false
		}
	}
	wantAfter := expect(plan, []event{second}).Events[second.Tag]
	if want.Deliveries != wantAfter.Deliveries+1 {
		t.Fatalf("the model gives %d deliveries with the gone hook and %d without: the plan lost the gone hook", want.Deliveries, wantAfter.Deliveries)
	}

	m := h.mark()
	res, err := h.emit(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deliveries != want.Deliveries {
		t.Fatalf("update_failed for %s answered %+v, want %d deliveries (the gone hook's and the organization hooks')", gone, res, want.Deliveries)
	}
	end := time.Now().Add(faultDeadline)
	var disabled *storedHook
	for disabled == nil {
		for _, s := range h.listHooks(t, "--org", org1, "--project", project, "--stack", goneName) {
			if !s.Active && s.DisabledReason != "" {
				disabled = &s
			}
		}
		if disabled == nil {
			if time.Now().After(end) {
				t.Fatalf("after %s the gone hook is still active", faultDeadline)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("the gone hook was disabled: %s", disabled.DisabledReason)
	if got := h.since(m, recvGone); len(got) != 1 || got[0].Status != http.StatusGone || tagOf(got[0]) != first.Tag {
		t.Fatalf("the gone receiver got %d requests, want the one it answered 410", len(got))
	}
	again, err := h.emit(t.Context(), second)
	if err != nil {
		t.Fatal(err)
	}
	if again.Deliveries != wantAfter.Deliveries {
		t.Errorf("the same event after the hook was disabled answered %+v, want %d deliveries (none to the gone hook)", again, wantAfter.Deliveries)
	}
	h.await(t, m, want.Deliveries+wantAfter.Deliveries, faultDeadline, recvJSON, recvChat, recvGone)

	yamlStack.pulumi(t, "refresh", "--yes", "--skip-preview")
	if out := yamlStack.stateOutputs(t, "gone"); out["active"] != false {
		t.Errorf("after refresh the gone hook's state has active = %v, want false", out["active"])
	}
	if op := yamlStack.preview(t)["gone"]; op != "update active" {
		t.Errorf("after refresh the preview plans %q for the gone hook, want the update of active", op)
	}
	if got := h.since(m, recvGone); len(got) != 1 {
		t.Errorf("the gone receiver got %d requests in all, want 1", len(got))
	}
}

// faultCrash: the server is killed with SIGKILL while clients emit events and deliveries run,
// then restarted on the same store and address. Every event a client was told was accepted,
// or that it sent again with the same idempotency key after the restart, is delivered: none is
// lost and none is stored twice. Only the deliveries in flight at the kill may arrive twice.
func (h *harness) faultCrash(t *testing.T) {
	const (
		events  = 200
		clients = 4
		// killAfter is how many deliveries arrive before the second half of the events is
		// emitted; the kill comes while that half is being emitted.
		killAfter = 30
		// maxDuplicates bounds the deliveries sent twice: those in flight at the kill, at most
		// the server's per-endpoint limit (engine.PerEndpointLimitDefault).
		maxDuplicates = 4
	)
	secret := h.secret("fault/crash")
	scope := subject{Org: orgCrash}
	created, err := h.api[orgCrash].createHook(t.Context(), scope, hookBody{
		OrganizationName: orgCrash, DisplayName: "harness fault crash", PayloadURL: h.recv[recvSlow].url() + "/fault/crash",
		Secret: secret, Active: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.recv[recvSlow].setAnswer(40*time.Millisecond, nil)
	m := h.mark()

	ctx, cancel := context.WithTimeout(t.Context(), faultDeadline)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
		retried  int
		errs     []error
	)
	next := make(chan int)
	for range clients {
		wg.Go(func() {
			for i := range next {
				tag := fmt.Sprintf("hx-crash-%03d", i)
				req := emitRequest{Filter: "update_succeeded", ProjectName: project, StackName: stackA, Payload: userOverride(tag)}
				for {
					res, err := h.api[orgCrash].emit(ctx, orgCrash, req, tag)
					if err == nil && res.Deliveries == 1 {
						break
					}
					if ctx.Err() != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("%s was never accepted: %v (last answer %+v)", tag, err, res))
						mu.Unlock()
						return
					}
					mu.Lock()
					retried++
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
				mu.Lock()
				accepted++
				mu.Unlock()
				time.Sleep(10 * time.Millisecond) // a steady stream, still running at the kill
			}
		})
	}
	feed := func(from, to int) {
		for i := from; i < to; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}
	// The first half, then wait for deliveries to flow.
	feed(0, events/2)
	for {
		n, changed := h.recv[recvSlow].count()
		if n-m[recvSlow] >= killAfter {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("only %d deliveries arrived before the deadline; the kill never happened", n-m[recvSlow])
		}
	}
	// The second half, and the kill while it is being emitted.
	go func() {
		defer close(next)
		feed(events/2, events)
	}()
	for {
		mu.Lock()
		n := accepted
		mu.Unlock()
		if n >= events/2+clients*2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the clients stopped emitting before the kill")
		}
		time.Sleep(5 * time.Millisecond)
	}
	addr := h.srv.addr
	h.srv.kill()
	killedAt := time.Now()
	beforeKill, _ := h.recv[recvSlow].count()
	mu.Lock()
	acceptedAtKill := accepted
	mu.Unlock()
	t.Logf("SIGKILL after %d accepted events and %d deliveries", acceptedAtKill, beforeKill-m[recvSlow])
	// Restart only once a client has seen the server gone, so the kill surely interrupted
	// emitting (the clients send every few milliseconds).
	for {
		mu.Lock()
		r := retried
		mu.Unlock()
		if r > 0 {
			break
		}
		if time.Since(killedAt) > 10*time.Second {
			t.Fatalf("no client failed to emit within 10s of the kill (%d of %d events accepted before it): the kill did not interrupt emitting",
				acceptedAtKill, events)
		}
		time.Sleep(2 * time.Millisecond)
	}
	srv, err := startServer(t.Context(), h.store, addr, h.logPath)
	if err != nil {
		t.Fatalf("restart the server on %s: %v", addr, err)
	}
	h.srv = srv
	t.Logf("restarted %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}

	// Every event arrives; the deliveries held by the killed server wait out their lease.
	var got []*received
	for {
		got = h.since(m, recvSlow)
		tags := map[string]bool{}
		for _, r := range got {
			tags[tagOf(r)] = true
		}
		if len(tags) == events && h.queueIdle(t) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after %s, %d of %d events arrived after the crash", faultDeadline, len(tags), events)
		}
		time.Sleep(200 * time.Millisecond)
	}
	idsOfTag := map[string]map[string]bool{}
	perID := map[string]int{}
	for _, r := range got {
		tag := tagOf(r)
		if idsOfTag[tag] == nil {
			idsOfTag[tag] = map[string]bool{}
		}
		idsOfTag[tag][r.deliveryID()] = true
		perID[r.deliveryID()]++
		if err := checkPulumiSignature(secret, r); err != nil {
			t.Errorf("%s: %v", tag, err)
		}
		if err := checkStandardSignature(secret, r); err != nil {
			t.Errorf("%s: %v", tag, err)
		}
	}
	for tag, ids := range idsOfTag {
		if len(ids) != 1 {
			t.Errorf("%s was stored as %d events, want 1: a retried emit with the same idempotency key made a new one", tag, len(ids))
		}
	}
	dups := 0
	for _, n := range perID {
		dups += n - 1
	}
	if dups > maxDuplicates {
		t.Errorf("%d deliveries arrived twice, want at most the %d in flight at the kill", dups, maxDuplicates)
	}
	t.Logf("crash: %d events, %d requests, %d duplicates, %d emit retries; all delivered %s after the kill",
		events, len(got), dups, retried, time.Since(killedAt).Round(time.Millisecond))
	if err := h.api[orgCrash].deleteHook(t.Context(), scope, created.Name); err != nil {
		t.Error(err)
	}
}
