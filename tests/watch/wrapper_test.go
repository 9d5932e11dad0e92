package watch

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch/watchtest"
)

// wrap runs `pulumi-webhooks pulumi --store STORE -- args` in the project and returns its
// output and exit code.
func (p *project) wrap(store string, args ...string) (string, int) {
	p.t.Helper()
	out, err := p.run(suite.cli, append([]string{"pulumi", "--store", store, "--pulumi-bin", suite.toolBin + "/pulumi", "--"}, args...)...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	}
	p.t.Fatalf("run the wrapper: %v", err)
	return "", 0
}

// The wrapper fires previews, which no backend records, and the same update events as the
// watcher: with both running, each event arrives once. pulumi's output and exit code pass
// through.
func TestWrapperPreviewsAndDedupesWithWatcher(t *testing.T) {
	t.Parallel()
	url := fileBackend(t)
	path := storePath(t)
	srv := watchtest.NewServer(t, path, testLogger(t))
	rc := watchtest.NewReceiver(t)
	srv.Subscribe(t, rc)
	p := newProject(t, url)
	startWatcher(t, srv, url, testLogger(t))

	if out, code := p.wrap(path, "stack", "init", "dev", "--non-interactive"); code != 0 {
		t.Fatalf("stack init through the wrapper: exit %d\n%s", code, out)
	}
	rc.WaitFor(t, 1, eventLimit)
	out, code := p.wrap(path, "preview", "--non-interactive")
	if code != 0 || !strings.Contains(out, "Previewing update") {
		t.Fatalf("preview: exit %d, output lacks pulumi's:\n%s", code, out)
	}
	got := rc.WaitFor(t, 2, eventLimit)
	if got[1].Event != "preview_succeeded" || got[1].Stack() != "watched/dev" {
		t.Fatalf("deliveries:%s", watchtest.Events(got))
	}
	if changes, _ := got[1].Payload["resourceChanges"].(map[string]any); changes["create"] != float64(1) {
		t.Errorf("preview resourceChanges %v, want create 1", got[1].Payload["resourceChanges"])
	}
	if user, _ := got[1].Payload["user"].(map[string]any); user["name"] != author {
		t.Errorf("preview user %v, want %s", got[1].Payload["user"], author)
	}
	if got[1].Payload["isPreview"] != true {
		t.Errorf("preview payload isPreview %v", got[1].Payload["isPreview"])
	}

	// A failing preview: pulumi's non-zero exit code comes back unchanged.
	out, code = p.wrap(path, "preview", "--non-interactive", "--config", "index=5")
	if code == 0 {
		t.Fatalf("failing preview exited 0:\n%s", out)
	}
	got = rc.WaitFor(t, 3, eventLimit)
	if got[2].Event != "preview_failed" {
		t.Fatalf("deliveries:%s", watchtest.Events(got))
	}

	// An update: the watcher and the wrapper both emit it, with one key. (--config values
	// stay in the stack's settings: set index back.)
	if out, code := p.wrap(path, "up", "--yes", "--skip-preview", "--non-interactive", "--config", "index=0"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, out)
	}
	got = rc.WaitFor(t, 4, eventLimit)
	rc.Quiet(t, 4, quietFor)
	if got[3].Event != "update_succeeded" {
		t.Fatalf("deliveries:%s", watchtest.Events(got))
	}
}

// Without a watcher, the wrapper alone fires the update events.
func TestWrapperAloneFiresUpdates(t *testing.T) {
	t.Parallel()
	url := s3Backend(t)
	path := storePath(t)
	srv := watchtest.NewServer(t, path, testLogger(t))
	rc := watchtest.NewReceiver(t)
	srv.Subscribe(t, rc)
	p := newProject(t, url)
	p.pulumi(true, "stack", "init", "dev")
	if out, code := p.wrap(path, "up", "--yes", "--skip-preview", "--non-interactive"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, out)
	}
	if out, code := p.wrap(path, "up", "--yes", "--skip-preview", "--non-interactive", "--config", "index=5"); code == 0 {
		t.Fatalf("failing up exited 0\n%s", out)
	}
	if out, code := p.wrap(path, "destroy", "--yes", "--skip-preview", "--non-interactive"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, out)
	}
	got := rc.WaitFor(t, 3, eventLimit)
	rc.Quiet(t, 3, quietFor)
	wantEvents(t, got, "update_succeeded", "update_failed", "destroy_succeeded")
	for _, d := range got {
		if user, _ := d.Payload["user"].(map[string]any); user["name"] != author {
			t.Errorf("%s: user %v, want %s", d.Event, d.Payload["user"], author)
		}
	}
}
