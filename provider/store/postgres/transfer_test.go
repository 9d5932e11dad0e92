package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
)

func TestTransferConformance(t *testing.T) {
	t.Parallel()
	storetest.RunTransfer(t, func(t *testing.T, key []byte) store.Store {
		return openURL(t, newDatabase(t), Config{Key: key, MaxConns: 4})
	})
}

// TestTransferSharesBodies: a copy stores the bodies that deliveries of one event share once,
// as an emit does, and a copy run again stores none twice.
func TestTransferSharesBodies(t *testing.T) {
	t.Parallel()
	src := openURL(t, newDatabase(t), Config{MaxConns: 4})
	dst := openURL(t, newDatabase(t), Config{MaxConns: 4})
	storetest.Populate(t, src, storetest.T0, "http://127.0.0.1:9")
	count := func(s *Store, q string) int {
		t.Helper()
		var n int
		if err := s.pool.QueryRow(t.Context(), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const bodies = `SELECT count(*) FROM delivery_bodies`
	const inline = `SELECT count(*) FROM deliveries WHERE body IS NOT NULL`
	if count(src, bodies) == 0 {
		t.Fatal("Populate stored no shared body")
	}
	for range 2 {
		if _, err := storetest.Copy(t.Context(), src, dst, 3); err != nil {
			t.Fatal(err)
		}
		if got, want := count(dst, bodies), count(src, bodies); got != want {
			t.Errorf("the copy holds %d shared bodies; the source %d", got, want)
		}
		if got, want := count(dst, inline), count(src, inline); got > want {
			t.Errorf("the copy holds %d inline bodies; the source %d", got, want)
		}
	}
}

// TestTransferCoversEveryTable: every table of the schema is copied (store.TransferTables) or
// left out for a stated reason (store.TransferNotCopied).
func TestTransferCoversEveryTable(t *testing.T) {
	t.Parallel()
	st := openURL(t, newDatabase(t), Config{MaxConns: 2})
	rows, err := st.pool.Query(t.Context(), `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckTransferCovers(t, tables)
}
