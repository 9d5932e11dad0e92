package sealing

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func newBox(t *testing.T, fill byte) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	stack = webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
	ref   = store.HookRef{Scope: webhook.Scope{Org: "acme", Project: "web"}, Name: "h1"}
)

// The associated data is fixed: blobs already stored (and copied between backends by store
// migrate) were sealed with exactly these bytes.
func TestADsAreTheStoredFormat(t *testing.T) {
	if got, want := string(DeploymentSettingsAD(stack)), "pulumi-webhooks/deployment-settings/v1\x00acme\x00web\x00prod"; got != want {
		t.Fatalf("DeploymentSettingsAD = %q, want %q", got, want)
	}
	if got, want := string(HookSecretAD(ref)), "pulumi-webhooks/hook-secret/v1\x00acme\x00web\x00\x00\x00h1"; got != want {
		t.Fatalf("HookSecretAD = %q, want %q", got, want)
	}
	other := ref
	other.Name = "h2"
	if bytes.Equal(HookSecretAD(ref), HookSecretAD(other)) {
		t.Fatal("two hooks share associated data")
	}
	// The store_meta names and the digest scheme are stored too, and read by both backends.
	if MetaKeyCheck != "key_check" || MetaDigestScheme != "digest_scheme" || DigestScheme != "hmac-sha256-hkdf/v1" {
		t.Fatalf("store_meta names changed: %q %q %q", MetaKeyCheck, MetaDigestScheme, DigestScheme)
	}
}

func TestHookSecretRoundTripAndBinding(t *testing.T) {
	box := newBox(t, 1)
	sealed, digest, err := SealHookSecret(box, ref, "s3cr3t")
	if err != nil || sealed == nil || digest != box.Digest([]byte("s3cr3t")) {
		t.Fatalf("SealHookSecret = %v, %q, %v", sealed, digest, err)
	}
	if bytes.Contains(sealed, []byte("s3cr3t")) {
		t.Fatal("the sealed secret holds the plain text")
	}
	if got, err := OpenHookSecret(box, ref, sealed); err != nil || got != "s3cr3t" {
		t.Fatalf("OpenHookSecret = %q, %v", got, err)
	}
	other := ref
	other.Name = "h2"
	if _, err := OpenHookSecret(box, other, sealed); err == nil {
		t.Fatal("a secret sealed for one hook opened for another")
	}
	if s, d, err := SealHookSecret(box, ref, ""); s != nil || d != "" || err != nil {
		t.Fatalf("no secret sealed to %v, %q, %v; want nil, \"\", nil", s, d, err)
	}
	if got, err := OpenHookSecret(box, ref, nil); got != "" || err != nil {
		t.Fatalf("OpenHookSecret(nil) = %q, %v", got, err)
	}
}

func TestResealHookSecret(t *testing.T) {
	old, next := newBox(t, 1), newBox(t, 2)
	sealed, _, err := SealHookSecret(old, ref, "s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	resealed, digest, err := ResealHookSecret(old, next, ref, sealed)
	if err != nil || digest != next.Digest([]byte("s3cr3t")) {
		t.Fatalf("ResealHookSecret = %q, %v", digest, err)
	}
	if got, err := OpenHookSecret(next, ref, resealed); err != nil || got != "s3cr3t" {
		t.Fatalf("resealed secret opens to %q, %v", got, err)
	}
	if _, _, err := ResealHookSecret(next, old, ref, sealed); !errors.Is(err, ErrNotOpened) {
		t.Fatalf("resealing under the wrong old key: %v, want ErrNotOpened", err)
	}
}

func TestSettingsRoundTripDigestsAndBinding(t *testing.T) {
	box := newBox(t, 3)
	secrets := map[string]string{"backend.passphrase": "pw", "operationContext.environmentVariables.TOKEN": "tok"}
	sealed, digests, err := SealSettings(box, stack, secrets)
	if err != nil || sealed == nil {
		t.Fatalf("SealSettings: %v", err)
	}
	var dm map[string]string
	if err := json.Unmarshal([]byte(digests), &dm); err != nil {
		t.Fatalf("digests %q: %v", digests, err)
	}
	if len(dm) != 2 || dm["backend.passphrase"] != box.Digest([]byte("pw")) || strings.Contains(digests, "tok") {
		t.Fatalf("digests %q", digests)
	}
	got, err := OpenSettings(box, stack, sealed)
	if err != nil || len(got) != 2 || got["backend.passphrase"] != "pw" {
		t.Fatalf("OpenSettings = %v, %v", got, err)
	}
	other := stack
	other.Stack = "dev"
	if _, err := OpenSettings(box, other, sealed); err == nil || !strings.Contains(err.Error(), "were they sealed with another key?") {
		t.Fatalf("settings of one stack opened for another: %v", err)
	}
	if _, err := OpenSettings(newBox(t, 4), stack, sealed); err == nil {
		t.Fatal("settings opened under another key")
	}
	if s, d, err := SealSettings(box, stack, nil); s != nil || d != "{}" || err != nil {
		t.Fatalf("no secrets sealed to %v, %q, %v; want nil, \"{}\", nil", s, d, err)
	}
	if got, err := OpenSettings(box, stack, nil); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("OpenSettings(nil) = %#v, %v; want an empty map", got, err)
	}
	// A blob that opens but is not a JSON object of strings.
	bad, err := box.Seal([]byte("[1]"), DeploymentSettingsAD(stack))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSettings(box, stack, bad); err == nil || !strings.Contains(err.Error(), "decode secrets") {
		t.Fatalf("undecodable secrets: %v", err)
	}
	if _, _, _, err := ResealSettings(box, newBox(t, 5), stack, bad); err == nil || errors.Is(err, ErrNotOpened) {
		t.Fatalf("resealing undecodable secrets: %v, want a decode error", err)
	}
}

func TestResealSettings(t *testing.T) {
	old, next := newBox(t, 6), newBox(t, 7)
	sealed, _, err := SealSettings(old, stack, map[string]string{"a": "1", "b": "2"})
	if err != nil {
		t.Fatal(err)
	}
	resealed, digests, n, err := ResealSettings(old, next, stack, sealed)
	if err != nil || n != 2 {
		t.Fatalf("ResealSettings: n %d, %v", n, err)
	}
	var dm map[string]string
	if err := json.Unmarshal([]byte(digests), &dm); err != nil || dm["a"] != next.Digest([]byte("1")) {
		t.Fatalf("digests %q (%v)", digests, err)
	}
	if got, err := OpenSettings(next, stack, resealed); err != nil || got["b"] != "2" {
		t.Fatalf("resealed settings open to %v, %v", got, err)
	}
	if _, _, _, err := ResealSettings(next, old, stack, sealed); !errors.Is(err, ErrNotOpened) {
		t.Fatalf("resealing under the wrong old key: %v, want ErrNotOpened", err)
	}
}

func TestCheckTransferKey(t *testing.T) {
	box := newBox(t, 8)
	if err := CheckTransferKey(box, box.Check()); err != nil {
		t.Fatal(err)
	}
	err := CheckTransferKey(box, newBox(t, 9).Check())
	if !errors.Is(err, store.ErrKeyMismatch) || !strings.Contains(err.Error(), secretbox.EnvKey) {
		t.Fatalf("another key: %v, want ErrKeyMismatch naming %s", err, secretbox.EnvKey)
	}
}
