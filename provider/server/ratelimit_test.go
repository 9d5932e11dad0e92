package server_test

import (
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Each token has its own bucket: past the burst the answer is 429 with Retry-After, other
// tokens go on, refused requests cost nothing, and the bucket refills with time.
func TestRateLimitPerToken(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := setup(t, func(o *servertest.Opts) {
		o.Server = func(c *server.Config) { c.RateLimit, c.RateBurst, c.Now = 2, 3, clock.Now }
	})
	list := "/api/orgs/acme/hooks"
	for range 3 {
		b.do("acme", "GET", list, nil).want(http.StatusOK)
	}
	for range 5 {
		r := b.do("acme", "GET", list, nil).want(http.StatusTooManyRequests)
		if got := r.Header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After %q, want 1 (one request every half second)", got)
		}
		mustContain(t, "429 message", r.apiError().Message, "2 per second", "3 at once", "retry after 1 seconds")
	}
	// Any endpoint, any method, counts against the same token.
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod"}).want(http.StatusTooManyRequests)
	// Another token is not affected; anonymous requests are refused as before.
	b.do("globex", "GET", "/api/orgs/globex/hooks", nil).want(http.StatusOK)
	b.do("", "GET", list, nil, withToken("")).want(http.StatusUnauthorized)
	// Half a second later one request may go: the refused ones did not use the bucket up.
	clock.Add(500 * time.Millisecond)
	b.do("acme", "GET", list, nil).want(http.StatusOK)
	b.do("acme", "GET", list, nil).want(http.StatusTooManyRequests)
	// After the bucket's refill time it holds the whole burst again.
	clock.Add(2 * time.Second)
	for range 3 {
		b.do("acme", "GET", list, nil).want(http.StatusOK)
	}
	// Probes and metrics are never limited.
	for range 10 {
		b.do("", "GET", "/healthz", nil).want(http.StatusOK)
		b.do("", "GET", "/metrics", nil).want(http.StatusOK)
	}
	if m := string(b.do("", "GET", "/metrics", nil).Body); !strings.Contains(m, `code="429"`) {
		t.Errorf("no 429 in the request metrics")
	}
}

func TestRateLimitConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range []server.Config{
		{Engine: b.Engine, RateLimit: -1},
		{Engine: b.Engine, RateLimit: rate.Limit(math.NaN())},
		{Engine: b.Engine, RateBurst: -1},
		{Engine: b.Engine, RateLimitersMax: -1},
	} {
		if _, err := server.New(c); err == nil || !strings.Contains(err.Error(), "Rate") {
			t.Errorf("New(%+v) = %v, want an error naming the field", c, err)
		}
	}
	if c := (server.Config{}).WithDefaults(); c.RateLimit != server.RateLimitDefault || c.RateBurst != server.RateBurstDefault {
		t.Errorf("defaults: %g, %d", float64(c.RateLimit), c.RateBurst)
	}
}
