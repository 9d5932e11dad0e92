package main_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
)

// pulumiTimeout bounds one pulumi command.
const pulumiTimeout = 3 * time.Minute

// remoteProgram is the YAML program of the end-to-end test: a stack hook and an organization
// hook of organization acme, both signed with the secret from the stack's configuration, both
// delivering to a loopback receiver. extra is appended to the resources.
func remoteProgram(extra string) string {
	return `name: remote-e2e
runtime: yaml
description: Webhooks managed through a pulumi-webhooks server (remote mode).

config:
  receiverUrl:
    type: string
  displayName:
    type: string
  hookSecret:
    type: string
    secret: true

resources:
  stackHook:
    type: pulumiservice:Webhook
    properties:
      organizationName: acme
      projectName: web
      stackName: prod
      displayName: ${displayName}
      payloadUrl: ${receiverUrl}
      active: true
      secret: ${hookSecret}
      filters:
        - update_succeeded
        - update_failed
  orgHook:
    type: pulumiservice:Webhook
    properties:
      organizationName: acme
      displayName: Organization events
      payloadUrl: ${receiverUrl}
      active: true
      secret: ${hookSecret}
      filters:
        - stack_created
` + extra + `
outputs:
  stackHookId: ${stackHook.id}
  orgHookId: ${orgHook.id}
`
}

// foreignHook is a webhook of an organization the access token does not belong to.
const foreignHook = `  foreignHook:
    type: pulumiservice:Webhook
    properties:
      organizationName: globex
      displayName: Not ours
      payloadUrl: ${receiverUrl}
      active: true
`

// remoteBundle is the world of the end-to-end test: the built binaries, a running server, a
// receiver, and a private Pulumi home, file backend and project.
type remoteBundle struct {
	t       *testing.T
	toolBin string
	binDir  string
	home    string
	env     []string
	project string
	store   string
	// defaultStore is where the provider's embedded store would go; remote mode must never
	// create it.
	defaultStore string
	srv          *serverProc
	token        string
	rcv          *servertest.Receiver
}

// setupRemote builds the binaries, finds the toolchain, starts the server and writes the
// project.
func setupRemote(t *testing.T) *remoteBundle {
	t.Helper()
	dir := t.TempDir()
	b := &remoteBundle{
		t:            t,
		binDir:       filepath.Join(dir, "bin"),
		home:         filepath.Join(dir, "home"),
		project:      filepath.Join(dir, "project"),
		store:        filepath.Join(dir, "server", "webhooks.db"),
		defaultStore: filepath.Join(dir, "embedded", "webhooks.db"),
	}
	for _, d := range []string{b.binDir, b.home, b.project, filepath.Join(dir, "state"), filepath.Join(dir, "pulumi-home")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The toolchain script (cached after its first run) and the plugin build run side by side.
	var wg sync.WaitGroup
	var toolErr, pluginErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		b.toolBin, toolErr = toolchainBin(t.Context())
	}()
	go func() {
		defer wg.Done()
		pluginErr = buildBinaries(t.Context(), b.binDir)
	}()
	wg.Wait()
	if err := errors.Join(toolErr, pluginErr); err != nil {
		t.Fatal(err)
	}

	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PULUMI_") || strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "HOME=") ||
			strings.HasPrefix(kv, "XDG_") {
			continue
		}
		env = append(env, kv)
	}
	b.env = append(env,
		// The plugin is found on PATH, next to the server binary, as after `make build`.
		"PATH="+b.binDir+string(os.PathListSeparator)+b.toolBin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+b.home,
		"XDG_DATA_HOME="+filepath.Join(b.home, "data"),
		"PULUMI_HOME="+filepath.Join(dir, "pulumi-home"),
		"PULUMI_BACKEND_URL=file://"+filepath.Join(dir, "state"),
		"PULUMI_CONFIG_PASSPHRASE=remote-e2e-passphrase",
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
		"PULUMI_SKIP_CONFIRMATIONS=true",
		// Were the provider to fall back to its embedded store, it would land here.
		"PULUMI_WEBHOOKS_STORE="+b.defaultStore,
		"NO_COLOR=1",
	)

	b.token = strings.TrimSpace(b.webhooks(0, "token", "create", "--org", "acme", "--store", b.store))
	b.srv = startServer(t, b.store)
	b.rcv = servertest.NewReceiver(t)
	b.writeProgram("")
	return b
}

