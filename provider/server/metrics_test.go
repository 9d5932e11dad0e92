package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

func scrape(t *testing.T, m *server.Metrics) (int, string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsQueueGauges(t *testing.T) {
	t.Parallel()
	m := server.NewMetrics()
	// Before WatchQueue there are no queue gauges, and the scrape works.
	code, body := scrape(t, m)
	if code != 200 || strings.Contains(body, "pulumi_webhooks_queue_depth") {
		t.Errorf("before WatchQueue: %d\n%s", code, grep(body, "queue"))
	}
	m.WatchQueue(func(context.Context) (store.QueueStats, error) {
		return store.QueueStats{Pending: 7, Running: 2, OldestDue: time.Now().Add(-90 * time.Second), HooksDisabled: 3}, nil
	})
	m.AttemptFinished("retry", 250*time.Millisecond)
	m.HookDisabled("endpoint answered 410")
	_, body = scrape(t, m)
	for _, want := range []string{
		`pulumi_webhooks_queue_depth{state="pending"} 7`, `pulumi_webhooks_queue_depth{state="running"} 2`,
		`pulumi_webhooks_disabled_hooks 3`, `pulumi_webhooks_delivery_attempts_total{outcome="retry"} 1`,
		`pulumi_webhooks_delivery_attempt_duration_seconds_bucket{outcome="retry",le="0.25"} 1`,
		`pulumi_webhooks_hooks_disabled_total 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(body, "pulumi_webhooks_oldest_due_delivery_age_seconds 9") {
		t.Errorf("oldest due age: %s", grep(body, "oldest_due"))
	}
	// A failing store drops the queue gauges and reports the error, but the rest is served.
	m.WatchQueue(func(context.Context) (store.QueueStats, error) { return store.QueueStats{}, errors.New("disk on fire") })
	code, body = scrape(t, m)
	if code != 200 || strings.Contains(body, "pulumi_webhooks_queue_depth{") || !strings.Contains(body, "pulumi_webhooks_hooks_disabled_total 1") {
		t.Errorf("with a failing store: %d\n%s", code, grep(body, "pulumi_webhooks"))
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	if _, err := server.New(server.Config{}); err == nil || !strings.Contains(err.Error(), "Engine is required") {
		t.Errorf("New without an engine: %v", err)
	}
	b := setup(t)
	if _, err := server.New(server.Config{Engine: b.Engine, MaxBodyBytes: -1}); err == nil || !strings.Contains(err.Error(), "MaxBodyBytes") {
		t.Errorf("New with a negative body limit: %v", err)
	}
	if _, _, err := server.IssueToken(t.Context(), b.Store, server.IssueTokenParams{}); err == nil || !strings.Contains(err.Error(), "organizationName") {
		t.Errorf("IssueToken without an org: %v", err)
	}
}

// Methods and paths a client invents never become label values: 500 random methods and 500
// random paths add no series beyond "other" and "unmatched".
func TestMetricsLabelsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	count := func() int {
		m := string(b.do("", "GET", "/metrics", nil).want(http.StatusOK).Body)
		n := 0
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, "pulumi_webhooks_http_request") {
				n++
			}
		}
		return n
	}
	for _, path := range []string{"/healthz", "/api/orgs/acme/hooks", "/nowhere"} {
		b.do("acme", "FROB", path, nil)
		b.do("acme", "GET", path, nil)
	}
	count() // the scrape itself is a series from the second scrape on
	before := count()
	for i := range 500 {
		b.do("acme", fmt.Sprintf("M%dX", i), "/api/orgs/acme/hooks", nil)
		b.do("acme", fmt.Sprintf("Q%d", i), fmt.Sprintf("/random/%d", i), nil)
		b.do("acme", "GET", fmt.Sprintf("/api/orgs/acme/hooks/h%d/x/y/%d", i, i), nil)
	}
	after := count()
	if after != before {
		m := string(b.do("", "GET", "/metrics", nil).Body)
		t.Errorf("series grew from %d to %d lines:\n%s", before, after, grep(m, "pulumi_webhooks_http_requests_total"))
	}
	m := string(b.do("", "GET", "/metrics", nil).Body)
	for _, want := range []string{`method="other",route="/api/orgs/{org}/hooks"`, `method="other",route="unmatched"`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grep(m, "http_requests_total"))
		}
	}
}
