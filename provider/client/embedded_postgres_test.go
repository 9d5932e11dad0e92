package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storeloc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.CloseShared()
	os.Exit(code)
}

// TestLazyEmbeddedPostgres: storePath takes a postgres:// URL; the provider then manages its
// webhooks in the PostgreSQL store the servers share, with their key.
func TestLazyEmbeddedPostgres(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("PULUMI_WEBHOOKS_SECRET_KEY", base64.StdEncoding.EncodeToString(key))
	url := pgtest.Shared(t).NewDatabase(t)
	c := NewLazyEmbedded(EmbeddedConfig{StorePath: url})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	h, err := c.Create(ctx, stackSpec())
	if err != nil {
		t.Fatalf("Create on %s: %v", url, err)
	}
	if ok, err := c.SecretMatches(ctx, h.Ref(), "first"); err != nil || !ok {
		t.Fatalf("SecretMatches = %v, %v", ok, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Another process's view: the same database through storeloc finds the hook.
	st, err := storeloc.Open(ctx, storeloc.Config{Location: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.HookGet(ctx, h.Ref())
	if err != nil || got.ID != h.ID || !got.HasSecret {
		t.Fatalf("HookGet through storeloc = %+v, %v", got, err)
	}
}

// TestLazyEmbeddedPostgresWithoutKey: a PostgreSQL storePath with no key in the environment
// fails naming the variable, and never quotes the URL's password.
func TestLazyEmbeddedPostgresWithoutKey(t *testing.T) {
	t.Setenv("PULUMI_WEBHOOKS_SECRET_KEY", "")
	c := NewLazyEmbedded(EmbeddedConfig{StorePath: "postgres://hooks:hunter2@127.0.0.1:1/hooks"})
	_, err := c.Create(context.Background(), stackSpec())
	if err == nil {
		t.Fatal("Create without a key succeeded")
	}
	for _, want := range []string{"PULUMI_WEBHOOKS_SECRET_KEY", "storePath"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error quotes the password: %v", err)
	}
}
