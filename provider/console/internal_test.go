package console

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "webhooks.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, err := engine.New(engine.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(context.Context, string) (*store.Token, error) { return nil, store.ErrNotFound }
	if _, err := New(Config{Engine: e, Authenticate: auth, AuthenticateID: auth}); err != nil {
		t.Fatalf("a complete config: %v", err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Engine = nil }, "Config.Engine is required"},
		{func(c *Config) { c.Authenticate = nil }, "Config.Authenticate is required"},
		{func(c *Config) { c.AuthenticateID = nil }, "Config.AuthenticateID is required: give server.Server.AuthenticateTokenID"},
		{func(c *Config) { c.SessionTTL = -time.Second }, "SessionTTL is -1s"},
		{func(c *Config) { c.SessionsPerToken = -1 }, "SessionsPerToken is -1"},
		{func(c *Config) { c.MaxFormBytes = -1 }, "MaxFormBytes is -1"},
	} {
		c := Config{Engine: e, Authenticate: auth, AuthenticateID: auth}
		tc.edit(&c)
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
	c := Config{Engine: e, Authenticate: auth, AuthenticateID: auth}.WithDefaults()
	c.Store = nil
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "Config.Store is required") {
		t.Errorf("no store: %v", err)
	}
}

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/acme": "/acme", "/-/orgs/acme/new-hook?x=1": "/-/orgs/acme/new-hook?x=1",
		"": "", "acme": "", "//evil.example": "", "/\\evil.example": "", "https://evil.example/": "", "/%zz": "",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChart(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 10, 30, 0, 0, time.UTC)
	at := func(ago time.Duration, code int, d time.Duration) *store.Attempt {
		return &store.Attempt{StartedAt: now.Add(-ago), ResponseCode: code, Duration: d}
	}
	c := newChart([]*store.Attempt{
		at(time.Minute, 200, 10*time.Millisecond),
		at(2*time.Minute, 500, 30*time.Millisecond),
		at(3*time.Hour, 204, 100*time.Millisecond),
		at(25*time.Hour, 200, time.Second), // too old
		{StartedAt: now.Add(-time.Minute), Error: "connection refused"},
	}, now)
	if c.OK != 2 || c.Failed != 2 {
		t.Fatalf("OK %d Failed %d, want 2 and 2", c.OK, c.Failed)
	}
	last := c.Buckets[ChartHours-1]
	if last.OK != 1 || last.Failed != 2 || last.AvgMs != 13 {
		t.Errorf("last hour %+v: want 1 ok, 2 failed, 13 ms mean", last)
	}
	if c.MaxMs != 100 || c.MaxCount != 3 {
		t.Errorf("MaxMs %d MaxCount %d", c.MaxMs, c.MaxCount)
	}
	if n := strings.Count(c.Latency, ","); n != 2 {
		t.Errorf("latency line %q: want 2 points", c.Latency)
	}
	empty := newChart(nil, now)
	if empty.OK != 0 || empty.Latency != "" || len(empty.Buckets) != ChartHours {
		t.Errorf("empty chart %+v", empty)
	}
}
