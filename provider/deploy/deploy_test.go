package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// These tests run real Pulumi operations: the pulumi CLI and YAML language host that
// provider/scripts/toolchain.sh builds (cached after the first run), YAML programs, a file://
// backend in a temporary directory, offline (no update checks, no plugin downloads).

const testSecret = "tok-5ecr3t-0f-the-deployment"

var (
	toolOnce sync.Once
	toolBin  string
	toolErr  error
)

// toolchain returns the directory holding pulumi and pulumi-language-yaml.
func toolchain(t *testing.T) string {
	t.Helper()
	toolOnce.Do(func() {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			toolErr = err
			return
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("bash", filepath.Join(root, "provider", "scripts", "toolchain.sh"))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if toolErr = cmd.Run(); toolErr != nil {
			toolErr = &buildError{err: toolErr, out: stderr.String()}
			return
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		toolBin = strings.TrimSpace(lines[len(lines)-1])
	})
	if toolErr != nil {
		t.Fatalf("provider/scripts/toolchain.sh: %v", toolErr)
	}
	return toolBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// syncBuffer is a log sink the runner's goroutines write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// receiver is an HTTP endpoint on 127.0.0.1 that records the events it is sent.
// subscribe creates one org hook per filter, each posting to /<filter>.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []received
	raws []string
}

type received struct {
	Filter  string
	Stack   string
	Payload map[string]any
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p map[string]any
		_ = json.Unmarshal(body, &p)
		rc.mu.Lock()
		// Each hook of the receiver has its own path: the filter it subscribes to.
		filter := strings.TrimPrefix(r.URL.Path, "/")
		rc.got = append(rc.got, received{Filter: filter, Stack: str(p["stackName"]), Payload: p})
		rc.raws = append(rc.raws, filter+" "+string(body))
		rc.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func str(v any) string { s, _ := v.(string); return s }

// find returns the events received with filter about stack.
func (rc *receiver) find(filter, stack string) []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []received
	for _, r := range rc.got {
		if r.Filter == filter && r.Stack == stack {
			out = append(out, r)
		}
	}
	return out
}

func (rc *receiver) all() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return strings.Join(rc.raws, "\n")
}

type bundle struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	state   string
	home    string
	dbPath  string
	key     []byte
	st      *sqlite.Store
	eng     *engine.Engine
	runner  *Runner
	logs    *syncBuffer
	env     []string
	toolBin string
	adjust  []func(*engine.Config)
}

