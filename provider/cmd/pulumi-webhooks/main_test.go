package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
)

// testVersion is linked into the test binary with -ldflags -X versionVar, as the Makefile
// does, which proves that the variable exists (the linker ignores a wrong path silently).
const (
	testVersion = "9.9.9-e2e"
	versionVar  = "github.com/pulumi-webhooks/pulumi-webhooks/provider/cli.Version"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pulumi-webhooks-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pulumi-webhooks")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(gobin, "build", "-ldflags", "-X "+versionVar+"="+testVersion, "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build pulumi-webhooks:", err)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.CloseShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cleanEnv is the environment without any PULUMI_WEBHOOKS_ variable of the caller's.
func cleanEnv(t testing.TB) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PULUMI_WEBHOOKS_") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
}

// cli runs one command to completion and returns its standard output; it fails t unless the
// exit code is want.
func cli(t *testing.T, want int, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	if code != want {
		t.Fatalf("pulumi-webhooks %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String()
}

// serverProc is a running `pulumi-webhooks serve`.
type serverProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	code   int

	mu   sync.Mutex
	logs []map[string]any
}

func startServer(t *testing.T, store string, args ...string) *serverProc {
	t.Helper()
	return startServerEnv(t, cleanEnv(t), store, args...)
}

// startServerEnv starts `serve` on store with the environment env.
func startServerEnv(t testing.TB, env []string, store string, args ...string) *serverProc {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--store", store, "--log-format", "json",
		"--allow-target", "127.0.0.1/32", "--poll-interval", "50ms"}, args...)
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{t: t, cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				line = map[string]any{"msg": "unparsed: " + sc.Text()}
			}
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			if line["msg"] == "listening" {
				addr <- line["addr"].(string)
			}
		}
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			p.dumpLogs()
		}
	})
	select {
	case p.addr = <-addr:
	case <-p.exited:
		t.Fatalf("serve exited with %d before listening", p.code)
	case <-time.After(waitfor.Limit):
		t.Fatalf("serve did not start listening within %s", waitfor.Limit)
	}
	return p
}

func (p *serverProc) dumpLogs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.logs {
		b, _ := json.Marshal(l)
		p.t.Log(string(b))
	}
}

func (p *serverProc) logged(msg string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.logs {
		if l["msg"] == msg {
			return true
		}
	}
	return false
}

// terminate sends SIGTERM and returns the exit code, failing t after waitfor.Limit.
func (p *serverProc) terminate() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	return p.wait()
}

// wait returns the exit code once the process has exited, failing t after waitfor.Limit.
func (p *serverProc) wait() int {
	p.t.Helper()
	waitfor.Receive(p.t, "serve to exit after SIGTERM", p.exited)
	return p.code
}

// call sends one API request and decodes a JSON answer into out.
func (p *serverProc) call(token, method, path string, body any, want int, out any) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+p.addr+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		p.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

func TestVersionFromLdflags(t *testing.T) {
	t.Parallel()
	if out := cli(t, 0, "version"); !strings.Contains(out, "pulumi-webhooks "+testVersion) {
		t.Errorf("version printed %q, want %s: the -X %s path is wrong", out, testVersion, versionVar)
	}
	cli(t, 1, "no-such-command")
}

