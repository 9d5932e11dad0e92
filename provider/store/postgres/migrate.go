package postgres

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/migration"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey is the transaction-level advisory lock migrations run under: N servers
// opening a fresh database at once queue on it, and all but the first find the work done.
var migrationLockKey = lockKey("migrate", "schema")

// migrate applies every migration not yet recorded in schema_migrations, all in one
// transaction under the migration lock.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migration.Load(migrationFS)
	if err != nil {
		return fmt.Errorf("postgres: load migrations: %w", err)
	}
	return s.applyMigrations(ctx, ms)
}

func (s *Store) applyMigrations(ctx context.Context, ms []migration.Migration) error {
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
		applied := make([]int, len(versions))
		for i, v := range versions {
			applied[i] = int(v)
		}
		pending, newer := migration.Pending(ms, applied)
		if newer > 0 {
			return fmt.Errorf("postgres: %s has schema version %d but this build knows up to %d: upgrade pulumi-webhooks", s.where, newer, ms[len(ms)-1].Version)
		}
		for _, m := range pending {
			if _, err := tx.Exec(ctx, m.Up); err != nil {
				return fmt.Errorf("postgres: apply migration %s: %w", m, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("postgres: record migration %s: %w", m, err)
			}
			s.logger.Info("applied store migration", "version", m.Version, "name", m.Name, "database", s.where)
		}
		return nil
	})
}

// migrateDown reverts the migrations newer than target, newest first (tests, and an operator
// going back a version).
func (s *Store) migrateDown(ctx context.Context, target int) error {
	ms, err := migration.Load(migrationFS)
	if err != nil {
		return fmt.Errorf("postgres: load migrations: %w", err)
	}
	return s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("postgres: take the migration lock: %w", err)
		}
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.Version <= target {
				break
			}
			tag, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, m.Version)
			if err != nil {
				return fmt.Errorf("postgres: revert migration %s: %w", m, err)
			}
			if tag.RowsAffected() == 0 {
				continue
			}
			if _, err := tx.Exec(ctx, m.Down); err != nil {
				return fmt.Errorf("postgres: revert migration %s: %w", m, err)
			}
		}
		return nil
	})
}
