package client

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

type testBundle struct {
	client Client
	path   string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	e, err := engine.New(engine.Config{Store: st})
	require.NoError(t, err)
	return &testBundle{client: NewEmbedded(e), path: path}
}

func stackSpec() webhook.Spec {
	return webhook.Spec{
		Scope:       webhook.Scope{Org: "acme", Project: "web", Stack: "prod"},
		DisplayName: "Stack hook",
		PayloadURL:  "https://hooks.example.com/x",
		Secret:      "first",
		Active:      true,
		Filters:     []webhook.Filter{webhook.UpdateSucceeded},
	}
}

func TestEmbeddedLifecycle(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()

	h, err := tb.client.Create(ctx, stackSpec())
	require.NoError(t, err)
	require.NotEmpty(t, h.Name, "the store generates a name")
	assert.Empty(t, h.Secret, "the secret is never returned")
	assert.True(t, h.HasSecret)
	firstDigest := h.SecretDigest

	got, err := tb.client.Get(ctx, h.Ref())
	require.NoError(t, err)
	assert.Equal(t, "Stack hook", got.DisplayName)
	assert.Equal(t, webhook.FormatRaw, got.Format, "the default format is filled")

	spec := stackSpec()
	spec.DisplayName = "Renamed"
	spec.Active = false
	kept, err := tb.client.Update(ctx, h.Ref(), spec, nil)
	require.NoError(t, err)
	assert.Equal(t, "Renamed", kept.DisplayName)
	assert.False(t, kept.Active)
	assert.Equal(t, firstDigest, kept.SecretDigest, "nil keeps the secret")

	second := "second"
	replaced, err := tb.client.Update(ctx, h.Ref(), spec, &second)
	require.NoError(t, err)
	assert.NotEqual(t, firstDigest, replaced.SecretDigest)

	none := ""
	removed, err := tb.client.Update(ctx, h.Ref(), spec, &none)
	require.NoError(t, err)
	assert.False(t, removed.HasSecret)

	require.NoError(t, tb.client.Delete(ctx, h.Ref()))
	_, err = tb.client.Get(ctx, h.Ref())
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, tb.client.Delete(ctx, h.Ref()), store.ErrNotFound)
	_, err = tb.client.Update(ctx, h.Ref(), spec, nil)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestEmbeddedErrors(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()

	named := stackSpec()
	named.Name = "fixed"
	_, err := tb.client.Create(ctx, named)
	require.NoError(t, err)
	_, err = tb.client.Create(ctx, named)
	require.ErrorIs(t, err, store.ErrAlreadyExists)

	bad := stackSpec()
	bad.DisplayName = ""
	bad.PayloadURL = "nope"
	_, err = tb.client.Create(ctx, bad)
	var fes webhook.FieldErrors
	require.True(t, errors.As(err, &fes), "validation failures come back as FieldErrors: %v", err)
	fields := map[string]bool{}
	for _, fe := range fes {
		fields[fe.Field] = true
	}
	assert.True(t, fields["displayName"] && fields["payloadUrl"], "%v", fes)

	_, err = tb.client.Get(ctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "a/b"})
	require.True(t, errors.As(err, &fes), "a malformed reference is a FieldErrors too: %v", err)
}

func TestLazyEmbeddedOpensOnFirstUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nested", "dir", "webhooks.db")
	c, err := New(Config{StorePath: path})
	require.NoError(t, err)
	lazy, ok := c.(*LazyEmbedded)
	require.True(t, ok, "no apiUrl: the embedded store")
	t.Cleanup(func() { _ = lazy.Close() })

	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "nothing is created before the first call")

	ctx := context.Background()
	_, err = c.Get(ctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "missing"})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = os.Stat(path)
	require.NoError(t, err, "the first call creates the store")

	h, err := c.Create(ctx, stackSpec())
	require.NoError(t, err)

	// Closing releases the store; the next call opens it again and finds the hook.
	require.NoError(t, lazy.Close())
	require.NoError(t, lazy.Close(), "closing twice is harmless")
	got, err := c.Get(ctx, h.Ref())
	require.NoError(t, err)
	assert.Equal(t, h.Name, got.Name)
	spec := stackSpec()
	_, err = c.Update(ctx, h.Ref(), spec, nil)
	require.NoError(t, err)
	require.NoError(t, c.Delete(ctx, h.Ref()))
}

