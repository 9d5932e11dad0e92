package watch

import (
	"slices"
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
	// Deliveries of different events travel side by side: compare as sets. The order in
	// which the watcher catches up is checked in provider/watch.
	wantEvents(t, got, "stack_created", "update_succeeded", "update_succeeded", "update_failed")
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
	wantEvents(t, got, "stack_created", "update_succeeded", "update_failed", "destroy_succeeded", "stack_deleted")
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
	if last := got[2]; last.Event != "update_succeeded" || last.Stack() != "watched/prod" {
		t.Fatalf("deliveries:%s\nwant the third to be update_succeeded watched/prod", watchtest.Events(got))
	}
}

// wantEvents checks that the deliveries are exactly the events named, in any order.
func wantEvents(t *testing.T, got []watchtest.Delivery, want ...string) {
	t.Helper()
	var names []string
	for _, d := range got {
		names = append(names, d.Event)
	}
	slices.Sort(names)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("deliveries:%s\nwant exactly %v", watchtest.Events(got), want)
	}
}
