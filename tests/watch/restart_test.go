package watch

import (
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch/watchtest"
)

// A watcher stopped while pulumi runs catches up when it starts again, oldest first, and
// emits nothing twice.
func TestWatcherCatchesUpAfterRestart(t *testing.T) {
	t.Parallel()
	url := fileBackend(t)
	path := storePath(t)
	srv := watchtest.NewServer(t, path, testLogger(t))
	rc := watchtest.NewReceiver(t)
	srv.Subscribe(t, rc)
	p := newProject(t, url)

	w := startWatcher(t, srv, url, testLogger(t))
	p.pulumi(true, "stack", "init", "dev")
	p.pulumi(true, "up", "--yes", "--skip-preview")
	rc.WaitFor(t, 2, eventLimit)
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}

	// While nobody watches: a succeeded and a failed update.
	p.pulumi(true, "up", "--yes", "--skip-preview")
	p.pulumi(false, "up", "--yes", "--skip-preview", "--config", "index=5")

	// A new process: a new engine on the same store, a new watcher.
	srv2 := watchtest.NewServer(t, path, testLogger(t))
	startWatcher(t, srv2, url, testLogger(t))
	got := rc.WaitFor(t, 4, eventLimit)
	rc.Quiet(t, 4, quietFor)
	want := []string{"stack_created", "update_succeeded", "update_succeeded", "update_failed"}
	for i, d := range got {
		if d.Event != want[i] {
			t.Fatalf("deliveries:%s\nwant %v in this order", watchtest.Events(got), want)
		}
	}
}

// Two servers sharing a store, each watching the same backend: every event once.
func TestTwoWatchersOneBackend(t *testing.T) {
	t.Parallel()
	url := fileBackend(t)
	path := storePath(t)
	a := watchtest.NewServer(t, path, testLogger(t))
	b := watchtest.NewServer(t, path, testLogger(t))
	rc := watchtest.NewReceiver(t)
	a.Subscribe(t, rc)
	p := newProject(t, url)
	startWatcher(t, a, url, testLogger(t))
	startWatcher(t, b, url, testLogger(t))

	p.pulumi(true, "stack", "init", "dev")
	p.pulumi(true, "up", "--yes", "--skip-preview")
	p.pulumi(false, "up", "--yes", "--skip-preview", "--config", "index=5")
	p.pulumi(true, "destroy", "--yes", "--skip-preview")
	p.pulumi(true, "stack", "rm", "dev", "--yes")
	got := rc.WaitFor(t, 5, eventLimit)
	rc.Quiet(t, 5, quietFor)
	want := []string{"stack_created", "update_succeeded", "update_failed", "destroy_succeeded", "stack_deleted"}
	for i, d := range got {
		if d.Event != want[i] {
			t.Fatalf("deliveries:%s\nwant %v in this order", watchtest.Events(got), want)
		}
	}
}

// A rename moves the stack and its history: no stack_deleted, no stack_created, no update
// emitted again; the next update fires under the new name.
func TestRenameFiresNoStackEvents(t *testing.T) {
	t.Parallel()
	url := fileBackend(t)
	srv := watchtest.NewServer(t, storePath(t), testLogger(t))
	rc := watchtest.NewReceiver(t)
	srv.Subscribe(t, rc)
	p := newProject(t, url)
	startWatcher(t, srv, url, testLogger(t))

	p.pulumi(true, "stack", "init", "dev")
	p.pulumi(true, "up", "--yes", "--skip-preview")
	rc.WaitFor(t, 2, eventLimit)
	p.pulumi(true, "stack", "rename", "prod")
	p.pulumi(true, "up", "--yes", "--skip-preview")
	got := rc.WaitFor(t, 3, eventLimit)
	rc.Quiet(t, 3, quietFor)
	if got[2].Event != "update_succeeded" || got[2].Stack() != "watched/prod" {
		t.Fatalf("deliveries:%s\nwant the third to be update_succeeded watched/prod", watchtest.Events(got))
	}
}