// TestEndToEnd: a token from the CLI, a hook created through the API of the running binary,
// events emitted by separate CLI processes into the shared store, signed deliveries at a
// loopback receiver, and the delivery log through the CLI.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "webhooks.db")
	token := strings.TrimSpace(cli(t, 0, "token", "create", "--org", "acme", "--store", store))
	srv := startServer(t, store)
	rcv := servertest.NewReceiver(t)

	const secret = "e2e-secret"
	var h api.WebhookResponse
	srv.call(token, "POST", "/api/stacks/acme/web/prod/hooks", map[string]any{
		"organizationName": "acme", "projectName": "web", "stackName": "prod", "name": "h",
		"displayName": "e2e", "payloadUrl": rcv.URL(), "active": true, "secret": secret,
	}, http.StatusCreated, &h)
	if !h.HasSecret {
		t.Fatalf("created %+v", h)
	}

	var res api.EmitResponse
	if err := json.Unmarshal([]byte(cli(t, 0, "emit", "--store", store, "--org", "acme", "--filter", "update_succeeded",
		"--project", "web", "--stack", "prod", "--json")), &res); err != nil || res.Deliveries != 1 {
		t.Fatalf("emit: %+v, %v", res, err)
	}
	cli(t, 0, "emit", "--store", store, "--org", "acme", "--filter", "preview_failed", "--project", "web", "--stack", "prod")
	reqs := rcv.Wait(t, 2)
	for _, r := range reqs {
		if err := signature.Verify(secret, r.Header.Get(signature.HeaderSignature), r.Body); err != nil {
			t.Errorf("Pulumi-Webhook-Signature: %v", err)
		}
		if err := signature.VerifyStandard(secret, r.Header.Get(signature.HeaderStdID), r.Header.Get(signature.HeaderStdTimestamp),
			r.Header.Get(signature.HeaderStdSignature), r.Body, time.Now(), 0); err != nil {
			t.Errorf("Standard Webhooks signature: %v", err)
		}
		if !strings.Contains(r.Header.Get("User-Agent"), testVersion) {
			t.Errorf("User-Agent %q lacks the version", r.Header.Get("User-Agent"))
		}
	}
	kinds := []string{reqs[0].Header.Get(signature.HeaderKind), reqs[1].Header.Get(signature.HeaderKind)}
	if !(kinds[0] == "stack_update" && kinds[1] == "stack_preview") && !(kinds[1] == "stack_update" && kinds[0] == "stack_preview") {
		t.Errorf("kinds %v", kinds)
	}
	// The signature verifies with the CLI too.
	cmd := exec.Command(binary, "verify", "--secret", secret, "--signature", reqs[0].Header.Get(signature.HeaderSignature))
	cmd.Env, cmd.Stdin = cleanEnv(t), bytes.NewReader(reqs[0].Body)
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "valid" {
		t.Errorf("verify: %s %v", out, err)
	}

	var log []map[string]any
	waitfor.Condition(t, "both attempts in the delivery log", func() bool {
		if err := json.Unmarshal([]byte(cli(t, 0, "deliveries", "list", "acme/web/prod/h", "--store", store, "--json")), &log); err != nil {
			t.Fatal(err)
		}
		return len(log) >= 2
	})
	if len(log) != 2 || log[0]["responseCode"] != float64(200) {
		t.Errorf("deliveries list: %v", log)
	}
	if out := cli(t, 0, "hooks", "list", "--store", store); !strings.Contains(out, "acme/web/prod/h") {
		t.Errorf("hooks list:\n%s", out)
	}
	var metrics string
	if resp, err := http.Get("http://" + srv.addr + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
	}
	if !strings.Contains(metrics, `pulumi_webhooks_delivery_attempts_total{outcome="succeeded"} 2`) {
		t.Errorf("metrics:\n%s", metrics)
	}
	if code := srv.terminate(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

// TestGracefulShutdown: SIGTERM while a slow receiver holds an attempt. The server stops
// accepting connections, the attempt finishes and is recorded, the process exits 0, and the
// deliveries it never started are sent by the next server on the same store.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "webhooks.db")
	token := strings.TrimSpace(cli(t, 0, "token", "create", "--org", "acme", "--store", store))
	srv := startServer(t, store, "--workers", "1", "--per-endpoint-limit", "1", "--shutdown-timeout", "20s")
	rcv := servertest.NewReceiver(t)
	started := rcv.Hold()
	srv.call(token, "POST", "/api/orgs/acme/hooks", map[string]any{
		"organizationName": "acme", "name": "slow", "displayName": "slow", "payloadUrl": rcv.URL(), "active": true,
	}, http.StatusCreated, nil)
	for range 3 {
		srv.call(token, "POST", "/api/orgs/acme/events", map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod"},
			http.StatusAccepted, nil)
	}
	waitfor.Receive(t, "the first delivery to reach the receiver", started)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// It stops accepting connections but keeps running while the attempt is held.
	waitfor.Condition(t, "the server to refuse connections after SIGTERM", func() bool {
		resp, err := http.Get("http://" + srv.addr + "/healthz")
		if err != nil {
			return true
		}
		resp.Body.Close()
		return false
	})
	select {
	case <-srv.exited:
		t.Fatalf("the server exited (code %d) while an attempt was in flight", srv.code)
	case <-time.After(300 * time.Millisecond):
	}
	releasedAt := time.Now()
	rcv.Release()
	if code := srv.wait(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if !srv.logged("stopped") || srv.logged("delivery workers stopped at the shutdown deadline") {
		t.Errorf("the shutdown was not clean")
	}
	first := rcv.Requests()
	if len(first) != 1 || first[0].At.Before(releasedAt) {
		t.Fatalf("before restart the receiver answered %d requests (want exactly the held one)", len(first))
	}

	// The next server delivers the other two, and not the finished one again.
	srv2 := startServer(t, store)
	reqs := rcv.Wait(t, 3)
	ids := map[string]bool{}
	for _, r := range reqs {
		ids[r.Header.Get(signature.HeaderID)] = true
	}
	if len(ids) != 3 {
		t.Errorf("delivery IDs %v, want 3 distinct", ids)
	}
	var log []api.WebhookDelivery
	waitfor.Condition(t, "three attempts in the delivery log", func() bool {
		srv2.call(token, "GET", "/api/orgs/acme/hooks/slow/deliveries", nil, http.StatusOK, &log) // recorded just after the answer
		return len(log) >= 3
	})
	if len(log) != 3 || len(rcv.Requests()) != 3 {
		t.Errorf("delivery log has %d attempts and the receiver %d requests, want 3 each (one per delivery)", len(log), len(rcv.Requests()))
	}
	if code := srv2.terminate(); code != 0 {
		t.Errorf("second server exit code %d", code)
	}
}
