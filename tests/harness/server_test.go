package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

// The server's settings for the harness: loopback deliveries allowed, a short retry schedule
// (the flaky receiver's case finishes in seconds), a short attempt timeout (so a lease left by
// a killed server expires in 2*2s+15s), and prompt pick-up of events the CLI stores. The
// deployment runner is off: the harness checks that pulumi_deployments hooks queue deployments
// (its targets have no settings to run with); provider/deploy tests the runner.
var serverFlags = []string{
	"--allow-target", "127.0.0.1/32",
	"--deployment-workers", "0",
	"--retry-schedule", "500ms,1s,1s,2s,2s,2s",
	"--attempt-timeout", "2s",
	"--poll-interval", "100ms",
	"--shutdown-timeout", "10s",
	"--log-format", "json",
	"--log-level", "info",
}

// serverStartTimeout bounds a start until /readyz answers 200.
const serverStartTimeout = 30 * time.Second

// serverProc is one running `pulumi-webhooks serve`.
type serverProc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// startServer starts the server on store, listening on addr (127.0.0.1:0 for any port), with
// its logs appended to logPath, and waits until it is ready.
func startServer(ctx context.Context, store, addr, logPath string) (*serverProc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--store", store, "--listen", addr}, serverFlags...)
	cmd := exec.Command(suite.server, args...)
	cmd.Env = append(cleanEnv(), "PULUMI_WEBHOOKS_STORE="+store)
	cmd.Stdout = logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", suite.server, err)
	}
	p := &serverProc{cmd: cmd, done: make(chan error, 1)}
	listening := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		// Copy the logs to the file, and report the address of the "listening" line.
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logFile.Write(line)
			logFile.Write([]byte{'\n'})
			var entry struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &entry) == nil && entry.Msg == "listening" && entry.Addr != "" {
				select {
				case listening <- entry.Addr:
				default:
				}
			}
		}
		io.Copy(logFile, stderr)
	}()
	go func() {
		<-copied
		p.done <- cmd.Wait()
		logFile.Close()
	}()
	ctx, cancel := context.WithTimeout(ctx, serverStartTimeout)
	defer cancel()
	select {
	case p.addr = <-listening:
	case err := <-p.done:
		return nil, fmt.Errorf("the server exited while starting (%v); its log is %s", err, logPath)
	case <-ctx.Done():
		p.kill()
		return nil, fmt.Errorf("the server did not log its address within %s; its log is %s", serverStartTimeout, logPath)
	}
	for {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			p.kill()
			return nil, fmt.Errorf("the server at %s did not become ready within %s", p.addr, serverStartTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *serverProc) url() string { return "http://" + p.addr }

// kill sends SIGKILL and waits for the process to be gone.
func (p *serverProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and returns the exit status, or an error when the server does not stop
// within its shutdown deadline and a margin (it is killed then).
func (p *serverProc) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		p.kill()
		return errors.New("the server did not stop within 20s of SIGTERM")
	}
}

// cleanEnv is the environment without the caller's Pulumi and pulumi-webhooks settings.
func cleanEnv() []string { return pulumitest.CleanEnv() }

// cliResult is what a finished command printed.
type cliResult struct {
	stdout, stderr string
	err            error
}

// runCLI runs the pulumi-webhooks binary on store.
func runCLI(ctx context.Context, store string, args ...string) cliResult {
	return runCLIEnv(ctx, store, nil, args...)
}

