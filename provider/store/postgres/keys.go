package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sealing"
)

// Keys: store_meta.key_check holds the check value of the key that seals the secrets
// (secretbox.Box.Check). Open refuses a key whose check value differs, naming where the key
// came from; the first key to open a store without one becomes its key.

// ErrNoKey is returned by Open when no key is given: PostgreSQL has no place beside the
// database in which to create one, and every server sharing the database needs the same key.
var ErrNoKey = errors.New("no secret key")

// loadKey resolves the key: Config.Key, else the environment variable, else an existing key
// file. It never creates a key.
func loadKey(cfg secretbox.Config, keyFile string) (*secretbox.Box, secretbox.Source, error) {
	if cfg.Key != nil || cfg.Getenv(cfg.EnvVar) != "" {
		box, src, err := secretbox.Load(cfg)
		if err != nil {
			return nil, "", fmt.Errorf("postgres: %w", err)
		}
		return box, src, nil
	}
	if keyFile != "" {
		key, err := secretbox.ReadKeyFile(keyFile)
		if err != nil {
			return nil, "", fmt.Errorf("postgres: read the key file %s: %w", keyFile, err)
		}
		box, err := secretbox.New(key)
		if err != nil {
			return nil, "", fmt.Errorf("postgres: the key file %s: %w", keyFile, err)
		}
		return box, secretbox.SourceFile, nil
	}
	return nil, "", fmt.Errorf("postgres: %w: set %s to the base64 of 32 random bytes (create one with `head -c 32 /dev/urandom | base64`), "+
		"and give every server sharing this database the same key; a PostgreSQL store never creates a key by itself", ErrNoKey, secretbox.EnvKey)
}

func (s *Store) currentBox() *secretbox.Box { return s.box.Load() }

func readMeta(ctx context.Context, q querier) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT name, value FROM store_meta`)
	if err != nil {
		return nil, fmt.Errorf("postgres: read store_meta: %w", err)
	}
	m := map[string]string{}
	var n, v string
	_, err = pgx.ForEachRow(rows, []any{&n, &v}, func() error { m[n] = v; return nil })
	if err != nil {
		return nil, fmt.Errorf("postgres: read store_meta: %w", err)
	}
	return m, nil
}

func putMeta(ctx context.Context, tx pgx.Tx, name, value string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO store_meta (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return fmt.Errorf("postgres: write store_meta %s: %w", name, err)
	}
	return nil
}

type sealedSecret struct {
	id     int64
	ref    store.HookRef
	sealed []byte
}

func readSealedSecrets(ctx context.Context, tx pgx.Tx) ([]sealedSecret, error) {
	rows, err := tx.Query(ctx, `SELECT id, org, project, stack, environment, name, secret_box FROM hooks WHERE secret_box IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: read webhook secrets: %w", err)
	}
	var out []sealedSecret
	var sec sealedSecret
	_, err = pgx.ForEachRow(rows, []any{&sec.id, &sec.ref.Org, &sec.ref.Project, &sec.ref.Stack, &sec.ref.Environment, &sec.ref.Name, &sec.sealed},
		func() error { out = append(out, sec); sec.sealed = nil; return nil })
	if err != nil {
		return nil, fmt.Errorf("postgres: read webhook secrets: %w", err)
	}
	return out, nil
}

