package postgres

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

var localeDBs atomic.Int64

// TestHookPagingLocaleCollation runs the hook paging tests on a database whose collation is a
// locale's (ICU en-US: "a" before "B", punctuation ignored at first), not the harness's C:
// pages stay in byte order because the listing compares and orders by name COLLATE "C".
func TestHookPagingLocaleCollation(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	storetest.RunHookPaging(t, func(t *testing.T) store.Store {
		name := fmt.Sprintf("icu%d_%d", os.Getpid(), localeDBs.Add(1))
		err := srv.Exec(t.Context(), "CREATE DATABASE "+name+" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
		if err != nil {
			t.Fatalf("create an ICU en-US database: %v; the test needs a PostgreSQL built with ICU (Debian's postgresql package, which the deps script installs, is)", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = srv.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		})
		st := openURL(t, srv.URL(name), Config{MaxConns: 2})
		var localeOrder bool
		if err := st.Pool().QueryRow(t.Context(), `SELECT 'a' < 'B' AND 'a_b' < 'aB'`).Scan(&localeOrder); err != nil || !localeOrder {
			t.Fatalf("the database's collation is byte order (%v, %v): the test would not tell COLLATE \"C\" is needed", localeOrder, err)
		}
		return st
	})
}

// TestHookListPageUsesIndex: a page of one scope's hooks is read through hooks_scope_name_bytes
// in order, stopping after the page (no sort of the whole scope).
func TestHookListPageUsesIndex(t *testing.T) {
	t.Parallel()
	st := openURL(t, newDatabase(t), Config{})
	ctx := t.Context()
	for _, stack := range []string{"prod", "dev"} {
		if _, err := st.Pool().Exec(ctx, `INSERT INTO hooks (org, project, stack, name, created_at, updated_at)
			SELECT 'acme', 'web', $1, 'h' || lpad(i::text, 5, '0'), 0, 0 FROM generate_series(1, 5000) i`, stack); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Pool().Exec(ctx, `ANALYZE hooks`); err != nil {
		t.Fatal(err)
	}
	scope := webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
	for _, p := range []store.HookListParams{
		{Scope: scope, Exact: true, Limit: 101},
		{Scope: scope, Exact: true, After: "h02500", Limit: 101},
	} {
		q, args := hookListSQL(p)
		rows, err := st.Pool().Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		joined := strings.Join(plan, "\n")
		t.Logf("After %q Limit %d:\n%s", p.After, p.Limit, joined)
		if !strings.Contains(joined, "Index Scan using hooks_scope_name_bytes") || strings.Contains(joined, "Sort") ||
			!strings.Contains(joined, "(actual rows=101 loops=1)") {
			t.Fatalf("a page of 101 does not read 101 rows in order through hooks_scope_name_bytes:\n%s", joined)
		}
	}
}
