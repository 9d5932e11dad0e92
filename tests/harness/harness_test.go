package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Organizations of the fault cases, apart from those of the rounds so that their deliveries
// never mix with the table's.
const (
	orgFlaky = "flaky-org"
	orgCrash = "crash-org"
)

// roundDeadline bounds the wait for one round's deliveries.
const roundDeadline = 2 * time.Minute

// harness is the running system of the end-to-end test: the server on its store, the
// receivers, the API tokens and the secrets of every hook.
type harness struct {
	t       *testing.T
	dir     string
	store   string
	logPath string
	srv     *serverProc
	recv    map[string]*receiver
	tokens  map[string]string
	api     map[string]*apiClient
	secrets map[string]string
	// db is the harness's own handle on the server's store, for what no API shows: the
	// delivery queue and the deployment requests.
	db *sqlite.Store
}

// setup starts the receivers and the server on a new store, and creates a token for each
// organization with the CLI.
func setup(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		t: t, dir: dir, store: filepath.Join(dir, "store", "webhooks.db"), logPath: logPathIn(dir),
		recv: map[string]*receiver{}, tokens: map[string]string{}, api: map[string]*apiClient{}, secrets: map[string]string{},
	}
	for _, name := range []string{recvJSON, recvChat, recvGone, recvFlaky, recvSlow} {
		rc := newReceiver(name)
		h.recv[name] = rc
		t.Cleanup(rc.close)
	}
	h.recv[recvGone].setAnswer(0, func(int, *received) int { return http.StatusGone })

	// Every secret the hooks will use, made up for this run.
	names := []string{"fault/flaky", "fault/crash"}
	for _, phase := range []int{1, 2} {
		for _, hk := range planFor(phase) {
			if hk.SecretName != "" {
				names = append(names, hk.SecretName)
			}
		}
	}
	for _, n := range names {
		h.secrets[n] = newSecret(n)
	}

	ctx := t.Context()
	for _, org := range []string{org1, org2, orgFlaky, orgCrash} {
		res := runCLI(ctx, h.store, "token", "create", "--org", org, "--description", "harness", "--json", "--store", h.store)
		if res.err != nil {
			t.Fatal(res.err)
		}
		var tok struct {
			Token string `json:"token"`
			Org   string `json:"org"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &tok); err != nil || tok.Token == "" || tok.Org != org {
			t.Fatalf("token create --json printed %q (%v), want a token of %s", res.stdout, err, org)
		}
		h.tokens[org] = tok.Token
	}

	srv, err := startServer(ctx, h.store, "127.0.0.1:0", h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	for org, tok := range h.tokens {
		h.api[org] = &apiClient{base: srv.url(), token: tok, hc: &http.Client{Timeout: 30 * time.Second}}
	}
	t.Cleanup(func() {
		if h.srv != nil {
			h.srv.kill()
		}
	})
	db, err := sqlite.Open(ctx, sqlite.Config{Path: h.store})
	if err != nil {
		t.Fatalf("open the server's store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	h.db = db
	t.Logf("server %s on %s; receivers json %s, chat %s", h.srv.url(), h.store, h.recv[recvJSON].url(), h.recv[recvChat].url())
	return h
}

// newSecret makes a random secret; names ending in "whsec" get the Standard Webhooks form
// "whsec_<base64>", whose decoded bytes are the signing key.
func newSecret(name string) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	if strings.HasSuffix(name, "whsec") {
		return "whsec_" + base64.StdEncoding.EncodeToString(b)
	}
	return "hx-secret-" + hex.EncodeToString(b)
}

func (h *harness) secret(name string) string {
	s, ok := h.secrets[name]
	if !ok {
		panic("harness: no secret " + name)
	}
	return s
}

// assertNoSecrets fails t when any secret or token of the harness appears in the texts.
func (h *harness) assertNoSecrets(t *testing.T, what string, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for name, s := range h.secrets {
			if strings.Contains(text, s) {
				t.Errorf("the secret %s appears in the output of %s", name, what)
			}
		}
		for org, s := range h.tokens {
			if strings.Contains(text, s) {
				t.Errorf("the API token of %s appears in the output of %s", org, what)
			}
		}
	}
}

// redact replaces every secret and token of the harness in s.
func (h *harness) redact(s string) string {
	for _, v := range h.secrets {
		s = strings.ReplaceAll(s, v, "[secret]")
	}
	for _, v := range h.tokens {
		s = strings.ReplaceAll(s, v, "[token]")
	}
	return s
}

// payloadURL is where a hook of the plan delivers: its receiver and path, or its target stack.
func (h *harness) payloadURL(hk hook) string {
	if hk.format() == formatDeployments {
		return hk.Target
	}
	return h.recv[hk.Receiver].url() + hk.path()
}

// secretOf returns the secret of a hook of the plan, or "".
func (h *harness) secretOf(hk hook) string {
	if hk.SecretName == "" {
		return ""
	}
	return h.secret(hk.SecretName)
}

// listHooks lists every hook in the store with the CLI.
func (h *harness) listHooks(t *testing.T, args ...string) []storedHook {
	t.Helper()
	res := runCLI(t.Context(), h.store, append([]string{"hooks", "list", "--json", "--store", h.store}, args...)...)
	if res.err != nil {
		t.Fatal(res.err)
	}
	h.assertNoSecrets(t, "hooks list", res.stdout, res.stderr)
	var hs []storedHook
	if err := json.Unmarshal([]byte(res.stdout), &hs); err != nil {
		t.Fatalf("decode hooks list --json: %v\n%s", err, res.stdout)
	}
	return hs
}

// createHookCLI creates a hook of the plan with `pulumi-webhooks hooks create` on the server's
// store (a generated name; the secret, if any, through the environment) and returns the ID
// it printed.
func (h *harness) createHookCLI(t *testing.T, hk hook) string {
	t.Helper()
	s := hk.Scope
	args := []string{"hooks", "create", "--store", h.store, "--org", s.Org, "--display-name", hk.displayName(),
		"--url", h.payloadURL(hk), "--format", hk.format()}
	switch {
	case s.isEnv():
		args = append(args, "--project", s.Project, "--environment", s.Env)
	case s.Stack != "":
		args = append(args, "--project", s.Project, "--stack", s.Stack)
	}
	for _, f := range hk.Filters {
		args = append(args, "--filter", f)
	}
	for _, g := range hk.Groups {
		args = append(args, "--group", g)
	}
	if !hk.Active {
		args = append(args, "--inactive")
	}
	var env []string
	if secret := h.secretOf(hk); secret != "" {
		env = append(env, "PULUMI_WEBHOOKS_HOOK_SECRET="+secret)
	}
	res := runCLIEnv(t.Context(), h.store, env, args...)
	h.assertNoSecrets(t, "hooks create", res.stdout, res.stderr)
	if res.err != nil {
		t.Fatal(h.redact(res.err.Error()))
	}
	id := strings.TrimSuffix(res.stdout, "\n")
	prefix := strings.TrimSuffix(resourceID(s, "x"), "x")
	if name, ok := strings.CutPrefix(id, prefix); !ok || name == "" || strings.ContainsAny(name, "/ \n") {
		t.Fatalf("hooks create printed %q, want one ID %s<name>", res.stdout, prefix)
	}
	return id
}

// checkStored checks that the store holds exactly the plan's hooks, as planned, and that the
// IDs the stacks export (ids[lang][key]) are theirs. It returns the stored hooks by name.
func (h *harness) checkStored(t *testing.T, plan []hook, ids map[string]map[string]string) map[string]storedHook {
	t.Helper()
	stored := map[string]storedHook{}
	for _, s := range h.listHooks(t) {
		if strings.HasPrefix(s.DisplayName, "harness ") {
			stored[s.DisplayName] = s
		}
	}
	byName := map[string]storedHook{}
	for _, hk := range plan {
		s, ok := stored[hk.displayName()]
		if !ok {
			t.Errorf("the store has no hook %q", hk.displayName())
			continue
		}
		delete(stored, hk.displayName())
		byName[hk.name()] = s
		var diffs []string
		diff := func(field string, got, want any) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				diffs = append(diffs, fmt.Sprintf("%s %v, want %v", field, got, want))
			}
		}
		diff("scope", s.scope(), hk.Scope)
		diff("payloadUrl", s.PayloadURL, h.payloadURL(hk))
		diff("active", s.Active, hk.Active)
		diff("format", s.Format, hk.format())
		diff("filters", s.Filters, hk.Filters)
		diff("groups", sorted(s.Groups), sorted(hk.groups()))
		diff("hasSecret", s.HasSecret, hk.SecretName != "")
		if want := resourceID(hk.Scope, s.Name); s.ID != want {
			diffs = append(diffs, fmt.Sprintf("id %s, want %s", s.ID, want))
		}
		if id, ok := ids[hk.Lang][hk.Key]; ok && id != s.ID {
			diffs = append(diffs, fmt.Sprintf("the stack exports the ID %s, the store has %s", id, s.ID))
		}
		if len(diffs) > 0 {
			t.Errorf("hook %s as stored: %s", hk.name(), strings.Join(diffs, "; "))
		}
	}
	for name := range stored {
		t.Errorf("the store holds a hook the plan does not have: %q", name)
	}
	return byName
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// marks are the receivers' request counts at a moment, to read what came after.
type marks map[string]int

func (h *harness) mark() marks {
	m := marks{}
	for name, rc := range h.recv {
		m[name], _ = rc.count()
	}
	return m
}

// since returns the requests receivers got after m.
func (h *harness) since(m marks, receivers ...string) []*received {
	var out []*received
	for _, name := range receivers {
		rs, _ := h.recv[name].since(m[name])
		out = append(out, rs...)
	}
	return out
}

// emit fires one event through the API or the CLI, with its tag as user and idempotency key.
func (h *harness) emit(ctx context.Context, ev event) (emitResponse, error) {
	s := ev.Subject
	if !ev.ViaCLI {
		req := emitRequest{Filter: ev.Filter, ProjectName: s.Project, StackName: s.Stack, EnvironmentName: s.Env, Payload: userOverride(ev.Tag)}
		return h.api[s.Org].emit(ctx, s.Org, req, ev.Tag)
	}
	args := []string{"emit", "--store", h.store, "--json", "--org", s.Org, "--filter", ev.Filter, "--project", s.Project,
		"--payload", string(userOverride(ev.Tag)), "--idempotency-key", ev.Tag}
	if s.isEnv() {
		args = append(args, "--environment", s.Env)
	} else {
		args = append(args, "--stack", s.Stack)
	}
	res := runCLI(ctx, h.store, args...)
	if res.err != nil {
		return emitResponse{}, res.err
	}
	var out emitResponse
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		return emitResponse{}, fmt.Errorf("decode emit --json: %w\n%s", err, res.stdout)
	}
	return out, nil
}

// fire emits every event, four at a time, and returns the answers by tag.
func (h *harness) fire(t *testing.T, evs []event) map[string]emitResponse {
	t.Helper()
	out := map[string]emitResponse{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan event)
	var errs []error
	for range 4 {
		wg.Go(func() {
			for ev := range work {
				res, err := h.emit(t.Context(), ev)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s %s for %s: %w", ev.Tag, ev.Filter, ev.Subject, err))
				}
				out[ev.Tag] = res
				mu.Unlock()
			}
		})
	}
	for _, ev := range evs {
		work <- ev
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return out
}

// queueIdle reports whether no delivery is pending or running.
func (h *harness) queueIdle(t *testing.T) bool {
	t.Helper()
	st, err := h.db.DeliveryStats(t.Context(), time.Now())
	if err != nil {
		t.Fatalf("queue stats: %v", err)
	}
	return st.Pending == 0 && st.Running == 0
}

// await waits until the receivers got at least want distinct deliveries since m and the
// queue is idle (so nothing more is coming), or the deadline passes; it returns what arrived.
func (h *harness) await(t *testing.T, m marks, want int, deadline time.Duration, receivers ...string) []*received {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		got := h.since(m, receivers...)
		ids := map[string]bool{}
		for _, r := range got {
			ids[r.deliveryID()] = true
		}
		if len(ids) >= want && h.queueIdle(t) {
			return got
		}
		if time.Now().After(end) {
			t.Errorf("after %s the receivers got %d distinct deliveries, want %d (queue idle: %t)", deadline, len(ids), want, h.queueIdle(t))
			return got
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal("the test ended while waiting for deliveries")
		}
	}
}

// round fires every event of a round against the plan's hooks and checks the outcome against
// the one expectation table: every event's answer, every hook's deliveries (no more, no
// fewer, each with valid headers, signature and body), and every deployment request.
func (h *harness) round(t *testing.T, n int, plan []hook) {
	t.Helper()
	start := time.Now()
	evs := roundEvents(n)
	x := expect(plan, evs)
	for _, hk := range plan {
		if got := sumCounts(x.Deliveries[hk.name()]); got != hk.Want[n-1] {
			t.Fatalf("the model gives %s %d deliveries in round %d, the plan's hand count is %d", hk.name(), got, n, hk.Want[n-1])
		}
	}
	m := h.mark()
	answers := h.fire(t, evs)
	fired := time.Since(start)

	// Every answer says what the table says the event leads to.
	evByTag := map[string]event{}
	for _, ev := range evs {
		evByTag[ev.Tag] = ev
		got, want := answers[ev.Tag], x.Events[ev.Tag]
		if got.EventID == "" || got.Deliveries != want.Deliveries || got.DeploymentRequests != want.DeploymentRequests {
			route := "API"
			if ev.ViaCLI {
				route = "CLI"
			}
			t.Errorf("%s %s for %s (%s) answered %+v, want %d deliveries and %d deployment requests",
				ev.Tag, ev.Filter, ev.Subject, route, got, want.Deliveries, want.DeploymentRequests)
		}
	}
	// The same idempotency key again, through either route, replays the first answer.
	for _, ev := range evs[:2] {
		again, err := h.emit(t.Context(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if again != answers[ev.Tag] {
			t.Errorf("%s fired again with its idempotency key answered %+v, want the first answer %+v", ev.Tag, again, answers[ev.Tag])
		}
	}

	got := h.await(t, m, x.total(), roundDeadline, recvJSON, recvChat)
	t.Logf("round %d: %d events fired in %s; %d deliveries arrived after %s", n, len(evs), fired.Round(time.Millisecond),
		len(got), time.Since(start).Round(time.Millisecond))
	h.checkRound(t, plan, x, evByTag, got)
	h.checkDeploymentRequests(t, plan, x, start)
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// checkRound compares the deliveries of a round with the table and checks each one.
func (h *harness) checkRound(t *testing.T, plan []hook, x expectation, evByTag map[string]event, got []*received) {
	t.Helper()
	byPath := map[string]hook{}
	queued := map[string]subject{}
	for _, hk := range plan {
		if hk.format() == formatDeployments {
			proj, stack, _ := strings.Cut(hk.Target, "/")
			s := subject{Org: hk.Scope.Org, Project: proj, Stack: stack}
			queued[queuedTag(s)] = s
			continue
		}
		byPath[hk.Receiver+hk.path()] = hk
	}
	counts := map[string]map[string]int{}
	seen := map[string]bool{}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range got {
		hk, ok := byPath[r.Receiver+r.Path]
		if !ok {
			report("a delivery to %s %s, which no hook of the plan has", r.Receiver, r.Path)
			continue
		}
		if seen[r.deliveryID()] {
			report("delivery %s reached %s twice", r.deliveryID(), hk.name())
			continue
		}
		seen[r.deliveryID()] = true
		tag, err := attribute(hk, r, queued)
		if err != nil {
			report("a delivery to %s: %v\n%s", hk.name(), err, r.Body)
			continue
		}
		ev, ok := evByTag[tag]
		if !ok {
			s, isQueued := queued[tag]
			if !isQueued {
				report("a delivery to %s of an event this round did not fire: %s", hk.name(), tag)
				continue
			}
			ev = event{Tag: tag, Filter: "deployment_queued", Subject: s}
		}
		for _, err := range checkRequest(hk, ev, h.secretOf(hk), r) {
			report("%s, %s %s for %s: %v", hk.name(), tag, ev.Filter, ev.Subject, err)
		}
		if counts[hk.name()] == nil {
			counts[hk.name()] = map[string]int{}
		}
		counts[hk.name()][tag]++
	}
	for _, hk := range plan {
		if d := countDiff(x.Deliveries[hk.name()], counts[hk.name()]); d != "" {
			t.Errorf("%s (%s, %s): %s", hk.name(), hk.Scope, hk.format(), d)
		}
	}
	if bad > 20 {
		t.Errorf("... and %d more problems", bad-20)
	}
}

// checkDeploymentRequests checks the deployment requests recorded since start: each
// pulumi_deployments hook made as many as the table says, all queued, for its target.
func (h *harness) checkDeploymentRequests(t *testing.T, plan []hook, x expectation, start time.Time) {
	t.Helper()
	all, err := h.db.HookList(t.Context(), store.HookListParams{})
	if err != nil {
		t.Fatalf("list hooks: %v", err)
	}
	idOf := map[string]int64{}
	for _, s := range all {
		idOf[s.DisplayName] = s.ID
	}
	targets := map[string]webhook.Scope{}
	for _, hk := range plan {
		if hk.format() == formatDeployments {
			proj, stack, _ := strings.Cut(hk.Target, "/")
			targets[hk.Target] = webhook.Scope{Org: hk.Scope.Org, Project: proj, Stack: stack}
		}
	}
	got := map[int64]int{}
	for _, target := range targets {
		reqs, err := h.db.DeploymentRequestList(t.Context(), target)
		if err != nil {
			t.Fatalf("deployment requests of %s: %v", target, err)
		}
		for _, r := range reqs {
			if r.CreatedAt.Before(start.Add(-time.Second)) {
				continue
			}
			got[r.HookID]++
			if r.Status != "queued" || r.Target != target || len(r.Cause) == 0 {
				t.Errorf("deployment request %s: status %s, target %s, cause %v; want queued for %s", r.ID, r.Status, r.Target, r.Cause, target)
			}
		}
	}
	for _, hk := range plan {
		if hk.format() != formatDeployments {
			continue
		}
		if n := got[idOf[hk.displayName()]]; n != x.Requests[hk.name()] {
			t.Errorf("%s made %d deployment requests of %s, want %d", hk.name(), n, hk.Target, x.Requests[hk.name()])
		}
	}
}

// apiWrites counts the webhook writes the server logged, as "METHOD STATUS" (e.g. "POST
// 201"): what the provider's remote mode sent, and nothing of the embedded mode.
func (h *harness) apiWrites(t *testing.T) map[string]int {
	t.Helper()
	raw, err := os.ReadFile(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(raw), "\n") {
		var e struct {
			Msg    string `json:"msg"`
			Method string `json:"method"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Msg != "request" || e.Method == http.MethodGet {
			continue
		}
		if strings.HasSuffix(e.Path, "/hooks") || strings.Contains(e.Path, "/hooks/") && !strings.Contains(e.Path, "/deliveries") && !strings.HasSuffix(e.Path, "/ping") {
			out[fmt.Sprintf("%s %d", e.Method, e.Status)]++
		}
	}
	return out
}

