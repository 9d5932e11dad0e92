package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeWatchBadBackends(t *testing.T) {
	t.Parallel()
	b := setup(t)
	state := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--watch", "file:///no/such/state"}, "file:///no/such/state"},
		{[]string{"--watch", "ftp://127.0.0.1/x"}, `unknown scheme "ftp"`},
		{[]string{"--watch", "postgres://pulumi:hunter2@127.0.0.1:1/state?sslmode=disable&connect_timeout=2"}, "postgres://pulumi:xxxxx@127.0.0.1:1/state"},
		{[]string{"--watch", "file://" + state, "--watch-interval", "0s"}, "--watch-interval"},
		{[]string{"--watch", "file://" + state, "--watch-org", "a b"}, "org"},
	} {
		r := b.fails([]string{c.want, "--watch"}, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		if strings.Contains(r.stderr, "hunter2") {
			t.Errorf("serve %v: stderr shows the password: %s", c.args, r.stderr)
		}
	}
	// PULUMI_WEBHOOKS_WATCH takes several URLs, comma-separated; each is checked.
	b.env["PULUMI_WEBHOOKS_WATCH"] = "file://" + state + ",file:///no/such/other"
	b.fails([]string{"file:///no/such/other"}, "serve", "--listen", "127.0.0.1:0")
}

func TestServeWatchReportsInReadyzAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	state := t.TempDir()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int)
	go func() {
		code := Main(ctx, Opts{Version: "t", Stdout: io.Discard, Stderr: pw, Getenv: func(k string) string { return b.env[k] }},
			[]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--watch", "file://" + state, "--watch-interval", "100ms"})
		pw.Close()
		done <- code
	}()
	addr := ""
	dec := json.NewDecoder(pr)
	for addr == "" {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("serve log: %v", err)
		}
		if line["msg"] == "listening" {
			addr, _ = line["addr"].(string)
		}
	}
	go io.Copy(io.Discard, pr)
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(get("/readyz"), `"state":"watching"`) {
		if time.Now().After(deadline) {
			t.Fatalf("readyz never shows the watcher watching: %s", get("/readyz"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body := get("/readyz"); !strings.Contains(body, `"backend":"file://`+filepath.ToSlash(state)) {
		t.Errorf("readyz does not name the backend: %s", body)
	}
	// The deployment runner (one worker by default) shows its state beside the watchers.
	if body := get("/readyz"); !strings.Contains(body, `"deploymentRunner":{"workers":1,"running":0,"succeeded":0,"failed":0}`) {
		t.Errorf("readyz does not show the deployment runner: %s", body)
	}
	m := get("/metrics")
	for _, want := range []string{"pulumi_webhooks_watch_lag_seconds{backend=", "pulumi_webhooks_watch_up{backend=", "pulumi_webhooks_watch_events_total"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}
