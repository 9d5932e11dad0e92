package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestLogsNeverContainSecrets runs hooks with secrets (and a payload URL carrying a token, as
// Slack and Teams URLs do) through create, update, emit, delivery, retries, 410, SSRF denial,
// ping and redelivery with every log record of the engine and the store captured as JSON, and
// proves neither the secrets nor the token appear, nor do request bodies.
func TestLogsNeverContainSecrets(t *testing.T) {
	t.Parallel()
	const (
		secret    = "sup3r-s3cret-value-9f2c"
		newSecret = "r0tated-s3cret-value-41ab"
		urlToken  = "T0KEN-in-the-path-7d1e"
		bodyMark  = "body-marker-5c3a"
	)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "w.db"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	obs := &recordingObserver{ch: make(chan observed, 64)}
	clock := newFakeClock()
	eng, err := New(Config{
		Store: st, Logger: logger, Now: clock.Now, AllowTargets: loopback, Workers: 2,
		Timeout: 2 * time.Second, RetrySchedule: []time.Duration{time.Minute},
		PollInterval: 10 * time.Millisecond, Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{eng: eng, clock: clock, obs: obs, logs: logs}
	ctx := context.Background()

	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/fail"):
			http.Error(w, "failing "+secret, http.StatusInternalServerError)
		case strings.HasSuffix(r.URL.Path, "/gone"):
			http.Error(w, "gone", http.StatusGone)
		case strings.HasSuffix(r.URL.Path, "/slow"):
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	base := rc.url("/services/" + urlToken)
	closed := newReceiver(t, nil)
	closed.srv.Close() // its port now refuses connections: the error names the URL
	b.createHook(t, hookSpec("refused", closed.url("/services/"+urlToken+"/x?token="+urlToken), func(s *webhook.Spec) { s.Secret = secret }))
	ok := b.createHook(t, hookSpec("ok", base+"/ok?token="+urlToken, func(s *webhook.Spec) { s.Secret = secret }))
	b.createHook(t, hookSpec("fail", base+"/fail", func(s *webhook.Spec) { s.Secret = secret }))
	b.createHook(t, hookSpec("gone", base+"/gone", func(s *webhook.Spec) { s.Secret = secret }))
	b.createHook(t, hookSpec("slow", base+"/slow", func(s *webhook.Spec) { s.Secret = secret }))
	b.createHook(t, hookSpec("slack", base+"/ok", func(s *webhook.Spec) { s.Secret = secret; s.Format = webhook.FormatSlack }))
	// A rejected create with a secret must not echo it either.
	if _, err := eng.HookCreate(ctx, hookSpec("bad", "not a url", func(s *webhook.Spec) { s.Secret = secret })); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("invalid create: %v", err)
	}
	spec := ok.Spec
	if _, err := eng.HookUpdate(ctx, HookUpdateParams{Ref: ok.Ref(), Spec: spec, Secret: ptr(newSecret)}); err != nil {
		t.Fatal(err)
	}
	b.start(t)
	b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject,
		Overrides: json.RawMessage(`{"user": {"name": "` + bodyMark + `", "githubLogin": "x", "avatarUrl": ""}}`)})
	got := map[string]int{}
	for range 6 { // ok, slack: succeeded; fail, slow, refused: retry; gone: failed (+ disabled)
		ev := b.obs.next(t)
		if ev.disabled != "" {
			ev = b.obs.next(t)
		}
		got[ev.outcome]++
	}
	if got[OutcomeSucceeded] != 2 || got[OutcomeRetry] != 3 || got[OutcomeFailed] != 1 {
		t.Fatalf("outcomes = %v", got)
	}
	a, err := eng.Ping(ctx, ok.Ref())
	if err != nil || a.ResponseCode != 200 {
		t.Fatalf("ping: %+v %v", a, err)
	}
	if _, err := eng.Redeliver(ctx, ok.Ref(), a.DeliveryID); err != nil {
		t.Fatal(err)
	}
	// The SSRF guard refusing the address, with an error message built from the URL.
	denied, err := New(Config{Store: st, Logger: logger, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := denied.Ping(ctx, ok.Ref()); err != nil || a.Error == "" {
		t.Fatalf("denied ping: %+v %v", a, err)
	}

	out := logs.String()
	for _, want := range []string{"webhook created", "event emitted", "delivery attempt failed; will retry", "webhook deactivated", "webhook pinged", "delivery redelivered", "delivery succeeded", "127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q: the capture is not seeing the engine", want)
		}
	}
	for name, s := range map[string]string{"secret": secret, "rotated secret": newSecret, "URL token": urlToken, "request body": bodyMark} {
		if strings.Contains(out, s) {
			t.Errorf("the logs contain the %s %q:\n%s", name, s, out)
		}
	}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line %d is not JSON: %s", i, line)
		}
	}
	t.Logf("%d log lines checked", strings.Count(out, "\n"))
	if testing.Verbose() {
		t.Log(out)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRedact(t *testing.T) {
	t.Parallel()
	const u = "https://hooks.example.com/services/T0/B0/SECRETPATH?token=SECRETQ"
	for _, c := range []struct{ msg, want string }{
		{`Post "` + u + `": EOF`, `Post "https://hooks.example.com/…": EOF`},
		{"failed at /services/T0/B0/SECRETPATH?token=SECRETQ", "failed at /…"},
		{"", ""},
		{"no URL here", "no URL here"},
	} {
		if got := redact(c.msg, u); got != c.want {
			t.Errorf("redact(%q) = %q, want %q", c.msg, got, c.want)
		}
	}
	if got := redact(`Post "http://h.example.com/": refused`, "http://h.example.com/"); got != `Post "http://h.example.com/…": refused` {
		t.Errorf("bare URL: %q", got)
	}
}