// checkWrites compares the server's logged webhook writes with want.
func (h *harness) checkWrites(t *testing.T, want map[string]int) {
	t.Helper()
	if got := h.apiWrites(t); !maps.Equal(got, want) {
		t.Errorf("the server logged the webhook writes %v, want %v", got, want)
	}
}

// remoteHooks counts the hooks of a plan the provider manages through the API.
func remoteHooks(plan []hook) int {
	n := 0
	for _, hk := range plan {
		if hk.Provider == provRemote && hk.Lang != "import" {
			n++
		}
	}
	return n
}

// parallel runs fn for every stack as parallel subtests of one group and stops the test when
// any of them failed.
func parallel(t *testing.T, group string, stacks []*pstack, fn func(t *testing.T, s *pstack)) {
	t.Helper()
	start := time.Now()
	ok := t.Run(group, func(t *testing.T) {
		for _, s := range stacks {
			t.Run(s.lang, func(t *testing.T) {
				t.Parallel()
				fn(t, s)
			})
		}
	})
	t.Logf("%s took %s", group, time.Since(start).Round(time.Millisecond))
	if !ok {
		t.FailNow()
	}
}

// step runs one stage of the test as a subtest and stops the test when it failed.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	start := time.Now()
	ok := t.Run(name, fn)
	t.Logf("%s took %s", name, time.Since(start).Round(time.Millisecond))
	if !ok {
		t.FailNow()
	}
}

