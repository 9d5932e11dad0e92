package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sealing"
)

// Keys: store_meta.key_check holds the key check value of the key that seals the hook secrets
// (secretbox.Box.Check). Open refuses a key whose check value differs, naming where the key came
// from; a store without one (made before migration 004) gets it from the first key that opens
// its secrets. store_meta.digest_scheme says hooks.secret_digest holds keyed digests; Open
// recomputes the digests of older stores once.

const (
	// OpenLockSuffix is appended to the database path to name the lock every open store holds
	// shared (KeyRotate takes it exclusively).
	OpenLockSuffix = ".lock"
	// KeyFileNextSuffix is appended to the key file to name the new key while a rotation is
	// under way; Open finishes a rotation that was interrupted after its commit.
	KeyFileNextSuffix = ".next"
)

func (s *Store) currentBox() *secretbox.Box { return s.box.Load() }

// takeOpenLock takes the shared open lock, waiting up to busy for a key rotation in progress.
func takeOpenLock(ctx context.Context, path string, busy time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path+OpenLockSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open the store lock %s: %w", path+OpenLockSuffix, err)
	}
	deadline := time.Now().Add(busy)
	for {
		err := flockShared(f)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, errLocked) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("sqlite: lock %s: %w (a key rotation is running; wait for it to finish)", path+OpenLockSuffix, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Store) readMeta(ctx context.Context, q queryer) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, value FROM store_meta`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read store_meta: %w", err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, fmt.Errorf("sqlite: read store_meta: %w", err)
		}
		m[n] = v
	}
	return m, rows.Err()
}

func putMeta(ctx context.Context, tx queryer, name, value string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO store_meta (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return fmt.Errorf("sqlite: write store_meta %s: %w", name, err)
	}
	return nil
}

// checkKey makes sure the key opens this store (see the comment at the top of the file), and
// brings the digests up to date. A store with no sealed secrets adopts any key. With forget,
// a key that does not match makes the store forget the secrets it cannot open (forgetSecrets)
// instead of refusing.
func (s *Store) checkKey(ctx context.Context, keyCfg secretbox.Config, src secretbox.Source, forget bool) error {
	meta, err := s.readMeta(ctx, s.db)
	if err != nil {
		return err
	}
	box := s.currentBox()
	if want := meta[sealing.MetaKeyCheck]; want != "" && want != box.Check() && src == secretbox.SourceFile && s.finishRotation(keyCfg.KeyFile, want) {
		return s.checkKey(ctx, keyCfg, src, forget)
	}
	if meta[sealing.MetaKeyCheck] == box.Check() && meta[sealing.MetaDigestScheme] == sealing.DigestScheme {
		return nil
	}
	var mismatch bool
	err = s.withDurableTx(ctx, func(tx txq) error {
		mismatch = false
		meta, err := s.readMeta(ctx, tx)
		if err != nil {
			return err
		}
		secrets, err := readSealedSecrets(ctx, tx)
		if err != nil {
			return err
		}
		known := meta[sealing.MetaKeyCheck]
		wrongKey := known != "" && known != box.Check()
		if known == "" && len(secrets) > 0 {
			// A store from before key checks: the key is right if it opens any secret.
			wrongKey = true
			for _, sec := range secrets {
				if _, err := box.Open(sec.sealed, sealing.HookSecretAD(sec.ref)); err == nil {
					wrongKey = false
					break
				}
			}
		}
		switch {
		case wrongKey && len(secrets) == 0:
			s.logger.Warn("the store's key changed; it holds no webhook secrets, so the new key is taken")
		case wrongKey && forget:
			if err := s.forgetSecrets(ctx, tx, secrets); err != nil {
				return err
			}
			secrets = nil
		case wrongKey:
			mismatch = true
			return nil
		}
		if known != box.Check() {
			if err := putMeta(ctx, tx, sealing.MetaKeyCheck, box.Check()); err != nil {
				return err
			}
		}
		if meta[sealing.MetaDigestScheme] != sealing.DigestScheme {
			for _, sec := range secrets {
				digest := ""
				if pt, err := box.Open(sec.sealed, sealing.HookSecretAD(sec.ref)); err == nil {
					digest = box.Digest(pt)
				} else {
					s.logger.Error("the secret of a webhook cannot be decrypted; its deliveries will fail until it is set again", "hook", sec.ref.String())
				}
				if _, err := tx.ExecContext(ctx, `UPDATE hooks SET secret_digest = ? WHERE id = ?`, digest, sec.id); err != nil {
					return fmt.Errorf("sqlite: recompute the digest of webhook %s: %w", sec.ref, err)
				}
			}
			if err := putMeta(ctx, tx, sealing.MetaDigestScheme, sealing.DigestScheme); err != nil {
				return err
			}
			if len(secrets) > 0 {
				s.logger.Info("recomputed webhook secret digests as keyed digests", "webhooks", len(secrets))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if mismatch {
		if src == secretbox.SourceFileCreated {
			// A key made just now cannot be the store's: do not leave it to confuse the next run.
			_ = os.Remove(keyCfg.KeyFile)
		}
		return s.keyMismatch(keyCfg, src)
	}
	return nil
}

// ForgottenSecretReason is the DisabledReason of a webhook whose secret was forgotten because
// the key that sealed it was lost (Config.ForgetSecretsOfLostKey).
const ForgottenSecretReason = "its secret was sealed with a key that is lost, so it was forgotten: set the secret again, then set active to true"

// forgetSecrets drops every sealed secret and deactivates its webhook (discarding its queued
// deliveries), so that nothing is sent unsigned that used to be signed.
func (s *Store) forgetSecrets(ctx context.Context, tx txq, secrets []sealedSecret) error {
	now := store.UnixNanos(time.Now())
	s.forgotten = nil
	for _, sec := range secrets {
		if _, err := tx.ExecContext(ctx, `UPDATE hooks SET secret_box = NULL, secret_digest = '' WHERE id = ?`, sec.id); err != nil {
			return fmt.Errorf("sqlite: forget the secret of webhook %s: %w", sec.ref, err)
		}
		if err := disableHook(ctx, tx, sec.id, ForgottenSecretReason, "", now); err != nil {
			return err
		}
		s.forgotten = append(s.forgotten, sec.ref)
	}
	s.logger.Warn("forgot the webhook secrets sealed with a lost key and deactivated their webhooks", "webhooks", len(secrets))
	return nil
}

// ForgottenSecrets lists the webhooks whose secrets Open forgot (Config.ForgetSecretsOfLostKey).
func (s *Store) ForgottenSecrets() []store.HookRef { return s.forgotten }

func (s *Store) keyMismatch(keyCfg secretbox.Config, src secretbox.Source) error {
	return fmt.Errorf("sqlite: %s: %w: the secrets of %s were sealed with another key; start with the key that was in use when they were stored "+
		"(restore the key file %s, or set %s to that key); if that key is lost, `pulumi-webhooks key reset --forget-secrets` "+
		"makes this key the store's, forgetting the secrets and deactivating their webhooks until their secrets are set again",
		keyCfg.Describe(src), store.ErrKeyMismatch, s.path, keyCfg.KeyFile, EnvSecretKey)
}

// finishRotation completes a key rotation that committed but did not get to replace the key
// file: when <keyfile>.next holds the key whose check value the store has, it becomes the key
// file. It reports whether the store's box now uses that key.
func (s *Store) finishRotation(keyFile, check string) bool {
	next := keyFile + KeyFileNextSuffix
	key, err := secretbox.ReadKeyFile(next)
	if err != nil {
		return false
	}
	box, err := secretbox.New(key)
	if err != nil || box.Check() != check {
		return false
	}
	if err := os.Rename(next, keyFile); err != nil {
		return false
	}
	s.box.Store(box)
	s.logger.Warn("finished a key rotation that was interrupted: the key file now holds the new key", "key_file", keyFile)
	return true
}

type sealedSecret struct {
	id     int64
	ref    store.HookRef
	sealed []byte
}

func readSealedSecrets(ctx context.Context, q queryer) ([]sealedSecret, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, org, project, stack, environment, name, secret_box FROM hooks WHERE secret_box IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read webhook secrets: %w", err)
	}
	defer rows.Close()
	var out []sealedSecret
	for rows.Next() {
		var sec sealedSecret
		if err := rows.Scan(&sec.id, &sec.ref.Org, &sec.ref.Project, &sec.ref.Stack, &sec.ref.Environment, &sec.ref.Name, &sec.sealed); err != nil {
			return nil, fmt.Errorf("sqlite: read webhook secrets: %w", err)
		}
		out = append(out, sec)
	}
	return out, rows.Err()
}

// KeyRotate re-seals every secret under a new key; see store.Store.
func (s *Store) KeyRotate(ctx context.Context, p store.KeyRotateParams) (store.KeyRotateResult, error) {
	newBox, err := secretbox.New(p.NewKey)
	if err != nil {
		return store.KeyRotateResult{}, fmt.Errorf("sqlite: rotate the key: %w", err)
	}
	old := s.currentBox()
	if newBox.Check() == old.Check() {
		return store.KeyRotateResult{}, errors.New("sqlite: rotate the key: the new key is the current key: give a new one")
	}
	// Only this process may have the store open: others hold the old key in memory. Turning the
	// shared lock exclusive gives it up first when it fails, so it is taken shared again after.
	defer func() { _ = flockShared(s.openLock) }()
	if err := flockExclusive(s.openLock); err != nil {
		if errors.Is(err, errLocked) {
			return store.KeyRotateResult{}, fmt.Errorf("sqlite: rotate the key of %s: %w: stop every pulumi-webhooks server and command and every pulumi program using this store, then try again", s.path, store.ErrStoreBusy)
		}
		return store.KeyRotateResult{}, fmt.Errorf("sqlite: rotate the key: lock %s: %w", s.openLock.Name(), err)
	}
	var res store.KeyRotateResult
	err = s.withDurableTx(ctx, func(tx txq) error {
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
				return fmt.Errorf("sqlite: rotate the key: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE hooks SET secret_box = ?, secret_digest = ? WHERE id = ?`, sealed, digest, sec.id); err != nil {
				return fmt.Errorf("sqlite: rotate the key: webhook %s: %w", sec.ref, err)
			}
			res.Secrets++
		}
		n, err := resealDeploymentSettings(ctx, tx, old, newBox)
		if err != nil {
			return err
		}
		res.Secrets += n
		if len(bad) > 0 {
			return fmt.Errorf("sqlite: rotate the key: the secrets of %d webhooks cannot be decrypted with the current key (%s): set their secrets again or delete them, then rotate; nothing was changed",
				len(bad), strings.Join(bad, ", "))
		}
		if err := putMeta(ctx, tx, sealing.MetaKeyCheck, newBox.Check()); err != nil {
			return err
		}
		return putMeta(ctx, tx, sealing.MetaDigestScheme, sealing.DigestScheme)
	})
	if err != nil {
		return store.KeyRotateResult{}, err
	}
	s.box.Store(newBox)
	return res, nil
}

// failUndecryptable fails, inside a claim's transaction, the claimed deliveries whose hook's
// secret cannot be opened: each gets an attempt recording why and the reason is logged, while
// the rest of the claim goes ahead.
func (s *Store) failUndecryptable(ctx context.Context, tx queryer, cd *store.ClaimedDelivery, ref store.HookRef, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'failed', lease_until = 0, last_error = ?, updated_at = ? WHERE id = ?`,
		store.UndecryptableSecretReason, now, cd.ID); err != nil {
		return fmt.Errorf("sqlite: fail delivery %s: %w", cd.ID, err)
	}
	rec := store.Attempt{DeliveryID: cd.ID, HookID: cd.HookID, Number: cd.Attempts, Filter: cd.Filter, Kind: cd.Kind,
		StartedAt: store.FromUnixNanos(now), Error: store.UndecryptableSecretReason}
	if _, err := insertAttempt(ctx, tx, &rec, false); err != nil {
		return err
	}
	s.logger.Error("delivery failed: "+store.UndecryptableSecretReason, "delivery", cd.ID, "event", cd.EventID, "hook", ref.String())
	return nil
}
