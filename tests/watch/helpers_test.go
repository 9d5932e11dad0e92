package watch

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch/watchtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

// Waits for conditions: generous, the machine is a loaded 2-core box.
const (
	eventLimit = 90 * time.Second
	quietFor   = 2 * time.Second
)

// Author is the git author of every run, which the payloads must name.
const author = "Ada Lovelace"

// project is a copy of testdata/program in a git repository, run by the real pulumi CLI
// against one backend.
type project struct {
	t   *testing.T
	dir string
	env []string
}

func newProject(t *testing.T, backendURL string) *project {
	t.Helper()
	dir := t.TempDir()
	if err := pulumitest.CopyTree(filepath.Join(suite.root, "tests", "watch", "testdata", "program"), dir); err != nil {
		t.Fatal(err)
	}
	env := pulumitest.PulumiEnv{
		ToolBin: suite.toolBin, Home: t.TempDir(), State: "unused", Passphrase: "watch-test-passphrase",
	}.Environ()
	env = append(env, "PULUMI_BACKEND_URL="+backendURL, "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	p := &project{t: t, dir: dir, env: env}
	p.git("init", "-q", ".")
	p.git("-c", "user.name="+author, "-c", "user.email=ada@example.com", "commit", "-q", "--allow-empty", "-m", "init")
	return p
}

func (p *project) git(args ...string) {
	p.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = p.dir, p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// run runs a command in the project and returns its combined output and exit error.
func (p *project) run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = p.dir, p.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// pulumi runs the real CLI and fails the test unless it exits as wantOK says.
func (p *project) pulumi(wantOK bool, args ...string) time.Time {
	p.t.Helper()
	out, err := p.run(filepath.Join(suite.toolBin, "pulumi"), append(args, "--non-interactive")...)
	if (err == nil) != wantOK {
		p.t.Fatalf("pulumi %s: error %v, want success %v\n%s", strings.Join(args, " "), err, wantOK, out)
	}
	return time.Now()
}

// watcher opens and starts a watcher of url for srv, stopped at cleanup (or by the test).
func startWatcher(t *testing.T, srv *watchtest.Server, url string, log *slog.Logger) *watch.Watcher {
	t.Helper()
	w, err := watch.Open(t.Context(), watch.Config{
		URL: url, Emitter: srv.Engine, Cursors: srv.Store, Interval: 250 * time.Millisecond, Logger: log,
	})
	if err != nil {
		t.Fatalf("open watcher: %v", err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = w.Stop() }) }
	t.Cleanup(stop)
	waitState(t, w, watch.StateWatching)
	return w
}

func waitState(t *testing.T, w *watch.Watcher, state string) {
	t.Helper()
	deadline := time.Now().Add(eventLimit)
	for w.Status().State != state {
		if time.Now().After(deadline) {
			t.Fatalf("watcher state %+v, want %s", w.Status(), state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fileBackend returns a fresh file:// backend.
func fileBackend(t *testing.T) string {
	return "file://" + t.TempDir()
}

// s3Backend serves a bucket on 127.0.0.1 with gofakes3 and returns its URL.
func s3Backend(t *testing.T) string {
	t.Helper()
	mem := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(srv.Close)
	if err := mem.CreateBucket("state"); err != nil {
		t.Fatal(err)
	}
	return "s3://state?endpoint=" + srv.URL + "&region=us-east-1&use_path_style=true"
}

// testLogger writes the watcher's and engine's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func storePath(t *testing.T) string { return filepath.Join(t.TempDir(), "webhooks.db") }

func mustRemove(t *testing.T, p string) {
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
}
