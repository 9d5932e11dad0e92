package postgres

import (
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
)

func TestTransferConformance(t *testing.T) {
	t.Parallel()
	storetest.RunTransfer(t, func(t *testing.T, key []byte) store.Store {
		return openURL(t, newDatabase(t), Config{Key: key, MaxConns: 4})
	})
}
