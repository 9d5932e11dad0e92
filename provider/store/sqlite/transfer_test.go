package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
)

func TestTransferConformance(t *testing.T) {
	t.Parallel()
	storetest.RunTransfer(t, func(t *testing.T, key []byte) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "webhooks.db"), Config{Key: key})
	})
}