// TestEndToEnd is the integration harness of the whole product: the server, the CLI, the
// provider in both modes under the real pulumi CLI, and programs in YAML, TypeScript, Python
// and Go, checked end to end at receivers on 127.0.0.1.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	needSuite(t)
	begin := time.Now()
	h := setup(t)
	stacks := []*pstack{h.newStack("yaml")}
	for _, l := range sdkLangs {
		stacks = append(stacks, h.newStack(l))
	}
	yamlStack := stacks[0]
	var idsMu sync.Mutex
	ids := map[string]map[string]string{}
	up := func(phase int) func(t *testing.T, s *pstack) {
		return func(t *testing.T, s *pstack) {
			got := s.up(t, phase)
			idsMu.Lock()
			ids[s.lang] = got
			idsMu.Unlock()
		}
	}

	// Phase 1: every program creates its hooks with `pulumi up`.
	parallel(t, "up-phase-1", stacks, up(1))
	step(t, "stored-phase-1", func(t *testing.T) {
		h.checkStored(t, planFor(1), ids)
		// The remote provider created its hooks through the API; the embedded one did not.
		h.checkWrites(t, map[string]int{"POST 201": remoteHooks(planFor(1))})
	})
	step(t, "round-1", func(t *testing.T) { h.round(t, 1, planFor(1)) })

	// Phase 2: filters narrowed, a hook deactivated, a scope changed, in every program.
	step(t, "preview-phase-2", func(t *testing.T) {
		yamlStack.yamlConfig(t, 2)
		ops := yamlStack.preview(t)
		for name, want := range map[string][]string{
			"org-filters": {"update", "filters"}, "teams-all": {"update", "active"}, "stack-groups": {"replace", "stackName"},
		} {
			for _, w := range want {
				if !strings.Contains(ops[name], w) {
					t.Errorf("the phase 2 preview plans %q for %s, want it to mention %s", ops[name], name, w)
				}
			}
			delete(ops, name)
		}
		for name, op := range ops {
			if op != "same" {
				t.Errorf("the phase 2 preview plans %q for %s, want no change", op, name)
			}
		}
	})
	parallel(t, "up-phase-2", stacks, up(2))
	step(t, "writes-phase-2", func(t *testing.T) {
		// Through the API: each language's org-neither deactivated in place (PATCH), and each
		// replacement (the languages' stack-filters, the YAML stack-groups) created anew and
		// deleted.
		replaced := len(sdkLangs) + 1
		h.checkWrites(t, map[string]int{
			"POST 201": remoteHooks(planFor(1)) + replaced, "PATCH 200": len(sdkLangs), "DELETE 204": replaced,
		})
	})

	// A hook created outside Pulumi with `pulumi-webhooks hooks create`, adopted with `pulumi
	// import` by the ID the CLI printed: then nothing to change.
	step(t, "import", func(t *testing.T) {
		imp := importedHook()
		yamlStack.importHook(t, imp.Key, h.createHookCLI(t, imp))
	})
	step(t, "stored-phase-2", func(t *testing.T) { h.checkStored(t, planFor(2), ids) })
	step(t, "round-2", func(t *testing.T) { h.round(t, 2, planFor(2)) })

	// Fault cases.
	step(t, "fault-retry-until-200", h.faultFlaky)
	step(t, "fault-410-disables", func(t *testing.T) { h.faultGone(t, yamlStack) })
	step(t, "fault-sigkill-under-load", h.faultCrash)

	// Destroy: the hooks are gone and nothing is delivered any more.
	parallel(t, "destroy", stacks, func(t *testing.T, s *pstack) { s.destroy(t) })
	step(t, "stored-after-destroy", func(t *testing.T) { h.checkStored(t, nil, nil) })
	step(t, "round-3-after-destroy", h.roundAfterDestroy)

	step(t, "shutdown", func(t *testing.T) {
		if err := h.srv.stop(); err != nil {
			t.Errorf("the server did not stop cleanly on SIGTERM: %v", err)
		}
		h.srv = nil
		logs, err := os.ReadFile(h.logPath)
		if err != nil {
			t.Fatal(err)
		}
		h.assertNoSecrets(t, "the server's log", string(logs))
	})
	t.Logf("the whole harness took %s", time.Since(begin).Round(time.Second))
}