// setup opens a store and an engine (delivering to 127.0.0.1) and, unless workers is 0,
// starts a runner.
func setup(t *testing.T, workers int, adjust ...func(*engine.Config)) *bundle {
	t.Helper()
	dir := t.TempDir()
	b := &bundle{t: t, ctx: t.Context(), dir: dir, state: filepath.Join(dir, "state"), home: filepath.Join(dir, "home"),
		dbPath: filepath.Join(dir, "webhooks.db"), key: bytes.Repeat([]byte{7}, 32), logs: &syncBuffer{}, toolBin: toolchain(t)}
	for _, d := range []string{b.state, b.home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	b.env = []string{
		"PATH=" + b.toolBin + string(os.PathListSeparator) + "/usr/bin:/bin",
		"HOME=" + b.home,
		"PULUMI_HOME=" + b.home,
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
		"PULUMI_SKIP_CONFIRMATIONS=true",
		"NO_COLOR=1",
	}
	b.adjust = adjust
	b.open(workers)
	return b
}

func (b *bundle) open(workers int) {
	t := b.t
	st, err := sqlite.Open(b.ctx, sqlite.Config{Path: b.dbPath, Key: b.key, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	b.st = st
	logger := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ecfg := engine.Config{Store: st, Logger: logger, AllowTargets: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		PollInterval: 50 * time.Millisecond, Timeout: 10 * time.Second}
	for _, f := range b.adjust {
		f(&ecfg)
	}
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.eng = eng
	b.runner = nil
	if workers > 0 {
		r, err := New(Config{Engine: eng, Logger: logger, Workers: workers, Env: b.env, PollInterval: 100 * time.Millisecond,
			ProgressInterval: 200 * time.Millisecond, WorkDir: b.dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(b.ctx); err != nil {
			t.Fatal(err)
		}
		b.runner = r
	}
	t.Cleanup(b.close)
}

// close stops everything this bundle started (again is harmless).
func (b *bundle) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b.runner != nil {
		b.runner.Stop(ctx)
		b.runner = nil
	}
	if b.eng != nil {
		_ = b.eng.Stop(ctx)
		b.eng = nil
	}
	if b.st != nil {
		_ = b.st.Close()
		b.st = nil
	}
}

// program writes a YAML program of project into a new directory and returns it.
func (b *bundle) program(name, body string) string {
	dir := filepath.Join(b.dir, "programs", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte(body), 0o644); err != nil {
		b.t.Fatal(err)
	}
	return dir
}

// settings stores deployment settings for stack: the program in dir, the file backend, a
// passphrase and a secret environment variable, through the same conversion the API uses.
func (b *bundle) settings(stack webhook.Scope, source api.SourceContext, pre ...string) {
	s := &api.DeploymentSettings{
		SourceContext: &source,
		OperationContext: &api.OperationContext{
			PreRunCommands: pre,
			EnvironmentVariables: map[string]api.SecretValue{
				"DEPLOY_TOKEN": {Value: testSecret, Secret: true},
				"GREETING":     {Value: "hello"},
			},
		},
		Backend: &api.Backend{URL: "file://" + b.state, Passphrase: &api.SecretValue{Value: "test-passphrase", Secret: true}},
	}
	doc, secrets, err := s.ToStore(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.st.DeploymentSettingsPut(b.ctx, store.DeploymentSettingsPutParams{Stack: stack, Settings: doc, Secrets: secrets, Now: time.Now()}); err != nil {
		b.t.Fatal(err)
	}
}

// hook creates a hook.
func (b *bundle) hook(spec webhook.Spec) {
	spec.DisplayName = spec.Name
	if _, err := b.eng.HookCreate(b.ctx, spec); err != nil {
		b.t.Fatalf("create hook: %v", err)
	}
}

// subscribe makes rc receive every event of filters in organization acme.
func (b *bundle) subscribe(rc *receiver, filters ...webhook.Filter) {
	for _, f := range filters {
		b.hook(webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "rc-" + strings.ReplaceAll(string(f), "_", "-"),
			PayloadURL: rc.srv.URL + "/" + string(f), Active: true, Filters: []webhook.Filter{f}})
	}
}

// wait waits for the newest deployment of stack to finish and returns it.
func (b *bundle) wait(stack webhook.Scope, min int) *store.Deployment {
	b.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		ds, err := b.st.DeploymentList(b.ctx, store.DeploymentListParams{Stack: stack})
		if err != nil {
			b.t.Fatal(err)
		}
		if len(ds) >= min {
			d := ds[0]
			if d.Status == store.DeploymentSucceeded || d.Status == store.DeploymentFailed {
				return d
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("deployment %d of %s did not finish; logs:\n%s", min, stack, b.logs.String())
	return nil
}

// eventually waits for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// history reads a stack's update history from the file backend with the Automation API.
func (b *bundle) history(dir, stackName string) []auto.UpdateSummary {
	b.t.Helper()
	env := map[string]string{"PULUMI_BACKEND_URL": "file://" + b.state, "PULUMI_CONFIG_PASSPHRASE": "test-passphrase"}
	for _, kv := range b.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(b.toolBin), SkipVersionCheck: true})
	if err != nil {
		b.t.Fatal(err)
	}
	ws, err := auto.NewLocalWorkspace(b.ctx, auto.WorkDir(dir), auto.EnvVars(env), auto.Pulumi(cmd))
	if err != nil {
		b.t.Fatal(err)
	}
	s, err := auto.SelectStack(b.ctx, stackName, ws)
	if err != nil {
		b.t.Fatalf("select %s: %v", stackName, err)
	}
	h, err := s.History(b.ctx, 0, 0)
	if err != nil {
		b.t.Fatalf("history of %s: %v", stackName, err)
	}
	return h
}

const okProgram = `name: chain
runtime: yaml
config:
  note:
    type: string
    default: none
outputs:
  greeting: hello
`

// TestHookChainDeploysTarget: stack a's update_succeeded, emitted through the engine, makes
// its pulumi_deployments hook deploy stack b with b's settings: b's history shows the update,
// every deployment event reaches a receiver on 127.0.0.1, b's own update_succeeded fires, and
// the secret environment variable shows nowhere (log, API shape, events, server log).
func TestHookChainDeploysTarget(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	rc := newReceiver(t)
	dir := b.program("chain", okProgram)
	a, bb := webhook.Scope{Org: "acme", Project: "chain", Stack: "a"}, webhook.Scope{Org: "acme", Project: "chain", Stack: "b"}
	b.settings(bb, api.SourceContext{Local: &api.LocalSource{Path: dir}}, `echo "token=$DEPLOY_TOKEN greeting=$GREETING"`)
	b.hook(webhook.Spec{Scope: a, Name: "deploy-b", PayloadURL: "chain/b", Active: true, Format: webhook.FormatPulumiDeployments,
		Filters: []webhook.Filter{webhook.UpdateSucceeded}})
	b.subscribe(rc, webhook.DeploymentQueued, webhook.DeploymentStarted, webhook.DeploymentSucceeded, webhook.DeploymentFailed,
		webhook.UpdateSucceeded)

	if _, err := b.eng.Emit(b.ctx, engine.EmitParams{Filter: webhook.UpdateSucceeded, Subject: a}); err != nil {
		t.Fatal(err)
	}
	b.runner.Wake()
	d := b.wait(bb, 1)
	if d.Status != store.DeploymentSucceeded || d.Operation != "update" || d.Version != 1 || d.Source != engine.DeploymentSourceWebhook {
		t.Fatalf("deployment of b = %s %s v%d from %q (%s); log:\n%s", d.Status, d.Operation, d.Version, d.Source, d.Reason, d.Log)
	}
	if !strings.Contains(d.Log, "token=[secret] greeting=hello") || strings.Contains(d.Log, testSecret) {
		t.Errorf("the log does not show the pre-run command with the secret redacted:\n%s", d.Log)
	}
	h := b.history(dir, "b")
	if len(h) != 1 || h[0].Kind != "update" || h[0].Result != "succeeded" {
		t.Fatalf("history of b = %+v, want one succeeded update", h)
	}
	for _, f := range []string{"deployment_queued", "deployment_started", "deployment_succeeded", "update_succeeded"} {
		f := f
		eventually(t, f+" about b at the receiver", func() bool { return len(rc.find(f, "b")) == 1 })
	}
	// b's update_succeeded was built from the history entry the run wrote, with the key a
	// backend watcher uses: a watcher of the same backend replays it instead of firing again.
	backend, err := watch.OpenBackend(b.ctx, "file://"+b.state)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	entry, err := backend.LatestEntry(b.ctx, watch.StackRef{Project: "chain", Name: "b"}, time.Time{})
	if err != nil || entry == nil {
		t.Fatalf("the history entry of b's update: %v, %v", entry, err)
	}
	p, ok, err := entry.EmitParams("acme")
	if err != nil || !ok {
		t.Fatalf("the watcher's event for b's update: %v, %v", ok, err)
	}
	if res, err := b.eng.Emit(b.ctx, p); err != nil || !res.Replayed {
		t.Errorf("a watcher's emit of b's update = %+v, %v: want a replay of the runner's event", res, err)
	}
	if n := len(rc.find("update_succeeded", "b")); n != 1 {
		t.Errorf("b's update announced %d times, want once", n)
	}
	got := rc.find("deployment_succeeded", "b")[0].Payload
	if got["operation"] != "update" || got["status"] != "succeeded" || got["version"] != float64(1) ||
		!strings.HasSuffix(str(got["deploymentUrl"]), "/acme/chain/b/deployments/1") {
		t.Errorf("deployment_succeeded payload = %v", got)
	}
	// b's update carries the chain: a second hop back to b would be a cycle.
	ds, _ := b.st.DeploymentList(b.ctx, store.DeploymentListParams{Stack: bb})
	if len(ds) != 1 || len(ds[0].Cause) != 1 || ds[0].Cause[0] != "acme/chain/b" {
		t.Errorf("deployments of b = %+v", ds)
	}
	out, _ := json.Marshal(api.FromDeployment(d))
	for what, s := range map[string]string{"events": rc.all(), "server log": b.logs.String(), "API": string(out)} {
		if strings.Contains(s, testSecret) {
			t.Errorf("the secret environment variable leaked into the %s", what)
		}
	}
}

func execCommand(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd
}
