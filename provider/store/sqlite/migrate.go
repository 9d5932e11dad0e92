package sqlite

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/migration"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrate applies every migration not yet recorded in schema_migrations, in one immediate
// transaction: a second process opening the same fresh file waits, then finds them applied.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migration.Load(migrationFS)
	if err != nil {
		return fmt.Errorf("sqlite: load migrations: %w", err)
	}
	return s.withWriteTx(ctx, func(tx txq) error {
		if _, err := tx.tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("sqlite: create schema_migrations: %w", err)
		}
		var applied []int
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
			applied = append(applied, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: read schema_migrations: %w", err)
		}
		pending, newer := migration.Pending(ms, applied)
		if newer > 0 {
			return fmt.Errorf("sqlite: %s has schema version %d but this build knows up to %d: upgrade pulumi-webhooks", s.path, newer, ms[len(ms)-1].Version)
		}
		for _, m := range pending {
			if _, err := tx.tx.ExecContext(ctx, m.Up); err != nil {
				return fmt.Errorf("sqlite: apply migration %s: %w", m, err)
			}
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("sqlite: record migration %s: %w", m, err)
			}
			s.logger.Info("applied store migration", "version", m.Version, "name", m.Name, "path", s.path)
		}
		return nil
	})
}

// migrateDown reverts migrations newer than target, newest first.
func (s *Store) migrateDown(ctx context.Context, target int) error {
	ms, err := migration.Load(migrationFS)
	if err != nil {
		return fmt.Errorf("sqlite: load migrations: %w", err)
	}
	return s.withWriteTx(ctx, func(tx txq) error {
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.Version <= target {
				break
			}
			res, err := tx.tx.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = ?`, m.Version)
			if err != nil {
				return fmt.Errorf("sqlite: revert migration %s: %w", m, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			if _, err := tx.tx.ExecContext(ctx, m.Down); err != nil {
				return fmt.Errorf("sqlite: revert migration %s: %w", m, err)
			}
		}
		return nil
	})
}
