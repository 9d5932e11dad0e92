package resource

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/blang/semver"
	dto "github.com/prometheus/client_model/go"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/integration"
	presource "github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
)

var (
	webhookURN  = presource.NewURN("test", "webhooks", "", "pulumiservice:index:Webhook", "hook")
	providerURN = presource.NewURN("test", "webhooks", "", "pulumi:providers:pulumiservice", "default")
)

func semverVersion(t *testing.T) semver.Version {
	t.Helper()
	v, err := semver.Parse(Version)
	require.NoError(t, err)
	return v
}

// mode is one way the provider reaches its webhooks. The lifecycle tests run once per mode
// (see eachMode) and must see the same behaviour; where the modes differ on purpose, the test
// asserts the difference.
type mode struct {
	name string
	// start gives tb a store of its own, sets tb.outside, and returns the provider
	// configuration that reaches the store.
	start func(t *testing.T, tb *testBundle) property.Map
}

// modes is the mode table: the embedded store (storePath) and a real pulumi-webhooks server
// on loopback over its own SQLite file (apiUrl and accessToken).
var modes = []mode{
	{name: "embedded", start: startEmbedded},
	{name: "remote", start: startRemote},
}

// eachMode runs fn in a parallel subtest per mode.
func eachMode(t *testing.T, fn func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			fn(t, m)
		})
	}
}

// testBundle is an in-process provider configured on a store of its own, plus an engine on the
// same store that plays the part of changes made outside Pulumi.
type testBundle struct {
	mode   mode
	server integration.Server
	// storePath is the embedded store's file (embedded mode).
	storePath string
	// api is the server the provider talks to (remote mode).
	api *servertest.Bundle
	// outside returns the engine for changes made outside Pulumi. In embedded mode it opens
	// the store on first use, after the provider has created it, so tests can check that a
	// preview never creates the file; in remote mode it is the server's own engine.
	outside func() *engine.Engine
}

func setup(t *testing.T, m mode) *testBundle {
	t.Helper()
	tb := &testBundle{mode: m}
	config := m.start(t, tb)
	tb.server = newServer(t, config)
	return tb
}

func startEmbedded(t *testing.T, tb *testBundle) property.Map {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	tb.storePath = path
	var (
		mu sync.Mutex
		e  *engine.Engine
	)
	tb.outside = func() *engine.Engine {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if e == nil {
			st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			e, err = engine.New(engine.Config{Store: st})
			require.NoError(t, err)
		}
		return e
	}
	return property.NewMap(map[string]property.Value{"storePath": property.New(path)})
}

// remoteOrg is the organization the remote mode's access token belongs to; every test hook
// lives in it.
const remoteOrg = "acme"

func startRemote(t *testing.T, tb *testBundle) property.Map {
	t.Helper()
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})
	tb.api = srv
	tb.outside = func() *engine.Engine { return srv.Engine }
	return property.NewMap(map[string]property.Value{
		"apiUrl":      property.New(srv.URL),
		"accessToken": property.New(srv.Tokens[remoteOrg]).WithSecret(true),
	})
}

func (tb *testBundle) remote() bool { return tb.api != nil }

// apiRequests counts the API requests the server has answered (remote mode) with status code,
// or with any status when code is 0. The server counts a request just after answering it.
func (tb *testBundle) apiRequests(t *testing.T, code int) int {
	t.Helper()
	families, err := tb.api.Metrics.Registry().Gather()
	if err != nil {
		t.Errorf("read the server's metrics: %v", err) // not FailNow: callers may poll from another goroutine
		return -1
	}
	n := 0
	for _, f := range families {
		if f.GetName() != server.MetricsNamespace+"_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if code == 0 || slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == "code" && l.GetValue() == strconv.Itoa(code)
			}) {
				n += int(m.GetCounter().GetValue())
			}
		}
	}
	return n
}

