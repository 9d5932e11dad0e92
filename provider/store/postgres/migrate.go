package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version  int
	name     string
	up, down string
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*migration{}
	for _, e := range entries {
		name := e.Name()
		base, dir, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), ".")
		num, label, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || (dir != "up" && dir != "down") || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration file %s: name it NNN_name.up.sql or NNN_name.down.sql", name)
		}
		body, err := fs.ReadFile(fsys, "migrations/"+name)
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &migration{version: v, name: label}
			byVersion[v] = m
		}
		if dir == "up" {
			m.up = string(body)
		} else {
			m.down = string(body)
		}
	}
	var out []migration
	for _, m := range byVersion {
		if m.up == "" {
			return nil, fmt.Errorf("migration %03d_%s has no .up.sql file", m.version, m.name)
		}
		out = append(out, *m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no migrations found")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrationLockKey is the transaction-level advisory lock migrations run under: N servers
// opening a fresh database at once queue on it, and all but the first find the work done.
var migrationLockKey = lockKey("migrate", "schema")

// migrate applies every migration not yet recorded in schema_migrations, all in one
// transaction under the migration lock.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return fmt.Errorf("postgres: load migrations: %w", err)
	}
	return s.applyMigrations(ctx, ms)
}

func (s *Store) applyMigrations(ctx context.Context, ms []migration) error {
	return s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("postgres: take the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`); err != nil {
			return fmt.Errorf("postgres: create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("postgres: read schema_migrations: %w", err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("postgres: read schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		maxApplied := 0
		for _, v := range versions {
			applied[int(v)] = true
			maxApplied = max(maxApplied, int(v))
		}
		if latest := ms[len(ms)-1].version; maxApplied > latest {
			return fmt.Errorf("postgres: %s has schema version %d but this build knows up to %d: upgrade pulumi-webhooks", s.where, maxApplied, latest)
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.up); err != nil {
				return fmt.Errorf("postgres: apply migration %03d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("postgres: record migration %03d_%s: %w", m.version, m.name, err)
			}
			s.logger.Info("applied store migration", "version", m.version, "name", m.name, "database", s.where)
		}
		return nil
	})
}

// migrateDown reverts the migrations newer than target, newest first (tests, and an operator
// going back a version).
func (s *Store) migrateDown(ctx context.Context, target int) error {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return fmt.Errorf("postgres: load migrations: %w", err)
	}
	return s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("postgres: take the migration lock: %w", err)
		}
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.version <= target {
				break
			}
			tag, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, m.version)
			if err != nil {
				return fmt.Errorf("postgres: revert migration %03d_%s: %w", m.version, m.name, err)
			}
			if tag.RowsAffected() == 0 {
				continue
			}
			if _, err := tx.Exec(ctx, m.down); err != nil {
				return fmt.Errorf("postgres: revert migration %03d_%s: %w", m.version, m.name, err)
			}
		}
		return nil
	})
}
