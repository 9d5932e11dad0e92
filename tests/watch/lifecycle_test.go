package watch

import (
	"fmt"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch/watchtest"
)

// want is an expected delivery: the event, and checks on its payload.
type want struct {
	event   string
	changes map[string]int
}

// check compares a delivery with w: the event, the stack, the user from git, the counts.
func (w want) check(t *testing.T, d watchtest.Delivery) {
	t.Helper()
	if d.Event != w.event || d.Stack() != "watched/dev" {
		t.Fatalf("delivery %s %s, want %s watched/dev: %v", d.Event, d.Stack(), w.event, d.Payload)
	}
	if d.Kind == "stack" {
		return
	}
	user, _ := d.Payload["user"].(map[string]any)
	if user["name"] != author {
		t.Errorf("%s: user %v, want %s from git", w.event, d.Payload["user"], author)
	}
	if w.changes != nil {
		got, _ := d.Payload["resourceChanges"].(map[string]any)
		if fmt.Sprint(got) != fmt.Sprint(toAny(w.changes)) {
			t.Errorf("%s: resourceChanges %v, want %v", w.event, got, w.changes)
		}
	}
	for _, k := range []string{"startTime", "endTime", "message"} {
		if _, ok := d.Payload[k]; !ok {
			t.Errorf("%s: payload has no %s: %v", w.event, k, d.Payload)
		}
	}
}

func toAny(m map[string]int) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

// lifecycle runs stack init, up, a failing up, refresh, destroy and stack rm against url
// with a watcher, checking after each step that exactly the expected event arrived.
func lifecycle(t *testing.T, url string) {
	srv := watchtest.NewServer(t, storePath(t), testLogger(t))
	rc := watchtest.NewReceiver(t)
	srv.Subscribe(t, rc)
	p := newProject(t, url)
	startWatcher(t, srv, url, testLogger(t))

	steps := []struct {
		name string
		ok   bool
		args []string
		want want
	}{
		{"stack init", true, []string{"stack", "init", "dev"}, want{event: "stack_created"}},
		{"up", true, []string{"up", "--yes", "--skip-preview"}, want{event: "update_succeeded", changes: map[string]int{"create": 1}}},
		{"failing up", false, []string{"up", "--yes", "--skip-preview", "--config", "index=5"}, want{event: "update_failed"}},
		{"refresh", true, []string{"refresh", "--yes", "--skip-preview", "--config", "index=0"}, want{event: "refresh_succeeded"}},
		{"destroy", true, []string{"destroy", "--yes", "--skip-preview"}, want{event: "destroy_succeeded", changes: map[string]int{"delete": 1}}},
		{"stack rm", true, []string{"stack", "rm", "dev", "--yes"}, want{event: "stack_deleted"}},
	}
	for i, s := range steps {
		ended := p.pulumi(s.ok, s.args...)
		got := rc.WaitFor(t, i+1, eventLimit)
		t.Logf("%s: delivered %s after the command ended", s.name, time.Since(ended).Round(time.Millisecond))
		if len(got) != i+1 {
			t.Fatalf("after %s: %d deliveries, want %d:%s", s.name, len(got), i+1, watchtest.Events(got))
		}
		s.want.check(t, got[i])
	}
	rc.Quiet(t, len(steps), quietFor)
}

func TestLifecycleFileBackend(t *testing.T) {
	t.Parallel()
	lifecycle(t, fileBackend(t))
}

func TestLifecycleS3Backend(t *testing.T) {
	t.Parallel()
	lifecycle(t, s3Backend(t))
}