// roundAfterDestroy fires a whole round after every hook was destroyed: each event answers no
// delivery and no deployment request, and a sentinel hook created afterwards gets its one
// delivery while nothing else arrives anywhere.
func (h *harness) roundAfterDestroy(t *testing.T) {
	m := h.mark()
	evs := roundEvents(3)
	for tag, res := range h.fire(t, evs) {
		if res.Deliveries != 0 || res.DeploymentRequests != 0 {
			t.Errorf("%s after destroy answered %+v, want no deliveries and no deployment requests", tag, res)
		}
	}
	sentinel, err := h.api[org1].createHook(t.Context(), subject{Org: org1}, hookBody{
		OrganizationName: org1, DisplayName: "harness sentinel", PayloadURL: h.recv[recvJSON].url() + "/sentinel",
		Active: true, Filters: []string{"stack_created"},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.emit(t.Context(), event{Tag: "hx-r4-e000", Filter: "stack_created", Subject: subjA})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deliveries != 1 {
		t.Errorf("the sentinel event answered %+v, want 1 delivery", res)
	}
	got := h.await(t, m, 1, roundDeadline, recvJSON, recvChat, recvGone)
	for _, r := range got {
		if r.Path != "/sentinel" {
			t.Errorf("after destroy %s received a delivery at %s:\n%s", r.Receiver, r.Path, r.Body)
		}
	}
	if len(got) != 1 {
		t.Errorf("after destroy the receivers got %d requests, want only the sentinel's", len(got))
	}
	if err := h.api[org1].deleteHook(t.Context(), subject{Org: org1}, sentinel.Name); err != nil {
		t.Error(err)
	}
}
