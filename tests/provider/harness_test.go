package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

const (
	// commandTimeout bounds one pulumi command or program run.
	commandTimeout = 5 * time.Minute
	// passphrase encrypts the test stacks' secrets.
	passphrase = "clitest-passphrase"
	// org is the organization of every stack on a file backend (pulumi.organization).
	org = "organization"
)

// pluginMode says how the engine finds the provider plugin.
type pluginMode int

const (
	// pluginOnPath puts the plugin's directory on PATH (an "ambient" plugin).
	pluginOnPath pluginMode = iota
	// pluginInstalled installs it into the test's PULUMI_HOME with `pulumi plugin install --file`.
	pluginInstalled
)

// testBundle is one test's private Pulumi world: its PULUMI_HOME, file backend, project
// directory and SQLite store.
type testBundle struct {
	t     *testing.T
	dir   string
	home  string
	state string
	// storePath is the store the test inspects; envStore is what PULUMI_WEBHOOKS_STORE names.
	// They are the same unless the test configures pulumiservice:storePath.
	storePath string
	envStore  string
	mode      pluginMode
}

func setup(t *testing.T, mode pluginMode) *testBundle {
	t.Helper()
	dir := t.TempDir()
	b := &testBundle{
		t:         t,
		dir:       dir,
		home:      filepath.Join(dir, "pulumi-home"),
		state:     filepath.Join(dir, "state"),
		storePath: filepath.Join(dir, "store", "webhooks.db"),
		mode:      mode,
	}
	b.envStore = b.storePath
	for _, d := range []string{b.home, b.state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if mode == pluginInstalled {
		b.pulumi(dir, "plugin", "install", "resource", "pulumiservice", "0.1.0", "--file", suite.plugin)
	}
	return b
}

// environ is the environment of every process the test starts: offline, passphrase secrets,
// a private PULUMI_HOME, and nothing inherited from the caller's Pulumi settings.
func (b *testBundle) environ() []string {
	pe := pulumitest.PulumiEnv{ToolBin: suite.toolBin, Home: b.home, State: b.state, Passphrase: passphrase, Store: b.envStore}
	if b.mode == pluginOnPath {
		pe.Path = []string{suite.pluginDir}
	}
	return pe.Environ()
}

// cmdResult is what a finished command printed.
type cmdResult struct {
	stdout, stderr string
	err            error
}

// exec runs a command in dir with the test's environment.
func (b *testBundle) exec(dir, name string, args ...string) cmdResult {
	b.t.Helper()
	return b.execEnv(dir, nil, name, args...)
}

// execEnv is exec with extra environment variables.
func (b *testBundle) execEnv(dir string, extraEnv []string, name string, args ...string) cmdResult {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.t.Context(), commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(b.environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return cmdResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// pulumi runs the pulumi CLI in dir and fails the test when it fails.
func (b *testBundle) pulumi(dir string, args ...string) string {
	b.t.Helper()
	r := b.pulumiResult(dir, args...)
	if r.err != nil {
		b.t.Fatalf("pulumi %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

func (b *testBundle) pulumiResult(dir string, args ...string) cmdResult {
	b.t.Helper()
	return b.exec(dir, filepath.Join(suite.toolBin, "pulumi"), append(args, "--non-interactive")...)
}

// previewResult is the part of `pulumi preview --json` the tests read.
type previewResult struct {
	Steps []struct {
		Op             string   `json:"op"`
		URN            string   `json:"urn"`
		DiffReasons    []string `json:"diffReasons"`
		ReplaceReasons []string `json:"replaceReasons"`
	} `json:"steps"`
	ChangeSummary map[string]int `json:"changeSummary"`
}

// preview runs `pulumi preview --json` and returns the steps.
func (b *testBundle) preview(dir string, args ...string) previewResult {
	b.t.Helper()
	out := b.pulumi(dir, append([]string{"preview", "--json"}, args...)...)
	var p previewResult
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		b.t.Fatalf("decode preview --json: %v\n%s", err, out)
	}
	return p
}

// ops returns the operations the preview plans for the resource named name, in order.
func (p previewResult) ops(name string) []string {
	var ops []string
	for _, s := range p.Steps {
		if strings.HasSuffix(s.URN, "::"+name) {
			ops = append(ops, s.Op)
		}
	}
	return ops
}

// reasons returns the diff and replace reasons of the resource named name's steps.
func (p previewResult) reasons(name string) (diff, replace []string) {
	for _, s := range p.Steps {
		if strings.HasSuffix(s.URN, "::"+name) {
			diff = append(diff, s.DiffReasons...)
			replace = append(replace, s.ReplaceReasons...)
		}
	}
	return diff, replace
}

// assertNoChanges fails unless every step of the preview is "same".
func assertNoChanges(t *testing.T, p previewResult) {
	t.Helper()
	for _, s := range p.Steps {
		if s.Op != "same" {
			t.Errorf("expected no changes, but %s plans %q (diff %v, replace %v)", s.URN, s.Op, s.DiffReasons, s.ReplaceReasons)
		}
	}
	if len(p.Steps) == 0 {
		t.Errorf("the preview has no steps at all")
	}
}

// stateResource is a resource of `pulumi stack export`.
type stateResource struct {
	URN     string         `json:"urn"`
	Type    string         `json:"type"`
	ID      string         `json:"id"`
	Inputs  map[string]any `json:"inputs"`
	Outputs map[string]any `json:"outputs"`
}

// stateResources returns the stack's resources by name, secrets decrypted.
func (b *testBundle) stateResources(dir string) map[string]stateResource {
	b.t.Helper()
	out := b.pulumi(dir, "stack", "export", "--show-secrets")
	var dep struct {
		Deployment struct {
			Resources []stateResource `json:"resources"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(out), &dep); err != nil {
		b.t.Fatalf("decode stack export: %v", err)
	}
	m := map[string]stateResource{}
	for _, r := range dep.Deployment.Resources {
		m[r.URN[strings.LastIndex(r.URN, "::")+2:]] = r
	}
	return m
}

// outputs returns the stack outputs.
func (b *testBundle) outputs(dir string) map[string]any {
	b.t.Helper()
	out := b.pulumi(dir, "stack", "output", "--json")
	m := map[string]any{}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		b.t.Fatalf("decode stack output: %v\n%s", err, out)
	}
	return m
}

// withStore opens the test's SQLite store, runs fn and closes it again, so that no pulumi
// command ever runs while the test holds the store.
func (b *testBundle) withStore(fn func(ctx context.Context, s *sqlite.Store)) {
	b.t.Helper()
	ctx := b.t.Context()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: b.storePath})
	if err != nil {
		b.t.Fatalf("open the store: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			b.t.Errorf("close the store: %v", err)
		}
	}()
	fn(ctx, s)
}

// hooks lists every hook in the store, or none when the store was never created.
func (b *testBundle) hooks() []*store.Hook {
	b.t.Helper()
	if _, err := os.Stat(b.storePath); os.IsNotExist(err) {
		return nil
	}
	var hs []*store.Hook
	b.withStore(func(ctx context.Context, s *sqlite.Store) {
		var err error
		hs, err = s.HookList(ctx, store.HookListParams{})
		if err != nil {
			b.t.Fatalf("list hooks: %v", err)
		}
	})
	return hs
}

// hookByID finds the hook whose resource ID is id ({org}/{name}, {org}/{project}/{stack}/{name}
// or {org}/environment/{project}/{env}/{name}).
func hookByID(t *testing.T, hs []*store.Hook, id string) *store.Hook {
	t.Helper()
	for _, h := range hs {
		if hookID(h) == id {
			return h
		}
	}
	var ids []string
	for _, h := range hs {
		ids = append(ids, hookID(h))
	}
	t.Fatalf("no hook with ID %q in the store; it holds %v", id, ids)
	return nil
}

// hookID is the resource ID of a stored hook, in the provider's documented formats.
func hookID(h *store.Hook) string {
	switch h.Scope.Kind() {
	case webhook.ScopeStack:
		return h.Org + "/" + h.Project + "/" + h.Stack + "/" + h.Name
	case webhook.ScopeEnvironment:
		return h.Org + "/environment/" + h.Project + "/" + h.Environment + "/" + h.Name
	default:
		return h.Org + "/" + h.Name
	}
}

// hasSecret reports whether hook h holds secret. The store keeps a keyed digest that only it
// can compute, so the test asks the store.
func (b *testBundle) hasSecret(h *store.Hook, secret string) bool {
	b.t.Helper()
	var got string
	b.withStore(func(ctx context.Context, s *sqlite.Store) {
		var err error
		if got, err = s.HookSecretGet(ctx, h.ID); err != nil {
			b.t.Fatalf("read the secret of hook %s: %v", h.Ref(), err)
		}
	})
	return got == secret
}

// assertSecretHidden fails when any of the texts contains the secret.
func assertSecretHidden(t *testing.T, secret string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("a webhook secret appears in command output")
			return
		}
	}
}

// copyDir copies the regular files of src into dst (created), recursively, leaving out build
// output and installed dependencies.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := pulumitest.CopyTree(src, dst); err != nil {
		t.Fatal(err)
	}
}

// wantExampleHooks checks the three hooks of the examples/ programs, as stored, against the
// stack outputs orgHookId, stackHookId and slackHookId.
func (b *testBundle) wantExampleHooks(t *testing.T, hs []*store.Hook, outputs map[string]any, project, stack, secret string) {
	t.Helper()
	if len(hs) != 3 {
		t.Fatalf("the store holds %d hooks, want the example's 3", len(hs))
	}
	id := func(key string) string {
		s, ok := outputs[key].(string)
		if !ok || s == "" {
			t.Fatalf("stack output %s = %v, want the hook's ID", key, outputs[key])
		}
		return s
	}
	orgHook := hookByID(t, hs, id("orgHookId"))
	if orgHook.Scope != (webhook.Scope{Org: org}) || orgHook.DisplayName != "Organization events" ||
		!orgHook.Active || orgHook.Format != webhook.FormatRaw ||
		!slices.Equal(orgHook.Filters, []webhook.Filter{"stack_created", "stack_deleted", "update_failed", "deployment_failed"}) ||
		len(orgHook.Groups) != 0 || !b.hasSecret(orgHook, secret) {
		t.Errorf("orgHook as stored: %+v", *orgHook)
	}
	stackHook := hookByID(t, hs, id("stackHookId"))
	if stackHook.Scope != (webhook.Scope{Org: org, Project: project, Stack: stack}) ||
		stackHook.DisplayName != "Updates and deployments of this stack" || !stackHook.Active ||
		!slices.Equal(stackHook.Groups, []webhook.Group{"stacks", "deployments"}) || len(stackHook.Filters) != 0 ||
		!b.hasSecret(stackHook, secret) {
		t.Errorf("stackHook as stored: %+v", *stackHook)
	}
	slackHook := hookByID(t, hs, id("slackHookId"))
	if slackHook.Scope != (webhook.Scope{Org: org}) || slackHook.Format != webhook.FormatSlack ||
		slackHook.PayloadURL != exampleSlackURL || slackHook.HasSecret ||
		!slices.Equal(slackHook.Filters, []webhook.Filter{"update_failed", "destroy_failed"}) {
		t.Errorf("slackHook as stored: %+v", *slackHook)
	}
	for _, h := range []*store.Hook{orgHook, stackHook} {
		if h.PayloadURL != exampleReceiverURL {
			t.Errorf("%s payloadUrl = %q, want %q", h.Name, h.PayloadURL, exampleReceiverURL)
		}
	}
}

// The configuration every examples/ program is run with. The URLs are never called: the
// provider only stores hooks, and no event is emitted during these tests.
const (
	exampleReceiverURL = "https://receiver.example.com/pulumi"
	exampleSlackURL    = "https://hooks.slack.example.com/services/T0/B0/X"
	exampleSecret      = "example-signing-secret-4f1d"
)
