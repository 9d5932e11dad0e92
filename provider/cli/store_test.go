package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
)

// populated fills a SQLite store at path with records of every kind.
func populated(t *testing.T, path string) storetest.Populated {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	p := storetest.Populate(t, st, time.Now().Add(-time.Minute), "http://127.0.0.1:9")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestStoreMigrate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := populated(t, b.store)
	dst := filepath.Join(t.TempDir(), "copy.db")

	r := b.ok("store", "migrate", "--from", b.store, "--to", dst, "--batch-size", "7")
	for _, want := range []string{"hooks", "deliveries", "attempts", "watch cursors", "idempotency keys", "Copied "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the output lacks %q:\n%s", want, r.stdout)
		}
	}
	st := openSQLite(t, dst)
	ctx := t.Context()
	if s, err := st.HookSecretGet(ctx, p.OrgHook.ID); err != nil || s != storetest.PopulatedHookSecret {
		t.Errorf("the copied secret = %q, %v: the key file was not shared", s, err)
	}
	stats, err := st.DeliveryStats(ctx, time.Now())
	if err != nil || stats.Pending != p.Pending+p.Running || stats.Running != 0 {
		t.Errorf("copied queue = %+v, %v; want %d pending (the running one released), none running", stats, err, p.Pending+p.Running)
	}
	deps, err := st.DeploymentList(ctx, store.DeploymentListParams{Stack: p.Stack})
	if err != nil || len(deps) != 2 {
		t.Fatalf("copied deployments = %d, %v", len(deps), err)
	}
	for _, d := range deps {
		if d.Operation == "update" && (d.Status != store.DeploymentFailed || !strings.Contains(d.Reason, "migrated")) {
			t.Errorf("the accepted deployment was copied as %s (%q); want failed, its runner gone", d.Status, d.Reason)
		}
		if d.Operation == "refresh" && d.Status != store.DeploymentNotStarted {
			t.Errorf("the waiting deployment was copied as %s", d.Status)
		}
	}
	src := openSQLite(t, b.store)
	sc, _ := src.TransferCount(ctx)
	dc, _ := st.TransferCount(ctx)
	if sc != dc {
		t.Errorf("counts after the copy: %+v; source %+v", dc, sc)
	}
	_ = src.Close()
	_ = st.Close()

	// A non-empty target is refused; --resume copies nothing twice.
	b.fails([]string{"already holds", "--resume"}, "store", "migrate", "--from", b.store, "--to", dst)
	r = b.ok("store", "migrate", "--from", b.store, "--to", dst, "--resume")
	if !strings.Contains(r.stdout, "Copied 0 records") {
		t.Errorf("--resume of a finished copy:\n%s", r.stdout)
	}
}

func TestStoreMigrateRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	populated(t, b.store)
	dir := t.TempDir()
	other := filepath.Join(dir, "other.db")
	openSQLite(t, other).Close() // an empty store with a key of its own

	b.fails([]string{"--from and --to are required"}, "store", "migrate", "--to", other)
	b.fails([]string{"--from", "no such file"}, "store", "migrate", "--from", filepath.Join(dir, "missing.db"), "--to", other)
	b.fails([]string{"--to", `"mysql:" locations are not supported`}, "store", "migrate", "--from", b.store, "--to", "mysql://127.0.0.1/x")
	b.fails([]string{"are both"}, "store", "migrate", "--from", b.store, "--to", b.store)
	b.fails([]string{"--batch-size 0"}, "store", "migrate", "--from", b.store, "--to", other, "--batch-size", "0")
	b.fails([]string{"--to " + other, store.ErrKeyMismatch.Error()}, "store", "migrate", "--from", b.store, "--to", other)
	if c, err := openSQLite(t, other).TransferCount(t.Context()); err != nil || c.Total() != 0 {
		t.Errorf("a refused copy wrote %+v (%v)", c, err)
	}
}
