package storeloc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		kind Kind
		str  string
	}{
		{"/var/lib/pulumi-webhooks/webhooks.db", SQLite, "/var/lib/pulumi-webhooks/webhooks.db"},
		{"webhooks.db", SQLite, "webhooks.db"},
		{"./data:v1.db", SQLite, "./data:v1.db"},
		{`C:\data\webhooks.db`, SQLite, `C:\data\webhooks.db`},
		{"postgres://hooks@127.0.0.1:5432/hooks", PostgreSQL, "postgres://hooks@127.0.0.1:5432/hooks"},
		{"postgresql://hooks:hunter2@127.0.0.1/hooks?sslmode=disable", PostgreSQL, "postgresql://hooks:xxxxx@127.0.0.1/hooks?sslmode=disable"},
		{"postgres://127.0.0.1/hooks?password=hunter2&user=hooks", PostgreSQL, "postgres://127.0.0.1/hooks?password=xxxxx&user=hooks"},
		{"POSTGRES://127.0.0.1/hooks", PostgreSQL, "postgres://127.0.0.1/hooks"},
	} {
		loc, err := Parse("", tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.kind, loc.Kind, tc.in)
		assert.Equal(t, tc.str, loc.String(), tc.in)
		assert.NotContains(t, loc.String(), "hunter2")
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", "is empty"},
		{"   ", "is empty"},
		{"file:/var/lib/webhooks.db", `"file:" locations are not supported`},
		{"file:///var/lib/webhooks.db", "without file:"},
		{"mysql://hooks:hunter2@127.0.0.1/hooks", `"mysql:" locations are not supported`},
		{"s3://bucket/webhooks.db", `"s3:" locations are not supported`},
		{"sqlite://webhooks.db", `"sqlite:" locations are not supported`},
		{"postgres:/x", "must be a URL of the form postgres://user@host:5432/db"},
		{"postgresql:hooks", "must be a URL of the form postgresql://"},
		{"postgres://hooks:hunter2@[::1/x", "must be a URL of the form postgres://"},
	} {
		_, err := Parse("--store or PULUMI_WEBHOOKS_STORE", tc.in)
		require.Error(t, err, tc.in)
		msg := err.Error()
		assert.Contains(t, msg, tc.want, tc.in)
		assert.Contains(t, msg, "--store or PULUMI_WEBHOOKS_STORE", "the error names the setting")
		assert.NotContains(t, msg, "hunter2", "the error never quotes credentials")
		if tc.want != "is empty" && !strings.HasPrefix(tc.in, "postgres") {
			assert.Contains(t, msg, "a SQLite database file", "the error lists the accepted forms")
			assert.Contains(t, msg, "postgres://")
		}
	}
}

func TestResolveDefault(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	loc, err := Resolve(Config{Getenv: getenv})
	require.NoError(t, err)
	assert.Equal(t, SQLite, loc.Kind, "no location, no variable: the default SQLite file")
	env[EnvStore] = "postgres://127.0.0.1/hooks"
	loc, err = Resolve(Config{Getenv: getenv})
	require.NoError(t, err)
	assert.Equal(t, PostgreSQL, loc.Kind, "%s takes a URL", EnvStore)
	loc, err = Resolve(Config{Location: "/x/webhooks.db", Getenv: getenv})
	require.NoError(t, err)
	assert.Equal(t, Location{Kind: SQLite, Path: "/x/webhooks.db"}, loc, "the location wins over the variable")
	env[EnvStore] = "mysql://127.0.0.1/hooks"
	_, err = Resolve(Config{Getenv: getenv, Setting: "the provider's storePath"})
	require.ErrorContains(t, err, "the provider's storePath")
}

// TestOpenSQLite opens a file through its path and uses it.
func TestOpenSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	st, err := Open(t.Context(), Config{Location: path, Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	h, err := st.HookCreate(t.Context(), store.HookCreateParams{Spec: webhook.Spec{
		Scope: webhook.Scope{Org: "acme"}, Name: "a", PayloadURL: "https://example.com/h", Active: true, Format: webhook.FormatRaw}})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	st, err = Open(t.Context(), Config{Location: path, Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	defer st.Close()
	got, err := st.HookGet(t.Context(), h.Ref())
	require.NoError(t, err)
	assert.Equal(t, h.ID, got.ID)
}

// TestOpenRefusesSchemesAsFiles is the regression test of `--store postgres:...` and other
// URL-like values silently becoming a directory named after the scheme: nothing is created.
func TestOpenRefusesSchemesAsFiles(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, loc := range []string{"postgres:/x/webhooks.db", "mysql://127.0.0.1/hooks", "file:webhooks.db", "s3://bucket/webhooks.db"} {
		_, err := Open(t.Context(), Config{Location: loc, Getenv: func(string) string { return "" }})
		require.Error(t, err, loc)
		assert.Contains(t, err.Error(), SettingDefault, loc)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "a refused location creates nothing")
}