// toolchainBin runs provider/scripts/toolchain.sh, which builds the pinned pulumi CLI and YAML
// language host once into a cache, and returns the directory it prints.
func toolchainBin(ctx context.Context) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "provider", "scripts", "toolchain.sh"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("provider/scripts/toolchain.sh: %w\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	for _, bin := range []string{"pulumi", "pulumi-language-yaml"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("provider/scripts/toolchain.sh printed %q, which holds no %s: %w", dir, bin, err)
		}
	}
	return dir, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// buildBinaries puts both binaries into dir as `make build` puts them into bin/: the server
// binary TestMain built, and a fresh build of the provider plugin.
func buildBinaries(ctx context.Context, dir string) error {
	src, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "pulumi-webhooks"), src, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "pulumi-resource-pulumiservice"), "../pulumi-resource-pulumiservice")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build the provider plugin: %w\n%s", err, out)
	}
	return nil
}

func (b *remoteBundle) writeProgram(extra string) {
	b.t.Helper()
	if err := os.WriteFile(filepath.Join(b.project, "Pulumi.yaml"), []byte(remoteProgram(extra)), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// run runs a command of binDir or toolBin in the project with the test's environment and
// returns its combined output and exit code.
func (b *remoteBundle) run(name string, args ...string) (string, int) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.t.Context(), pulumiTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = b.project, b.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	case err != nil:
		b.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), 0
}

// pulumi runs the pulumi CLI and returns its output; it fails the test unless the command
// succeeds, or with fail, unless it fails.
func (b *remoteBundle) pulumi(fail bool, args ...string) string {
	b.t.Helper()
	out, code := b.run(filepath.Join(b.toolBin, "pulumi"), append(args, "--non-interactive")...)
	if (code != 0) != fail {
		b.t.Fatalf("pulumi %s: exit %d, want it to %s\n%s", strings.Join(args, " "), code, map[bool]string{true: "fail", false: "succeed"}[fail], out)
	}
	b.assertNoSecrets(out)
	return out
}

// webhooks runs the pulumi-webhooks CLI of binDir and fails the test unless it exits with want.
func (b *remoteBundle) webhooks(want int, args ...string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.t.Context(), pulumiTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(b.binDir, "pulumi-webhooks"), args...)
	cmd.Env = cleanEnv(b.t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		b.t.Fatalf("pulumi-webhooks %s: %v", strings.Join(args, " "), err)
	}
	if code != want {
		b.t.Fatalf("pulumi-webhooks %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String()
}

const remoteHookSecret = "remote-e2e-signing-secret-3c81"

// assertNoSecrets fails when the access token or the webhook secret appears in out.
func (b *remoteBundle) assertNoSecrets(out string) {
	b.t.Helper()
	if b.token != "" && strings.Contains(out, b.token) {
		b.t.Errorf("the access token appears in pulumi's output")
	}
	if strings.Contains(out, remoteHookSecret) {
		b.t.Errorf("the webhook secret appears in pulumi's output")
	}
}

// assertStateHidesToken fails when a file of the Pulumi backend holds the access token in
// plain text: as a secret it must be encrypted in the state as in the configuration.
func (b *remoteBundle) assertStateHidesToken(dir string) {
	b.t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(b.token)) || bytes.Contains(data, []byte(remoteHookSecret)) {
			b.t.Errorf("%s holds the access token or the webhook secret in plain text", path)
		}
		return nil
	})
	if err != nil || files == 0 {
		b.t.Errorf("read the backend's files in %s: %d files, %v", dir, files, err)
	}
}

