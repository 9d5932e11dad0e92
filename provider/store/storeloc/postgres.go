package storeloc

import (
	"context"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres"
)

// openPostgres opens the PostgreSQL store.
func openPostgres(ctx context.Context, loc Location, cfg Config) (Store, error) {
	return postgres.Open(ctx, postgres.Config{URL: loc.URL, Key: cfg.Key, KeyFile: cfg.KeyFile, Logger: cfg.Logger,
		Getenv: cfg.Getenv, ForgetSecretsOfLostKey: cfg.ForgetSecretsOfLostKey})
}
