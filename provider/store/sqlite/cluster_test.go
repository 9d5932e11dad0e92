package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
)

// TestConformanceCluster runs the suite of several stores on one database (as several
// processes sharing the file).
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	storetest.RunCluster(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openAt(t, filepath.Join(t.TempDir(), "webhooks.db"), Config{})
		},
		Reopen: func(t *testing.T, st store.Store) store.Store {
			s, err := Open(t.Context(), Config{Path: st.(*Store).Path(), Getenv: noEnv})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			return s
		},
	})
}