func TestLazyEmbeddedOpenFailure(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	require.NoError(t, os.Mkdir(path, 0o700)) // a directory where the database file should be
	c := NewLazyEmbedded(EmbeddedConfig{StorePath: path})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	ref := store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "x"}

	_, err := c.Create(ctx, stackSpec())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "open the store "+path)
	assert.Contains(t, err.Error(), "storePath")
	_, err = c.Get(ctx, ref)
	require.Error(t, err)
	_, err = c.Update(ctx, ref, stackSpec(), nil)
	require.Error(t, err)
	require.Error(t, c.Delete(ctx, ref))

	// The failure is not remembered: once the path is usable, the next call succeeds.
	require.NoError(t, os.Remove(path))
	_, err = c.Create(ctx, stackSpec())
	require.NoError(t, err)
}

func TestLazyEmbeddedDefaultPath(t *testing.T) {
	// Not parallel: it sets the environment.
	path := filepath.Join(t.TempDir(), "default.db")
	t.Setenv(sqlite.EnvStorePath, path)
	// A Pulumi access token in the environment (self-managed backends, CI) changes nothing.
	t.Setenv(EnvAccessToken, "pul-env-token")
	c, err := New(Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.(*LazyEmbedded).Close() })
	_, err = c.Create(context.Background(), stackSpec())
	require.NoError(t, err)
	_, err = os.Stat(path)
	require.NoError(t, err, "no storePath: the store at %s", sqlite.EnvStorePath)
}

// TestNewRemoteMode: with apiUrl and accessToken, New returns a client that manages hooks in a
// real server, and creates no embedded store anywhere.
func TestNewRemoteMode(t *testing.T) {
	// Not parallel: it points the embedded store's default path somewhere it can watch.
	unused := filepath.Join(t.TempDir(), "default.db")
	t.Setenv(sqlite.EnvStorePath, unused)
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})
	c, err := New(Config{APIURL: srv.URL, AccessToken: srv.Tokens["acme"]})
	require.NoError(t, err)
	_, embedded := c.(*LazyEmbedded)
	require.False(t, embedded, "apiUrl selects the remote client")

	ctx := t.Context()
	h, err := c.Create(ctx, stackSpec())
	require.NoError(t, err)
	assert.True(t, h.HasSecret)
	assert.Empty(t, h.Secret)

	// The hook is in the server's store, not in an embedded one.
	stored, err := srv.Engine.HookGet(ctx, h.Ref())
	require.NoError(t, err)
	assert.Equal(t, h.SecretDigest, stored.SecretDigest)
	got, err := c.Get(ctx, h.Ref())
	require.NoError(t, err)
	assert.Equal(t, "Stack hook", got.DisplayName)
	spec := stackSpec()
	spec.DisplayName = "Renamed"
	upd, err := c.Update(ctx, h.Ref(), spec, nil)
	require.NoError(t, err)
	assert.Equal(t, "Renamed", upd.DisplayName)
	require.NoError(t, c.Delete(ctx, h.Ref()))
	_, err = srv.Engine.HookGet(ctx, h.Ref())
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = c.Get(ctx, h.Ref())
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = os.Stat(unused)
	require.ErrorIs(t, err, os.ErrNotExist, "remote mode never opens the embedded store")
}