// assertNoGoInternals fails when out shows a stack trace, a panic or Go type names.
func assertNoGoInternals(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic:", ".go:", "APIError", "FieldErrors", "*client.", "api.Error", "%!"} {
		if strings.Contains(out, bad) {
			t.Errorf("pulumi's output shows Go internals (%q):\n%s", bad, out)
		}
	}
}

// serverHooks lists organization acme's webhooks of every scope through the CLI, by ID.
func (b *remoteBundle) serverHooks() map[string]map[string]any {
	b.t.Helper()
	var hooks []map[string]any
	if err := json.Unmarshal([]byte(b.webhooks(0, "hooks", "list", "--store", b.store, "--org", "acme", "--json")), &hooks); err != nil {
		b.t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, h := range hooks {
		out[h["id"].(string)] = h
	}
	return out
}

func (b *remoteBundle) outputs() map[string]string {
	b.t.Helper()
	var out map[string]string
	if err := json.Unmarshal([]byte(b.pulumi(false, "stack", "output", "--json")), &out); err != nil {
		b.t.Fatal(err)
	}
	return out
}

// TestRemoteProviderEndToEnd runs the real pulumi CLI with the provider plugin in remote mode
// against the built server binary: `pulumi up` creates webhooks through the REST API, events
// emitted with the CLI arrive signed at a loopback receiver, server-side refusals reach the
// user with the server's message, and `pulumi destroy` removes the webhooks.
func TestRemoteProviderEndToEnd(t *testing.T) {
	t.Parallel()
	b := setupRemote(t)

	b.pulumi(false, "stack", "init", "dev")
	b.pulumi(false, "config", "set", "pulumiservice:apiUrl", "http://"+b.srv.addr)
	b.pulumi(false, "config", "set", "--secret", "pulumiservice:accessToken", b.token)
	b.pulumi(false, "config", "set", "receiverUrl", b.rcv.URL())
	b.pulumi(false, "config", "set", "displayName", "Stack hook v1")
	b.pulumi(false, "config", "set", "--secret", "hookSecret", remoteHookSecret)
	if cfg, err := os.ReadFile(filepath.Join(b.project, "Pulumi.dev.yaml")); err != nil || strings.Contains(string(cfg), b.token) {
		t.Fatalf("the access token is not stored as a secret in the stack configuration (%v)", err)
	}

	// A preview plans both webhooks and sends nothing to the server.
	out := b.pulumi(false, "preview")
	for _, name := range []string{"stackHook", "orgHook"} {
		if !strings.Contains(out, "+  pulumiservice:index:Webhook "+name+" create") {
			t.Errorf("preview does not plan to create %s:\n%s", name, out)
		}
	}
	if got := b.serverHooks(); len(got) != 0 {
		t.Fatalf("preview created %d webhooks on the server", len(got))
	}

	// Up creates both webhooks on the server.
	b.pulumi(false, "up", "--yes")
	ids := b.outputs()
	hooks := b.serverHooks()
	if len(hooks) != 2 {
		t.Fatalf("the server holds %d webhooks after up, want 2: %v", len(hooks), hooks)
	}
	digest := sha256.Sum256([]byte(remoteHookSecret)) // the digest must be keyed, never this
	for _, key := range []string{"stackHookId", "orgHookId"} {
		h, ok := hooks[ids[key]]
		if !ok {
			t.Fatalf("output %s = %q names no webhook on the server; it holds %v", key, ids[key], slices.Collect(maps.Keys(hooks)))
		}
		if h["hasSecret"] != true || h["secretCiphertext"] == hex.EncodeToString(digest[:]) || len(h["secretCiphertext"].(string)) != 64 || h["payloadUrl"] != b.rcv.URL() {
			t.Errorf("%s as stored: %v", key, h)
		}
	}
	if !strings.HasPrefix(ids["stackHookId"], "acme/web/prod/") || hooks[ids["stackHookId"]]["displayName"] != "Stack hook v1" {
		t.Errorf("stack hook %s: %v", ids["stackHookId"], hooks[ids["stackHookId"]])
	}
	if _, err := os.Stat(b.defaultStore); !os.IsNotExist(err) {
		t.Errorf("the provider created an embedded store at %s in remote mode (stat: %v)", b.defaultStore, err)
	}
	// Nothing changed: the next preview is empty.
	b.pulumi(false, "preview", "--expect-no-changes")

	// Events emitted with the CLI reach the receiver, signed with the secret from the program.
	b.webhooks(0, "emit", "--store", b.store, "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "prod")
	b.webhooks(0, "emit", "--store", b.store, "--org", "acme", "--filter", "stack_created", "--project", "web", "--stack", "next")
	reqs := b.rcv.Wait(t, 2)
	if len(reqs) != 2 {
		t.Errorf("the receiver got %d deliveries, want 2 (one per event)", len(reqs))
	}
	var kinds []string
	for _, r := range reqs {
		mac := hmac.New(sha256.New, []byte(remoteHookSecret))
		mac.Write(r.Body)
		want := hex.EncodeToString(mac.Sum(nil))
		if got := r.Header.Get(signature.HeaderSignature); !hmac.Equal([]byte(got), []byte(want)) {
			t.Errorf("%s = %q, want HMAC-SHA256 of the body with the program's secret", signature.HeaderSignature, got)
		}
		kinds = append(kinds, r.Header.Get(signature.HeaderKind))
		var payload map[string]any
		if err := json.Unmarshal(r.Body, &payload); err != nil {
			t.Errorf("delivery body is not JSON: %v", err)
		}
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"stack", "stack_update"}) {
		t.Errorf("delivered kinds %v, want one stack_update (stack hook) and one stack (organization hook)", kinds)
	}

	// A webhook in an organization the token does not belong to: the server refuses it, and
	// pulumi shows the server's message, the property to fix, and no Go internals.
	b.writeProgram(foreignHook)
	out = b.pulumi(true, "up", "--yes", "--skip-preview")
	for _, want := range []string{
		"cannot create webhook in globex",
		`organization "globex" not found`, // the server's message
		"accessToken must belong to the webhook's organizationName",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("pulumi up output lacks %q:\n%s", want, out)
		}
	}
	assertNoGoInternals(t, out)
	if got := b.serverHooks(); len(got) != 2 {
		t.Errorf("after the refused create the server holds %d webhooks, want the 2 it had", len(got))
	}
	b.writeProgram("")

	// An update of a webhook deleted on the server behind Pulumi's back: the server's 404
	// reaches the user with the way out.
	stackRef := strings.SplitN(ids["stackHookId"], "/", 4)
	b.srv.call(b.token, http.MethodDelete, "/api/stacks/acme/web/prod/hooks/"+stackRef[3], nil, http.StatusNoContent, nil)
	b.pulumi(false, "config", "set", "displayName", "Stack hook v2")
	out = b.pulumi(true, "up", "--yes", "--skip-preview")
	for _, want := range []string{
		"cannot update webhook " + ids["stackHookId"],
		`webhook "` + ids["stackHookId"] + `" not found`, // the server's message
		"pulumi refresh",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("pulumi up output lacks %q:\n%s", want, out)
		}
	}
	assertNoGoInternals(t, out)

	// Destroy removes what is left; the webhook already gone counts as deleted.
	b.pulumi(false, "destroy", "--yes", "--skip-preview")
	if got := b.serverHooks(); len(got) != 0 {
		t.Errorf("after destroy the server still holds %v", got)
	}
	if _, err := os.Stat(b.defaultStore); !os.IsNotExist(err) {
		t.Errorf("the provider created an embedded store at %s in remote mode (stat: %v)", b.defaultStore, err)
	}
	b.assertStateHidesToken(filepath.Join(filepath.Dir(b.project), "state"))
	if code := b.srv.terminate(); code != 0 {
		t.Errorf("server exit code %d after SIGTERM", code)
	}
}