// checkKey makes sure the key opens this store. A store with no sealed secrets adopts any
// key. With forget, a key that does not match makes the store forget the secrets it cannot
// open instead of refusing.
func (s *Store) checkKey(ctx context.Context, keyCfg secretbox.Config, src secretbox.Source, keyFile string, forget bool) error {
	box := s.currentBox()
	var mismatch bool
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		mismatch = false
		// Two servers opening a fresh database with different keys: one records its key first,
		// the other then finds it and is refused.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("postgres: take the key check lock: %w", err)
		}
		meta, err := readMeta(ctx, tx)
		if err != nil {
			return err
		}
		known := meta[sealing.MetaKeyCheck]
		if known == box.Check() && meta[sealing.MetaDigestScheme] == sealing.DigestScheme {
			return nil
		}
		secrets, err := readSealedSecrets(ctx, tx)
		if err != nil {
			return err
		}
		var settings int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deployment_settings WHERE secrets IS NOT NULL`).Scan(&settings); err != nil {
			return fmt.Errorf("postgres: count deployment settings secrets: %w", err)
		}
		wrongKey := known != "" && known != box.Check()
		switch {
		case wrongKey && len(secrets) == 0 && settings == 0:
			s.logger.Warn("the store's key changed; it holds no secrets, so the new key is taken")
		case wrongKey && forget:
			if err := s.forgetSecrets(ctx, tx, secrets); err != nil {
				return err
			}
		case wrongKey:
			mismatch = true
			return nil
		}
		if err := putMeta(ctx, tx, sealing.MetaKeyCheck, box.Check()); err != nil {
			return err
		}
		return putMeta(ctx, tx, sealing.MetaDigestScheme, sealing.DigestScheme)
	})
	if err != nil {
		return err
	}
	if mismatch {
		keyCfg.KeyFile = keyFile
		return fmt.Errorf("postgres: %s: %w: the secrets of %s were sealed with another key; start with the key that was in use when they were stored "+
			"(set %s to that key, the same on every server sharing the database); if that key is lost, `pulumi-webhooks key reset --forget-secrets` "+
			"makes this key the store's, forgetting the secrets and deactivating their webhooks until their secrets are set again",
			keyCfg.Describe(src), store.ErrKeyMismatch, s.where, secretbox.EnvKey)
	}
	return nil
}

// ForgottenSecretReason is the DisabledReason of a webhook whose secret was forgotten because
// the key that sealed it was lost (Config.ForgetSecretsOfLostKey).
const ForgottenSecretReason = "its secret was sealed with a key that is lost, so it was forgotten: set the secret again, then set active to true"

// forgetSecrets drops every sealed secret and deactivates its webhook, and drops the secrets of
// deployment settings, so that nothing is sent unsigned that used to be signed.
func (s *Store) forgetSecrets(ctx context.Context, tx pgx.Tx, secrets []sealedSecret) error {
	now := time.Now().UnixNano()
	s.forgotten = nil
	for _, sec := range secrets {
		if _, err := tx.Exec(ctx, `UPDATE hooks SET secret_box = NULL, secret_digest = '' WHERE id = $1`, sec.id); err != nil {
			return fmt.Errorf("postgres: forget the secret of webhook %s: %w", sec.ref, err)
		}
		if err := disableHook(ctx, tx, sec.id, ForgottenSecretReason, "", now); err != nil {
			return err
		}
		s.forgotten = append(s.forgotten, sec.ref)
	}
	tag, err := tx.Exec(ctx, `UPDATE deployment_settings SET secrets = NULL, secret_digests = '{}' WHERE secrets IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("postgres: forget deployment settings secrets: %w", err)
	}
	s.logger.Warn("forgot the secrets sealed with a lost key and deactivated their webhooks", "webhooks", len(secrets),
		"deployment_settings", tag.RowsAffected())
	return nil
}

// ForgottenSecrets lists the webhooks whose secrets Open forgot (Config.ForgetSecretsOfLostKey).
func (s *Store) ForgottenSecrets() []store.HookRef { return s.forgotten }

