package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

func TestHookSecretMatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := hookSpec("s", "https://example.com/s")
	spec.Secret = "right"
	h := b.createHook(t, spec)
	ctx := context.Background()
	for _, tc := range []struct {
		secret string
		want   bool
	}{{"right", true}, {"wrong", false}, {"", false}, {"right ", false}} {
		got, err := b.eng.HookSecretMatches(ctx, h.Ref(), tc.secret)
		if err != nil || got != tc.want {
			t.Errorf("HookSecretMatches(%q) = %v, %v; want %v", tc.secret, got, err, tc.want)
		}
	}
	missing := h.Ref()
	missing.Name = "missing"
	if _, err := b.eng.HookSecretMatches(ctx, missing, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("HookSecretMatches of a missing hook = %v, want ErrNotFound", err)
	}
}
