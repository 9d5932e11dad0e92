package watch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch/watchtest"
)

const waitLimit = 60 * time.Second

func init() {
	// The in-process S3 server takes any key; nothing may look for credentials elsewhere
	// (no instance metadata service: only 127.0.0.1 is contacted).
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "watch-test", "AWS_SECRET_ACCESS_KEY": "watch-test-secret", "AWS_REGION": "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
}

// syncBuffer collects logs from several goroutines.
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

// fakeState writes a DIY backend's files as Pulumi does.
type fakeState struct {
	t   *testing.T
	dir string
}

func newFakeState(t *testing.T) *fakeState {
	s := &fakeState{t: t, dir: t.TempDir()}
	s.write(".pulumi/meta.yaml", []byte("version: 1\n"))
	return s
}

func (s *fakeState) write(key string, b []byte) {
	s.t.Helper()
	p := filepath.Join(s.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *fakeState) url() string { return "file://" + s.dir }

// entry writes a history entry of web/dev stamped n, and its checkpoint copy.
func (s *fakeState) entry(n int64, result string, compress func([]byte) []byte) {
	body := []byte(fmt.Sprintf(`{"kind":"update","startTime":1,"endTime":2,"message":"m","environment":{"git.author":"Ada"},"result":%q,"resourceChanges":{"create":1}}`, result))
	ext := ".json"
	if compress != nil {
		body, ext = compress(body), ".json.gz"
	}
	s.write(fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history%s", n, ext), body)
	s.write(fmt.Sprintf(".pulumi/history/web/dev/dev-%d.checkpoint%s", n, ext), []byte(`{"version":3,"checkpoint":{}}`))
}

type bundle struct {
	srv  *watchtest.Server
	rc   *watchtest.Receiver
	logs *syncBuffer
	log  *slog.Logger
}

func setup(t *testing.T) *bundle {
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := &bundle{srv: watchtest.NewServer(t, filepath.Join(t.TempDir(), "webhooks.db"), nil), rc: watchtest.NewReceiver(t), logs: logs, log: log}
	b.srv.Subscribe(t, b.rc)
	return b
}

func (b *bundle) start(t *testing.T, url string, mods ...func(*Config)) *Watcher {
	t.Helper()
	cfg := Config{URL: url, Emitter: b.srv.Engine, Cursors: b.srv.Store, Interval: 50 * time.Millisecond, Logger: b.log, Settle: 10 * time.Millisecond}
	for _, m := range mods {
		m(&cfg)
	}
	w, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	waitFor(t, func() bool { return w.Status().State == StateWatching }, "watching")
	return w
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenErrorsNameTheURLWithoutCredentials(t *testing.T) {
	t.Parallel()
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	badMeta := t.TempDir()
	os.MkdirAll(filepath.Join(badMeta, ".pulumi"), 0o755)
	os.WriteFile(filepath.Join(badMeta, ".pulumi", "meta.yaml"), []byte("version: 7\n"), 0o644)
	for _, tc := range []struct {
		url  string
		want []string
	}{
		{"file:///no/such/state/dir", []string{"file:///no/such/state/dir", "cannot be read"}},
		{"file://" + notDir, []string{"is not a directory"}},
		{"file://" + badMeta, []string{"layout version 7"}},
		{"ftp://user:hunter2@127.0.0.1/state", []string{`unknown scheme "ftp"`, "file, ", "s3", "postgres", "ftp://user:xxxxx@127.0.0.1/state"}},
		{"not a url", []string{"not a URL"}},
		{"postgres://pulumi:hunter2@127.0.0.1:1/state?sslmode=disable&connect_timeout=2", []string{"postgres://pulumi:xxxxx@127.0.0.1:1/state"}},
		{"s3://bucket?endpoint=http://127.0.0.1:1&region=us-east-1&session_token=hunter2", []string{"s3://bucket", "session_token=xxxxx"}},
	} {
		_, err := OpenBackendForTest(t, tc.url)
		if err == nil {
			t.Errorf("%s: opened", tc.url)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.url, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error shows the password: %q", tc.url, err)
		}
	}
}

// OpenBackendForTest opens a backend and its meta file as Open does.
func OpenBackendForTest(t *testing.T, url string) (*Backend, error) {
	b, err := OpenBackend(t.Context(), url)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { b.Close() })
	return b, b.readMeta(t.Context())
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := Open(t.Context(), Config{Org: "a b"})
	for _, w := range []string{"url: is required", "emitter: is required", "cursors: is required", "org:"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
}

func TestMaskURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"file:///var/state":                         "file:///var/state",
		"postgres://u:pw@h:5432/db?sslmode=require": "postgres://u:xxxxx@h:5432/db?sslmode=require",
		"s3://b?region=x&secret_access_key=s":       "s3://b?region=x&secret_access_key=xxxxx",
		"azblob://c?sas_token=abc":                  "azblob://c?sas_token=xxxxx",
		"gs://bucket/sub":                           "gs://bucket/sub",
	} {
		if got := MaskURL(in); got != want {
			t.Errorf("MaskURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWatcherReadsGzipSkipsBakAndCorruptEntries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := newFakeState(t)
	b.start(t, s.url())
	s.write(".pulumi/stacks/web/dev.json", []byte(`{"version":3,"checkpoint":{}}`))
	b.rc.WaitFor(t, 1, waitLimit)
	base := time.Now().UnixNano()
	s.entry(base, "succeeded", func(p []byte) []byte { return gz(t, p) })
	s.write(fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history.json", base+1), []byte("{corrupt"))
	s.write(fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history.json.bak", base+2), []byte(`{"kind":"update","result":"succeeded"}`))
	s.write(".pulumi/stacks/web/dev.json.bak", []byte(`{}`))
	s.entry(base+3, "failed", nil)
	got := b.rc.WaitFor(t, 3, waitLimit)
	b.rc.Quiet(t, 3, 500*time.Millisecond)
	// Delivery order between events is not promised: the two updates may arrive either way.
	updates := []string{got[1].Event, got[2].Event}
	slices.Sort(updates)
	if got[0].Event != "stack_created" || !slices.Equal(updates, []string{"update_failed", "update_succeeded"}) {
		t.Fatalf("deliveries:%s", watchtest.Events(got))
	}
	if !strings.Contains(b.logs.String(), "skipping a history entry that cannot be decoded") {
		t.Errorf("the corrupt entry was not reported:\n%s", b.logs.String())
	}
}

func TestWatcherBaselinesAnExistingBackend(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := newFakeState(t)
	s.write(".pulumi/stacks/web/dev.json", []byte(`{}`))
	old := time.Now().Add(-time.Hour).UnixNano()
	s.entry(old, "succeeded", nil)
	s.entry(old+1, "failed", nil)
	b.start(t, s.url())
	s.entry(time.Now().UnixNano(), "succeeded", nil)
	got := b.rc.WaitFor(t, 1, waitLimit)
	b.rc.Quiet(t, 1, 500*time.Millisecond)
	if got[0].Event != "update_succeeded" {
		t.Fatalf("deliveries:%s", watchtest.Events(got))
	}
}

// The window listing finds an entry stamped late (a writer's clock behind the watcher's,
// within the skew) and one stamped in the future (ahead), once each.
func TestWatcherToleratesClockSkew(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := newFakeState(t)
	s.write(".pulumi/stacks/web/dev.json", []byte(`{}`))
	b.start(t, s.url(), func(c *Config) { c.NoNotify = true })
	now := time.Now()
	s.entry(now.Add(-time.Minute).UnixNano(), "succeeded", nil)
	s.entry(now.Add(time.Minute).UnixNano(), "failed", nil)
	b.rc.WaitFor(t, 2, waitLimit)
	b.rc.Quiet(t, 2, 300*time.Millisecond)
}

// A backend that fails after start is a warning with backoff and a failing state, without
// credentials; it recovers by itself and nothing is lost.
func TestWatcherFailsAndRecovers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mem := s3mem.New()
	var down atomic.Bool
	fake := gofakes3.New(mem).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	if err := mem.CreateBucket("state"); err != nil {
		t.Fatal(err)
	}
	url := "s3://state?endpoint=" + srv.URL + "&region=us-east-1&use_path_style=true"
	w := b.start(t, url, func(c *Config) { c.BackoffMax = 200 * time.Millisecond })
	down.Store(true)
	waitFor(t, func() bool { return w.Status().State == StateFailing }, "failing")
	st := w.Status()
	if st.Error == "" || strings.Contains(st.Error, "watch-test-secret") || strings.Contains(b.logs.String(), "watch-test-secret") {
		t.Errorf("status %+v / logs show the token or no error", st)
	}
	if !strings.Contains(b.logs.String(), "backend poll failed; retrying") {
		t.Errorf("no warning logged:\n%s", b.logs.String())
	}
	put := func(key string, body []byte) {
		if _, err := mem.PutObject("state", key, map[string]string{}, bytes.NewReader(body), int64(len(body)), nil); err != nil {
			t.Fatal(err)
		}
	}
	put(".pulumi/meta.yaml", []byte("version: 1\n"))
	put(".pulumi/stacks/web/dev.json", []byte(`{}`))
	down.Store(false)
	waitFor(t, func() bool { return w.Status().State == StateWatching }, "watching again")
	b.rc.WaitFor(t, 1, waitLimit)
}

// An entry whose environment names no git user gets the user who held the stack's lock
// during the run, when the watcher saw the lock.
func TestWatcherUserFromLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := newFakeState(t)
	s.write(".pulumi/stacks/web/dev.json", []byte(`{}`))
	w := b.start(t, s.url())
	now := time.Now()
	s.write(".pulumi/locks/organization/web/dev/0b7d.json",
		[]byte(fmt.Sprintf(`{"pid":1,"username":"grace","hostname":"h","timestamp":%q}`, now.Format(time.RFC3339Nano))))
	written := time.Now()
	waitFor(t, func() bool { return w.Status().LastPoll.After(written) }, "a poll that sees the lock")
	body := fmt.Sprintf(`{"kind":"update","startTime":%d,"endTime":%d,"environment":{"exec.kind":"cli"},"result":"succeeded"}`, now.Unix(), now.Unix()+1)
	os.Remove(filepath.Join(s.dir, ".pulumi/locks/organization/web/dev/0b7d.json"))
	s.write(fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history.json", now.UnixNano()), []byte(body))
	got := b.rc.WaitFor(t, 1, waitLimit)
	if user, _ := got[0].Payload["user"].(map[string]any); user["name"] != "grace" {
		t.Errorf("user %v, want grace from the lock", got[0].Payload["user"])
	}
}

// recordingEmitter passes events to the engine and remembers their order.
type recordingEmitter struct {
	Emitter
	mu   sync.Mutex
	keys []string
}

func (r *recordingEmitter) Emit(ctx context.Context, p engine.EmitParams) (*engine.EmitResult, error) {
	r.mu.Lock()
	r.keys = append(r.keys, p.IdempotencyKey)
	r.mu.Unlock()
	return r.Emitter.Emit(ctx, p)
}

func (r *recordingEmitter) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys)
}

// After downtime the watcher catches up oldest entry first, across stacks, whatever order the
// files were written in.
func TestWatcherCatchesUpOldestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := newFakeState(t)
	s.write(".pulumi/stacks/web/dev.json", []byte(`{}`))
	s.write(".pulumi/stacks/web/prod.json", []byte(`{}`))
	first := b.start(t, s.url())
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UnixNano()
	entry := func(stack string, n int64) string {
		key := fmt.Sprintf(".pulumi/history/web/%s/%s-%d.history.json", stack, stack, n)
		s.write(key, []byte(`{"kind":"update","startTime":1,"endTime":2,"environment":{"git.author":"Ada"},"result":"succeeded"}`))
		return IdempotencyKey(key)
	}
	k3 := entry("dev", base+3)
	k1 := entry("prod", base+1)
	k2 := entry("dev", base+2)
	rec := &recordingEmitter{Emitter: b.srv.Engine}
	b.start(t, s.url(), func(c *Config) { c.Emitter = rec })
	b.rc.WaitFor(t, 3, waitLimit)
	if got := rec.seen(); !slices.Equal(got, []string{k1, k2, k3}) {
		t.Errorf("emitted %v, want oldest first %v", got, []string{k1, k2, k3})
	}
}

// A checkpoint deleted by hand leaves its history: after VanishedMax the stack counts as
// removed, and new stacks are not held back meanwhile for longer than that.
func TestWatcherCheckpointDeletedByHand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := newFakeState(t)
	b.start(t, s.url(), func(c *Config) { c.VanishedMax = 300 * time.Millisecond })
	s.write(".pulumi/stacks/web/dev.json", []byte(`{}`))
	s.entry(time.Now().UnixNano(), "succeeded", nil)
	b.rc.WaitFor(t, 2, waitLimit)
	if err := os.Remove(filepath.Join(s.dir, ".pulumi", "stacks", "web", "dev.json")); err != nil {
		t.Fatal(err)
	}
	s.write(".pulumi/stacks/web/prod.json", []byte(`{}`))
	got := b.rc.WaitFor(t, 4, waitLimit)
	b.rc.Quiet(t, 4, 300*time.Millisecond)
	var tail []string
	for _, d := range got[2:] {
		tail = append(tail, d.Event+" "+d.Stack())
	}
	slices.Sort(tail)
	if !slices.Equal(tail, []string{"stack_created web/prod", "stack_deleted web/dev"}) {
		t.Errorf("deliveries:%s", watchtest.Events(got))
	}
}