// runCLIEnv runs the pulumi-webhooks binary on store with the extra environment variables env.
func runCLIEnv(ctx context.Context, store string, env []string, args ...string) cliResult {
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.server, args...)
	cmd.Env = append(append(cleanEnv(), "PULUMI_WEBHOOKS_STORE="+store), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("pulumi-webhooks %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// storedHook is a hook as `pulumi-webhooks hooks list --json` prints it.
type storedHook struct {
	ID               string   `json:"id"`
	OrganizationName string   `json:"organizationName"`
	ProjectName      string   `json:"projectName"`
	StackName        string   `json:"stackName"`
	EnvName          string   `json:"envName"`
	Name             string   `json:"name"`
	DisplayName      string   `json:"displayName"`
	PayloadURL       string   `json:"payloadUrl"`
	Active           bool     `json:"active"`
	Format           string   `json:"format"`
	Filters          []string `json:"filters"`
	Groups           []string `json:"groups"`
	HasSecret        bool     `json:"hasSecret"`
	DisabledReason   string   `json:"disabledReason"`
}

func (h storedHook) scope() subject {
	return subject{Org: h.OrganizationName, Project: h.ProjectName, Stack: h.StackName, Env: h.EnvName}
}

// emitResponse is the answer of the events API and of `emit --json`.
type emitResponse struct {
	EventID            string `json:"eventId"`
	Deliveries         int    `json:"deliveries"`
	DeploymentRequests int    `json:"deploymentRequests"`
}

// emitRequest is the body of POST /api/orgs/{org}/events.
type emitRequest struct {
	Filter          string          `json:"filter"`
	ProjectName     string          `json:"projectName"`
	StackName       string          `json:"stackName,omitempty"`
	EnvironmentName string          `json:"environmentName,omitempty"`
	Payload         json.RawMessage `json:"payload,omitempty"`
}

// apiClient calls the server's REST API with one organization's token.
type apiClient struct {
	base  string // the server's URL; a restarted server listens on the same address
	token string
	hc    *http.Client
}

// do sends a JSON request and decodes a JSON answer into out; it returns the status code.
func (c *apiClient) do(ctx context.Context, method, path string, header http.Header, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "token "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s answered %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode %s: %w", method, path, raw, err)
		}
	}
	return resp.StatusCode, nil
}

// emit fires an event through the events API, with an idempotency key when key is set.
func (c *apiClient) emit(ctx context.Context, org string, req emitRequest, key string) (emitResponse, error) {
	var res emitResponse
	h := http.Header{}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	code, err := c.do(ctx, http.MethodPost, "/api/orgs/"+org+"/events", h, req, &res)
	if err == nil && code != http.StatusAccepted {
		err = fmt.Errorf("the events API answered %d, want 202", code)
	}
	return res, err
}

// hookBody is the body of the create-webhook endpoints.
type hookBody struct {
	OrganizationName string   `json:"organizationName"`
	ProjectName      string   `json:"projectName,omitempty"`
	StackName        string   `json:"stackName,omitempty"`
	EnvName          string   `json:"envName,omitempty"`
	DisplayName      string   `json:"displayName"`
	PayloadURL       string   `json:"payloadUrl"`
	Secret           string   `json:"secret,omitempty"`
	Active           bool     `json:"active"`
	Format           string   `json:"format,omitempty"`
	Filters          []string `json:"filters,omitempty"`
	Groups           []string `json:"groups,omitempty"`
}

// scopePath is the API path prefix of a scope's hooks.
func scopePath(s subject) string {
	switch {
	case s.isStack():
		return "/api/stacks/" + s.Org + "/" + s.Project + "/" + s.Stack + "/hooks"
	case s.isEnv():
		return "/api/esc/environments/" + s.Org + "/" + s.Project + "/" + s.Env + "/hooks"
	}
	return "/api/orgs/" + s.Org + "/hooks"
}

// createHook creates a hook through the REST API and returns it as the API answers.
func (c *apiClient) createHook(ctx context.Context, s subject, b hookBody) (storedHook, error) {
	var out storedHook
	code, err := c.do(ctx, http.MethodPost, scopePath(s), nil, b, &out)
	if err == nil && code != http.StatusCreated {
		err = fmt.Errorf("creating a hook answered %d, want 201", code)
	}
	return out, err
}

// deleteHook deletes a hook through the REST API.
func (c *apiClient) deleteHook(ctx context.Context, s subject, name string) error {
	code, err := c.do(ctx, http.MethodDelete, scopePath(s)+"/"+name, nil, nil, nil)
	if err == nil && code != http.StatusNoContent {
		err = fmt.Errorf("deleting a hook answered %d, want 204", code)
	}
	return err
}

// resourceID is the provider's resource ID of a hook of scope s named name.
func resourceID(s subject, name string) string {
	switch {
	case s.isStack():
		return s.Org + "/" + s.Project + "/" + s.Stack + "/" + name
	case s.isEnv():
		return s.Org + "/environment/" + s.Project + "/" + s.Env + "/" + name
	}
	return s.Org + "/" + name
}

// logPathIn names the server's log in dir.
func logPathIn(dir string) string { return filepath.Join(dir, "server.log") }
