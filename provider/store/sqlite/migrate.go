package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	up      string
	down    string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*migration{}
	for _, e := range entries {
		name := e.Name()
		base, dir, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), ".")
		if !ok || (dir != "up" && dir != "down") {
			return nil, fmt.Errorf("migration file %s: name it NNN_name.up.sql or NNN_name.down.sql", name)
		}
		num, label, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration file %s: name it NNN_name.up.sql or NNN_name.down.sql", name)
		}
		body, err := migrationFS.ReadFile("migrations/" + name)
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
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies every migration not yet recorded in schema_migrations, in one immediate
// transaction: a second process opening the same fresh file waits, then finds them applied.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("sqlite: load migrations: %w", err)
	}
	return s.withWriteTx(ctx, func(tx txq) error {
		if _, err := tx.tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("sqlite: create schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		maxApplied := 0
		rows, err := tx.tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("sqlite: read schema_migrations: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: read schema_migrations: %w", err)
			}
			applied[v] = true
			maxApplied = max(maxApplied, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: read schema_migrations: %w", err)
		}
		if latest := ms[len(ms)-1].version; maxApplied > latest {
			return fmt.Errorf("sqlite: %s has schema version %d but this build knows up to %d: upgrade pulumi-webhooks", s.path, maxApplied, latest)
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.tx.ExecContext(ctx, m.up); err != nil {
				return fmt.Errorf("sqlite: apply migration %03d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("sqlite: record migration %03d_%s: %w", m.version, m.name, err)
			}
			s.logger.Info("applied store migration", "version", m.version, "name", m.name, "path", s.path)
		}
		return nil
	})
}

// migrateDown reverts migrations newer than target, newest first.
func (s *Store) migrateDown(ctx context.Context, target int) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("sqlite: load migrations: %w", err)
	}
	return s.withWriteTx(ctx, func(tx txq) error {
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.version <= target {
				break
			}
			res, err := tx.tx.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = ?`, m.version)
			if err != nil {
				return fmt.Errorf("sqlite: revert migration %03d_%s: %w", m.version, m.name, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			if _, err := tx.tx.ExecContext(ctx, m.down); err != nil {
				return fmt.Errorf("sqlite: revert migration %03d_%s: %w", m.version, m.name, err)
			}
		}
		return nil
	})
}
