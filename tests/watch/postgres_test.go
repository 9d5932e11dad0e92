package watch

import (
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
)

// postgresBackend starts a PostgreSQL server on 127.0.0.1 for t (pgtest, the store's test
// launcher) and returns a postgres:// backend URL on it (Pulumi's DIY PostgreSQL backend).
func postgresBackend(t *testing.T) string {
	t.Helper()
	return pgtest.Start(t).URL("postgres")
}

func TestLifecyclePostgresBackend(t *testing.T) {
	t.Parallel()
	lifecycle(t, postgresBackend(t))
}
