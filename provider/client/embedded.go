package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storeloc"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// NewEmbedded returns a Client that manages hooks directly in e. It never starts e's delivery
// workers: delivering is the server's job, not the provider's.
func NewEmbedded(e *engine.Engine) Client { return embedded{e: e} }

type embedded struct{ e *engine.Engine }

func (c embedded) Create(ctx context.Context, spec webhook.Spec) (*store.Hook, error) {
	return c.e.HookCreate(ctx, spec)
}

func (c embedded) Get(ctx context.Context, ref store.HookRef) (*store.Hook, error) {
	return c.e.HookGet(ctx, ref)
}

func (c embedded) Update(ctx context.Context, ref store.HookRef, spec webhook.Spec, secret *string) (*store.Hook, error) {
	return c.e.HookUpdate(ctx, engine.HookUpdateParams{Ref: ref, Spec: spec, Secret: secret})
}

func (c embedded) Delete(ctx context.Context, ref store.HookRef) error {
	return c.e.HookDelete(ctx, ref)
}

func (c embedded) SecretMatches(ctx context.Context, ref store.HookRef, secret string) (bool, error) {
	return c.e.HookSecretMatches(ctx, ref, secret)
}

// EmbeddedConfig locates the embedded store.
type EmbeddedConfig struct {
	// StorePath is the SQLite database file or a PostgreSQL URL (storeloc); empty means
	// storeloc's default ($PULUMI_WEBHOOKS_STORE, else the default SQLite file).
	StorePath string
	// Logger receives the store's and engine's logs; discarded when nil.
	Logger *slog.Logger
}

// LazyEmbedded is a Client on the embedded store that opens the store and its engine on the
// first call. A failed open is reported to that call and tried again on the next one.
type LazyEmbedded struct {
	cfg EmbeddedConfig

	mu     sync.Mutex
	st     storeloc.Store
	client Client
}

var _ Client = (*LazyEmbedded)(nil)

// NewLazyEmbedded returns a LazyEmbedded; it touches nothing until it is first used.
func NewLazyEmbedded(cfg EmbeddedConfig) *LazyEmbedded { return &LazyEmbedded{cfg: cfg} }

// open returns the embedded client, opening the store and the engine the first time.
func (l *LazyEmbedded) open(ctx context.Context) (Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		return l.client, nil
	}
	st, err := storeloc.Open(ctx, storeloc.Config{Location: l.cfg.StorePath, Logger: l.cfg.Logger,
		Setting: "pulumiservice:" + SettingStorePath + " or " + storeloc.EnvStore})
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	e, err := engine.New(engine.Config{Store: st, Logger: l.cfg.Logger})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded engine: %w", err), st.Close())
	}
	l.st, l.client = st, NewEmbedded(e)
	return l.client, nil
}

// Close closes the store if it was opened. The client can be used again afterwards: the next
// call opens the store anew.
func (l *LazyEmbedded) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st == nil {
		return nil
	}
	err := l.st.Close()
	l.st, l.client = nil, nil
	return err
}

func (l *LazyEmbedded) Create(ctx context.Context, spec webhook.Spec) (*store.Hook, error) {
	c, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	return c.Create(ctx, spec)
}

func (l *LazyEmbedded) Get(ctx context.Context, ref store.HookRef) (*store.Hook, error) {
	c, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	return c.Get(ctx, ref)
}

func (l *LazyEmbedded) Update(ctx context.Context, ref store.HookRef, spec webhook.Spec, secret *string) (*store.Hook, error) {
	c, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	return c.Update(ctx, ref, spec, secret)
}

func (l *LazyEmbedded) Delete(ctx context.Context, ref store.HookRef) error {
	c, err := l.open(ctx)
	if err != nil {
		return err
	}
	return c.Delete(ctx, ref)
}

func (l *LazyEmbedded) SecretMatches(ctx context.Context, ref store.HookRef, secret string) (bool, error) {
	c, err := l.open(ctx)
	if err != nil {
		return false, err
	}
	return c.(SecretChecker).SecretMatches(ctx, ref, secret)
}
