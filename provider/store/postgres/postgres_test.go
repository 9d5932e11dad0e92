package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envChildURL); url != "" {
		os.Exit(runChild(url))
	}
	code := m.Run()
	pgtest.CloseShared()
	os.Exit(code)
}

// testKey is the key of the stores tests open; secretbox.GenerateKey would do as well, but one
// fixed key lets a test reopen a database without passing it around.
var testKey = []byte("0123456789abcdef0123456789abcdef")

func noEnv(string) string { return "" }

// newDatabase returns the URL of a fresh database on the shared server.
func newDatabase(t *testing.T) string {
	t.Helper()
	return pgtest.Shared(t).NewDatabase(t)
}

// openURL opens a store on url with cfg's other fields, closed when t ends.
func openURL(t *testing.T, url string, cfg Config) *Store {
	t.Helper()
	cfg.URL = url
	if cfg.Key == nil {
		cfg.Key = testKey
	}
	if cfg.Getenv == nil {
		cfg.Getenv = noEnv
	}
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openURL(t, newDatabase(t), Config{MaxConns: 4})
	})
}

func TestConformanceReliability(t *testing.T) {
	t.Parallel()
	storetest.RunReliability(t, harness())
}

func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	storetest.RunCluster(t, harness())
}

// harness opens stores on fresh databases of the shared server for the suites that need more
// than one store per database.
func harness() storetest.Harness {
	return storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openURL(t, newDatabase(t), Config{MaxConns: 4})
		},
		Reopen: func(t *testing.T, st store.Store) store.Store {
			s, err := Open(t.Context(), Config{URL: st.(*Store).connCf.ConnString(), Key: testKey, Getenv: noEnv, MaxConns: 4})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			return s
		},
		CorruptSecret: func(t *testing.T, st store.Store, id int64) {
			if _, err := st.(*Store).Pool().Exec(context.Background(),
				`UPDATE hooks SET secret_box = decode(repeat('00', length(secret_box)), 'hex') WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
		},
	}
}