// assertUntouched fails when the provider has reached its store: in embedded mode the store's
// file must not even exist, in remote mode the server must not have had a single request.
func (tb *testBundle) assertUntouched(t *testing.T, why string) {
	t.Helper()
	if tb.remote() {
		assert.Zero(t, tb.apiRequests(t, 0), "%s: the server got requests", why)
		return
	}
	_, err := os.Stat(tb.storePath)
	assert.ErrorIs(t, err, os.ErrNotExist, "%s: the embedded store was created", why)
}

// goInternals matches what a user must never see in a diagnostic: stack traces, panics and
// Go type names such as *client.APIError or webhook.FieldErrors.
var goInternals = regexp.MustCompile(`goroutine \d|panic:|\.go:\d|\*?\b[a-z][a-z0-9]*\.[A-Z][A-Za-z0-9]*\b|%!`)

// assertCleanError fails when err shows Go internals instead of a message for people.
func assertCleanError(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.NotRegexp(t, goInternals, err.Error(), "the error shows Go internals")
}

// newServer starts a provider and configures it the way the engine does: CheckConfig, then
// Configure with the checked inputs.
func newServer(t *testing.T, config property.Map) integration.Server {
	t.Helper()
	s, err := integration.NewServer(t.Context(), Name, semverVersion(t), integration.WithProvider(Provider()))
	require.NoError(t, err)
	checked, err := s.CheckConfig(p.CheckRequest{Urn: providerURN, Inputs: config})
	require.NoError(t, err)
	require.Empty(t, checked.Failures)
	require.NoError(t, s.Configure(p.ConfigureRequest{Args: checked.Inputs}))
	return s
}

// check runs Check and requires it to pass.
func (tb *testBundle) check(t *testing.T, inputs map[string]property.Value) property.Map {
	t.Helper()
	resp, err := tb.server.Check(p.CheckRequest{Urn: webhookURN, Inputs: property.NewMap(inputs)})
	require.NoError(t, err)
	require.Empty(t, resp.Failures)
	return resp.Inputs
}

// create checks and creates a webhook, returning its ID and state.
func (tb *testBundle) create(t *testing.T, inputs map[string]property.Value) (string, property.Map, property.Map) {
	t.Helper()
	checked := tb.check(t, inputs)
	resp, err := tb.server.Create(p.CreateRequest{Urn: webhookURN, Properties: checked})
	require.NoError(t, err)
	require.NotEmpty(t, resp.ID)
	return resp.ID, checked, resp.Properties
}

func str(s string) property.Value { return property.New(s) }

func strs(ss ...string) property.Value {
	vs := make([]property.Value, len(ss))
	for i, s := range ss {
		vs[i] = property.New(s)
	}
	return property.New(vs)
}

// orgHook returns the inputs of a simple organization webhook.
func orgHook() map[string]property.Value {
	return map[string]property.Value{
		"organizationName": str(remoteOrg),
		"displayName":      str("Org hook"),
		"payloadUrl":       str("https://hooks.example.com/org"),
		"active":           property.New(true),
	}
}

func has(m property.Map, key string) bool {
	_, ok := m.GetOk(key)
	return ok
}

// TestGoInternalsPattern makes sure assertCleanError can fail.
func TestGoInternalsPattern(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"cannot create: *client.APIError{Code:404}",
		"rejected (webhook.FieldErrors)",
		"panic: runtime error",
		"goroutine 7 [running]:",
		"at /src/provider/client/remote.go:120",
		"%!v(MISSING)",
	} {
		assert.Regexp(t, goInternals, bad)
	}
	for _, good := range []string{
		`cannot import webhook acme/web/prod/nope: no such webhook exists (webhook "acme/web/prod/nope" not found)`,
		"reach the pulumi-webhooks server at http://127.0.0.1:1 (check the provider's apiUrl): dial tcp 127.0.0.1:1: connect: connection refused",
		"payloadUrl \"https://hooks.example.com/x\" is not a deployment target",
	} {
		assert.NotRegexp(t, goInternals, good)
	}
}
