package cli

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// hookWithSecret stores a hook with secret through a store opened with getenv, and closes it.
func (b *testBundle) hookWithSecret(getenv func(string) string, name, secret string) store.HookRef {
	b.t.Helper()
	st, err := sqlite.Open(b.t.Context(), sqlite.Config{Path: b.store, Getenv: getenv})
	if err != nil {
		b.t.Fatal(err)
	}
	defer st.Close()
	h, err := st.HookCreate(b.t.Context(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: name,
		DisplayName: name, PayloadURL: "https://example.com/" + name, Secret: secret, Active: true}, Now: time.Now()})
	if err != nil {
		b.t.Fatal(err)
	}
	return h.Ref()
}

// secretOf reads a hook's secret through a store opened with getenv.
func (b *testBundle) secretOf(getenv func(string) string, ref store.HookRef) (string, error) {
	b.t.Helper()
	st, err := sqlite.Open(b.t.Context(), sqlite.Config{Path: b.store, Getenv: getenv})
	if err != nil {
		return "", err
	}
	defer st.Close()
	h, err := st.HookGet(b.t.Context(), ref)
	if err != nil {
		return "", err
	}
	return st.HookSecretGet(b.t.Context(), h.ID)
}

func noEnv(string) string { return "" }

func TestKeyRotateKeyFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ref := b.hookWithSecret(noEnv, "h", "rotate-me")
	oldKey, err := secretbox.ReadKeyFile(b.store + ".key")
	if err != nil {
		t.Fatal(err)
	}
	r := b.ok("key", "rotate")
	if !strings.Contains(r.stdout, "Re-sealed 1 webhook secrets") || !strings.Contains(r.stdout, b.store+".key") {
		t.Errorf("stdout %q", r.stdout)
	}
	newKey, err := secretbox.ReadKeyFile(b.store + ".key")
	if err != nil || bytes.Equal(newKey, oldKey) {
		t.Fatalf("the key file after rotation: %v (unchanged %v)", err, bytes.Equal(newKey, oldKey))
	}
	for _, k := range [][]byte{oldKey, newKey} {
		if strings.Contains(r.stdout+r.stderr, secretbox.EncodeKey(k)) {
			t.Fatal("a key was printed")
		}
	}
	if _, err := os.Stat(b.store + ".key" + sqlite.KeyFileNextSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the .next file is left: %v", err)
	}
	if got, err := b.secretOf(noEnv, ref); err != nil || got != "rotate-me" {
		t.Fatalf("secret after rotation = %v", err)
	}
	// The old key is refused now.
	oldEnv := func(k string) string {
		if k == EnvSecretKey {
			return secretbox.EncodeKey(oldKey)
		}
		return ""
	}
	if _, err := b.secretOf(oldEnv, ref); !errors.Is(err, store.ErrKeyMismatch) || !strings.Contains(err.Error(), EnvSecretKey) {
		t.Fatalf("open with the old key = %v", err)
	}
}

func TestKeyRotateEnv(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key, _ := secretbox.GenerateKey()
	b.env[EnvSecretKey] = secretbox.EncodeKey(key)
	getenv := func(k string) string { return b.env[k] }
	ref := b.hookWithSecret(getenv, "h", "env-sealed")

	b.fails([]string{EnvSecretKey, "--new-key-file"}, "key", "rotate")
	newFile := b.store + ".newkey"
	r := b.ok("key", "rotate", "--new-key-file", newFile)
	if !strings.Contains(r.stdout, newFile) || !strings.Contains(r.stdout, EnvSecretKey) {
		t.Errorf("stdout %q does not say what to do next", r.stdout)
	}
	info, err := os.Stat(newFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v, mode %v", err, info.Mode())
	}
	newKey, err := secretbox.ReadKeyFile(newFile)
	if err != nil || strings.Contains(r.stdout+r.stderr, secretbox.EncodeKey(newKey)) {
		t.Fatalf("new key: %v (or printed)", err)
	}
	if _, err := os.Stat(b.store + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a key file was made beside the store although the key lives in the environment")
	}
	// Until the variable is changed the store refuses the old key, naming the variable.
	if _, err := b.secretOf(getenv, ref); !errors.Is(err, store.ErrKeyMismatch) || !strings.Contains(err.Error(), EnvSecretKey) {
		t.Fatalf("open with the old key = %v", err)
	}
	b.env[EnvSecretKey] = secretbox.EncodeKey(newKey)
	if got, err := b.secretOf(getenv, ref); err != nil || got != "env-sealed" {
		t.Fatalf("secret with the new key = %v", err)
	}
}

func TestKeyRotateRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fails([]string{"--store", "give the database file"}, "key", "rotate")
	b.hookWithSecret(noEnv, "h", "s")
	// Another process (here: another handle) has the store open.
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: b.store, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	oldKey, _ := secretbox.ReadKeyFile(b.store + ".key")
	b.fails([]string{"in use by other processes", "stop every pulumi-webhooks"}, "key", "rotate")
	st.Close()
	if k, _ := secretbox.ReadKeyFile(b.store + ".key"); !bytes.Equal(k, oldKey) {
		t.Fatal("a refused rotation changed the key file")
	}
	if _, err := os.Stat(b.store + ".key" + sqlite.KeyFileNextSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused rotation left its .next key file")
	}
	// A --new-key-file that is not a key file is refused before anything happens.
	bad := b.store + ".bad"
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.fails([]string{"--new-key-file", bad}, "key", "rotate", "--new-key-file", bad)
}

// TestWrongKeyRefused: a command started with a key file that is not the store's refuses to
// start, naming the key file and never printing a key.
func TestWrongKeyRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.hookWithSecret(noEnv, "h", "s")
	other, _ := secretbox.GenerateKey()
	if err := secretbox.WriteKeyFile(b.store+".key", other); err != nil {
		t.Fatal(err)
	}
	r := b.fails([]string{"the key file " + b.store + ".key", "does not match"}, "hooks", "list")
	if strings.Contains(r.stderr, secretbox.EncodeKey(other)) {
		t.Fatal("the error prints the key")
	}
}

func TestKeyReset(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fails([]string{"--forget-secrets is required"}, "key", "reset")
	b.fails([]string{"--store", "give the database file"}, "key", "reset", "--forget-secrets")
	ref := b.hookWithSecret(noEnv, "h", "s")
	if r := b.ok("key", "reset", "--forget-secrets"); !strings.Contains(r.stdout, "nothing was forgotten") {
		t.Fatalf("reset with the right key: %q", r.stdout)
	}
	// The key file is lost.
	if err := os.Remove(b.store + ".key"); err != nil {
		t.Fatal(err)
	}
	b.fails([]string{"does not match", "key reset --forget-secrets"}, "hooks", "list")
	r := b.ok("key", "reset", "--forget-secrets")
	if !strings.Contains(r.stdout, "Forgot the secrets of 1 webhooks") || !strings.Contains(r.stdout, formatHookID(ref)) {
		t.Fatalf("reset output %q", r.stdout)
	}
	b.ok("hooks", "list")
	if got, err := b.secretOf(noEnv, ref); err != nil || got != "" {
		t.Fatalf("the secret after reset = %v", err)
	}
}