// KeyRotate re-seals every secret under a new key; see store.Store. Other open stores hold
// the open lock shared, so the exclusive lock it needs tells whether it is alone.
func (s *Store) KeyRotate(ctx context.Context, p store.KeyRotateParams) (store.KeyRotateResult, error) {
	newBox, err := secretbox.New(p.NewKey)
	if err != nil {
		return store.KeyRotateResult{}, fmt.Errorf("postgres: rotate the key: %w", err)
	}
	old := s.currentBox()
	if newBox.Check() == old.Check() {
		return store.KeyRotateResult{}, errors.New("postgres: rotate the key: the new key is the current key: give a new one")
	}
	unlock, err := s.session.exclusive(ctx)
	if err != nil {
		return store.KeyRotateResult{}, s.fail(err)
	}
	defer unlock()
	var res store.KeyRotateResult
	err = s.withTx(ctx, func(tx pgx.Tx) error {
		res = store.KeyRotateResult{}
		secrets, err := readSealedSecrets(ctx, tx)
		if err != nil {
			return err
		}
		var bad []string
		for _, sec := range secrets {
			sealed, digest, err := sealing.ResealHookSecret(old, newBox, sec.ref, sec.sealed)
			if errors.Is(err, sealing.ErrNotOpened) {
				bad = append(bad, sec.ref.String())
				continue
			}
			if err != nil {
				return fmt.Errorf("postgres: rotate the key: %w", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE hooks SET secret_box = $1, secret_digest = $2 WHERE id = $3`, sealed, digest, sec.id); err != nil {
				return fmt.Errorf("postgres: rotate the key: webhook %s: %w", sec.ref, err)
			}
			res.Secrets++
		}
		if len(bad) > 0 {
			return fmt.Errorf("postgres: rotate the key: the secrets of %d webhooks cannot be decrypted with the current key (%s): set their secrets again or delete them, then rotate; nothing was changed",
				len(bad), strings.Join(bad, ", "))
		}
		n, err := resealDeploymentSettings(ctx, tx, old, newBox)
		if err != nil {
			return err
		}
		res.Secrets += n
		if err := putMeta(ctx, tx, sealing.MetaKeyCheck, newBox.Check()); err != nil {
			return err
		}
		return putMeta(ctx, tx, sealing.MetaDigestScheme, sealing.DigestScheme)
	})
	if err != nil {
		return store.KeyRotateResult{}, s.fail(err)
	}
	s.box.Store(newBox)
	return res, nil
}

// exclusive takes the open lock exclusively on the session, or fails with ErrStoreBusy while
// another store has the database open; unlock gives it back (the shared hold stays).
func (ss *session) exclusive(ctx context.Context) (unlock func(), err error) {
	ss.mu.Lock()
	if err := ss.healthy(ctx); err != nil {
		ss.mu.Unlock()
		return nil, err
	}
	var ok bool
	err = ss.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, openLockKey).Scan(&ok)
	if err != nil {
		ss.mu.Unlock()
		return nil, fmt.Errorf("postgres: rotate the key: take the open lock: %w", err)
	}
	if !ok {
		ss.mu.Unlock()
		return nil, fmt.Errorf("postgres: rotate the key of %s: %w: stop every pulumi-webhooks server and command and every pulumi program using this database, then try again",
			ss.s.where, store.ErrStoreBusy)
	}
	return func() {
		defer ss.mu.Unlock()
		if ss.conn != nil {
			_, _ = ss.conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, openLockKey)
		}
	}, nil
}

// failUndecryptable fails, inside a claim's transaction, a claimed delivery whose hook's secret
// cannot be opened: it gets an attempt recording why, and the reason is logged.
func (s *Store) failUndecryptable(ctx context.Context, tx pgx.Tx, cd *store.ClaimedDelivery, ref store.HookRef, now int64) error {
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = 'failed', lease_until = 0, last_error = $1, updated_at = $2 WHERE id = $3`,
		store.UndecryptableSecretReason, now, cd.ID); err != nil {
		return fmt.Errorf("postgres: fail delivery %s: %w", cd.ID, err)
	}
	rec := store.Attempt{DeliveryID: cd.ID, HookID: cd.HookID, Number: cd.Attempts, Filter: cd.Filter, Kind: cd.Kind,
		StartedAt: store.FromUnixNanos(now), Error: store.UndecryptableSecretReason}
	if err := insertAttempt(ctx, tx, &rec, false); err != nil {
		return err
	}
	s.logger.Error("delivery failed: "+store.UndecryptableSecretReason, "delivery", cd.ID, "event", cd.EventID, "hook", ref.String())
	return nil
}
