package cli

import (
	"os"
	"strings"
	"testing"
)

// TestStoreLocationRefused: a --store or PULUMI_WEBHOOKS_STORE that looks like a URL of
// another kind is a clear error, and nothing named after it is created (before, `--store
// postgres://...` silently made a directory named postgres:).
func TestStoreLocationRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	b := setup(t)
	r := b.fails([]string{"--store or " + EnvStore, `"mysql:" locations are not supported`, "postgres://"},
		"token", "list", "--store", "mysql://hooks:hunter2@127.0.0.1/hooks")
	if strings.Contains(r.stderr, "hunter2") {
		t.Errorf("stderr quotes a credential: %s", r.stderr)
	}
	b.fails([]string{"--store or " + EnvStore, "must be a URL of the form postgres://"},
		"hooks", "list", "--store", "postgres:/x/webhooks.db")
	b.env[EnvStore] = "file:webhooks.db"
	b.fails([]string{"--store or " + EnvStore, "without file:"}, "token", "list")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("a refused location created %v", entries)
	}
}

// TestKeyCommandsTakeLocations: the key commands read --store as every command does; a
// PostgreSQL store's key is the environment's, so rotate needs --new-key-file for it.
func TestKeyCommandsTakeLocations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fails([]string{"--new-key-file"}, "key", "rotate", "--store", "postgres://hooks@127.0.0.1:1/hooks")
	b.fails([]string{`"s3:" locations are not supported`}, "key", "reset", "--forget-secrets", "--store", "s3://bucket/x.db")
	b.fails([]string{`"s3:" locations are not supported`}, "key", "rotate", "--store", "s3://bucket/x.db")
}
