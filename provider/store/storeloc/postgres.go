package storeloc

import (
	"context"
	"errors"
)

// openPostgres opens the PostgreSQL store.
func openPostgres(ctx context.Context, loc Location, cfg Config) (Store, error) {
	return nil, errors.New("this build has no PostgreSQL store yet")
}
