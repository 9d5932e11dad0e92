package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// A display name with terminal escapes, bidirectional overrides and newlines, stored before
// the validation rules existed (straight into the store here), is printed escaped by `hooks
// list`: one line per hook, nothing raw.
func TestHooksListEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: b.store})
	if err != nil {
		t.Fatal(err)
	}
	evil := "ok\x1b[2J\x1b]0;pwned\x07\u202egnp.exe\nforged line\x00\u200b\u0085end"
	_, err = st.HookCreate(t.Context(), store.HookCreateParams{Now: time.Now(), Spec: webhook.Spec{
		Scope: webhook.Scope{Org: "acme"}, Name: "old", DisplayName: evil, PayloadURL: "https://example.com/\x1b[31m", Active: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out := b.ok("hooks", "list").stdout
	if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && webhook.HasUnsafeRunes(string(r)) }); i >= 0 {
		t.Errorf("hooks list printed a raw control or invisible character at byte %d: %q", i, out)
	}
	if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); len(lines) != 2 {
		t.Errorf("hooks list printed %d lines for one hook:\n%s", len(lines), out)
	}
	for _, want := range []string{`ok\x1b[2J`, `\u202egnp.exe\nforged line\x00\u200b\u0085end`, `https://example.com/\x1b[31m`} {
		if !strings.Contains(out, want) {
			t.Errorf("hooks list lacks the escaped %s:\n%s", want, out)
		}
	}
	// JSON output keeps the value exactly (JSON escapes it).
	if js := b.ok("hooks", "list", "--json").stdout; !strings.Contains(js, `\u001b[2J`) {
		t.Errorf("hooks list --json: %s", js)
	}
}

// emit with an idempotency key replays the same event and refuses another one, naming the flag.
func TestEmitIdempotencyKeyReused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	args := []string{"emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "prod", "--idempotency-key", "k1"}
	b.ok(args...)
	if out := b.ok(args...).stdout; !strings.Contains(out, "replayed") {
		t.Errorf("second emit with the same key: %q", out)
	}
	b.fails([]string{`--idempotency-key "k1"`, "different event", "new key"}, append(args, "--payload", `{"user":{"name":"other"}}`)...)
	other := append([]string{}, args...)
	other[8] = "dev"
	b.fails([]string{"--idempotency-key", "different event"}, other...)
}