// TestNewRemoteModeEnvToken: with apiUrl and no accessToken, the token comes from
// PULUMI_ACCESS_TOKEN, as with the official provider.
func TestNewRemoteModeEnvToken(t *testing.T) {
	// Not parallel: it sets the environment.
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})
	t.Setenv(EnvAccessToken, srv.Tokens["acme"])
	c, err := New(Config{APIURL: srv.URL})
	require.NoError(t, err)
	h, err := c.Create(t.Context(), stackSpec())
	require.NoError(t, err)
	stored, err := srv.Engine.HookGet(t.Context(), h.Ref())
	require.NoError(t, err, "the hook is on the server")
	assert.Equal(t, "Stack hook", stored.DisplayName)
}

// TestNewRemoteModeErrors: each misconfiguration is a clear error that names the property to
// fix and never quotes the access token.
func TestNewRemoteModeErrors(t *testing.T) {
	t.Parallel()
	const token = "pwh_do-not-print-7f3a"
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})

	// A port nothing listens on: listen, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	ref := store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "x"}
	cases := []struct {
		name string
		cfg  Config
		// atNew: New fails; otherwise New succeeds and the first call fails.
		atNew bool
		want  []string
	}{
		{"relative apiUrl", Config{APIURL: "webhooks.example.com", AccessToken: token}, true,
			[]string{"apiUrl", "not an absolute http:// or https:// URL"}},
		{"apiUrl of another scheme", Config{APIURL: "ftp://127.0.0.1/", AccessToken: token}, true,
			[]string{"apiUrl", "http://"}},
		{"apiUrl with credentials", Config{APIURL: "http://user:" + token + "@127.0.0.1/", AccessToken: token}, true,
			[]string{"apiUrl carries user credentials", "accessToken"}},
		{"missing token", Config{APIURL: srv.URL, Getenv: env(nil)}, true,
			[]string{"pulumiservice:accessToken is not set", "pulumi-webhooks token create"}},
		{"blank token", Config{APIURL: srv.URL, AccessToken: "   ", Getenv: env(nil)}, true,
			[]string{"pulumiservice:accessToken is not set"}},
		{"apiUrl and storePath", Config{APIURL: srv.URL, AccessToken: token, StorePath: "/tmp/x.db"}, true,
			[]string{"pulumiservice:storePath and pulumiservice:apiUrl are both set"}},
		{"unreachable server", Config{APIURL: deadURL, AccessToken: token}, false,
			[]string{"reach the pulumi-webhooks server at " + deadURL, "apiUrl"}},
		{"wrong token", Config{APIURL: srv.URL, AccessToken: token}, false,
			[]string{"refused the access token from pulumiservice:accessToken", "invalid or revoked API token",
				"`pulumi config set --secret pulumiservice:accessToken TOKEN`"}},
		{"wrong token from PULUMI_ACCESS_TOKEN", Config{APIURL: srv.URL, Getenv: env(map[string]string{EnvAccessToken: token})}, false,
			[]string{"refused the access token from the environment variable PULUMI_ACCESS_TOKEN", "pulumiservice:accessToken"}},
		{"token of another organization", Config{APIURL: srv.URL, AccessToken: srv.Tokens["globex"]}, false,
			[]string{`another organization than "acme"`, "pulumi-webhooks token create --org acme"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.cfg)
			if !tc.atNew {
				require.NoError(t, err)
				_, err = c.Get(t.Context(), ref)
			}
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), token, "the access token never appears in errors")
			assert.NotContains(t, err.Error(), "do-not-print")
			for _, tok := range srv.Tokens {
				assert.NotContains(t, err.Error(), tok, "the access token never appears in errors")
			}
			assert.NotErrorIs(t, err, store.ErrNotFound, "a misconfiguration never looks like a missing webhook")
		})
	}
}

func TestNewTokenWithoutServer(t *testing.T) {
	t.Parallel()
	_, err := New(Config{AccessToken: "tok-7f3a"})
	require.ErrorContains(t, err, "pulumiservice:apiUrl is not set")
	assert.NotContains(t, err.Error(), "tok-7f3a")
}
