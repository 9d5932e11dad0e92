// Package client is how the Pulumi provider reaches the webhooks it manages. A Client creates,
// reads, updates and deletes hooks either in an embedded engine on a local SQLite store (the
// default) or, in remote mode, through the REST API of a pulumi-webhooks server. Config holds
// the provider configuration that chooses between them, and Config.Resolve every rule about it
// (the provider's CheckConfig and New both apply it).
//
// Both modes report problems the same way, so the provider maps them in one place: a missing
// hook wraps store.ErrNotFound, a duplicate wraps store.ErrAlreadyExists, and a rejected spec
// is (or wraps) webhook.FieldErrors.
package client

import (
	"context"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Client manages hooks.
type Client interface {
	// Create stores a new hook. spec.Name empty lets the store generate a name.
	Create(ctx context.Context, spec webhook.Spec) (*store.Hook, error)
	// Get returns the hook ref names; the error wraps store.ErrNotFound when it is gone.
	Get(ctx context.Context, ref store.HookRef) (*store.Hook, error)
	// Update replaces the mutable fields of a hook with spec's. secret nil keeps the stored
	// secret, a pointer to "" removes it, anything else replaces it.
	Update(ctx context.Context, ref store.HookRef, spec webhook.Spec, secret *string) (*store.Hook, error)
	// Delete removes a hook; the error wraps store.ErrNotFound when it was already gone.
	Delete(ctx context.Context, ref store.HookRef) error
}

// SecretChecker is implemented by the clients that can tell whether a secret is the one a hook
// holds: the embedded one asks its store, the remote one the server (POST .../secret/check).
// The digest a hook carries (store.Hook.SecretDigest) is keyed with the store's key, so no
// client can recompute it.
type SecretChecker interface {
	SecretMatches(ctx context.Context, ref store.HookRef, secret string) (bool, error)
}

var (
	_ SecretChecker = embedded{}
	_ SecretChecker = (*LazyEmbedded)(nil)
	_ SecretChecker = (*remote)(nil)
)

// New returns the Client cfg selects (Config.Resolve). The embedded store is opened lazily, on
// the first call that needs it, so a preview that never reaches the store never creates its
// file. The remote client contacts the server only on its first call. No error ever quotes the
// access token.
func New(cfg Config) (Client, error) {
	r, refused := cfg.Resolve()
	if len(refused) > 0 {
		return nil, refused
	}
	if r.Mode == ModeRemote {
		return newRemote(r, nil), nil
	}
	return NewLazyEmbedded(EmbeddedConfig{StorePath: r.StorePath, Logger: cfg.Logger}), nil
}
