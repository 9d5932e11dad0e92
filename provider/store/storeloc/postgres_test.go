package storeloc

import (
	"errors"
	"os"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.CloseShared()
	os.Exit(code)
}

// TestOpenPostgres opens a postgres:// location, and refuses it with another key.
func TestOpenPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t)
	keyA, keyB := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	noEnv := func(string) string { return "" }
	st, err := Open(t.Context(), Config{Location: url, Key: keyA, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.HookCreate(t.Context(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "a",
		PayloadURL: "https://example.com/h", Active: true, Format: webhook.FormatRaw, Secret: "s3cr3t"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), Config{Location: url, Key: keyB, Getenv: noEnv}); !errors.Is(err, store.ErrKeyMismatch) {
		t.Fatalf("Open with another key: %v; want ErrKeyMismatch", err)
	}
	st, err = Open(t.Context(), Config{Location: url, Key: keyA, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s, err := st.HookSecretGet(t.Context(), h.ID); err != nil || s != "s3cr3t" {
		t.Fatalf("HookSecretGet = %q, %v", s, err)
	}
}
