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

// TestTransferSharesBodies: a copy stores the bodies that deliveries of one event share once,
// as an emit does, and a copy run again stores none twice.
func TestTransferSharesBodies(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	src := openAt(t, filepath.Join(t.TempDir(), "src.db"), Config{Key: key})
	dst := openAt(t, filepath.Join(t.TempDir(), "dst.db"), Config{Key: key})
	storetest.Populate(t, src, storetest.T0, "http://127.0.0.1:9")
	count := func(s *Store, q string) int {
		t.Helper()
		var n int
		if err := s.DB().QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const bodies = `SELECT count(*) FROM delivery_bodies`
	const inline = `SELECT count(*) FROM deliveries WHERE body_ref = 0 AND length(body) > 0`
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
	st := openAt(t, filepath.Join(t.TempDir(), "webhooks.db"), Config{})
	rows, err := st.DB().QueryContext(t.Context(), `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	storetest.CheckTransferCovers(t, tables)
}
