package engine

import (
	"context"
	"crypto/subtle"
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// HookSecretMatches reports whether secret is the secret the hook ref holds ("" matches a hook
// without one). The provider uses it on refresh to notice a secret changed outside Pulumi: the
// digest the store returns is keyed with the store's key, so a client cannot recompute it.
// Neither secret is logged or returned.
func (e *Engine) HookSecretMatches(ctx context.Context, ref store.HookRef, secret string) (bool, error) {
	h, err := e.store.HookGet(ctx, ref)
	if err != nil {
		return false, fmt.Errorf("engine: check the secret of webhook %s: %w", ref, err)
	}
	stored, err := e.store.HookSecretGet(ctx, h.ID)
	if err != nil {
		return false, fmt.Errorf("engine: check the secret of webhook %s: %w", ref, err)
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(secret)) == 1, nil
}
