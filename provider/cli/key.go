package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storeloc"
)

// EnvSecretKey holds the base64 key sealing webhook secrets, when the operator keeps it out of
// a key file.
const EnvSecretKey = sqlite.EnvSecretKey

func newKeyCmd(o Opts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the key that seals webhook secrets",
		Long: `Webhook secrets are sealed at rest with a 32-byte key: ` + EnvSecretKey + ` (base64) when it
is set, else the key file beside the database (<store>.key). The store records a check value
of its key, so a process started with another key refuses to start and says where its key
came from.`,
	}
	cmd.AddCommand(newKeyRotateCmd(o), newKeyResetCmd(o))
	return cmd
}

func newKeyResetCmd(o Opts) *cobra.Command {
	var (
		so     storeOpts
		forget bool
	)
	cmd := &cobra.Command{
		Use:   "reset --forget-secrets",
		Short: "Make the current key the store's when the old one is lost, forgetting the secrets",
		Long: `reset is for a lost key: the store's secrets were sealed with a key nobody has any more,
so every process refuses to start. With --forget-secrets it makes the current key (` + EnvSecretKey + `,
or the key file, created if missing) the store's: every webhook secret is forgotten and each
webhook that had one is deactivated, with a reason saying so, so that nothing that used to be
signed is sent unsigned. Set each listed webhook's secret again and reactivate it (pulumi up
does both for webhooks managed by Pulumi). When the key matches the store, nothing changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !forget {
				return errors.New("--forget-secrets is required: reset forgets every webhook secret sealed with the lost key; say so to go ahead")
			}
			loc, err := so.location()
			if err != nil {
				return err
			}
			if loc.Kind == storeloc.SQLite {
				if _, err := os.Stat(loc.Path); err != nil {
					return fmt.Errorf("--store %s: %w: give the database file whose key to reset", loc.Path, err)
				}
			}
			cfg := so.config(slog.New(slog.DiscardHandler), o.Getenv)
			cfg.ForgetSecretsOfLostKey = true
			st, err := storeloc.Open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			forgotten := st.ForgottenSecrets()
			if err := st.Close(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(forgotten) == 0 {
				fmt.Fprintln(out, "The key opens the store: nothing was forgotten.")
				return nil
			}
			fmt.Fprintf(out, "Forgot the secrets of %d webhooks and deactivated them; set each one's secret again and reactivate it:\n", len(forgotten))
			for _, ref := range forgotten {
				fmt.Fprintln(out, "  "+formatHookID(ref))
			}
			return nil
		},
	}
	so.addFlags(cmd)
	cmd.Flags().BoolVar(&forget, "forget-secrets", false, "forget every webhook secret the current key cannot open (required)")
	return cmd
}

// keyRotateOpts are the flags of `key rotate`.
type keyRotateOpts struct {
	store      storeOpts
	newKeyFile string
}

func newKeyRotateCmd(o Opts) *cobra.Command {
	var opts keyRotateOpts
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-seal every webhook secret under a new key",
		Long: `rotate re-seals every webhook secret under a new key, in one transaction, and records
the new key's check value: from then on only the new key opens the store. Stop every
pulumi-webhooks server and command and every pulumi program using the store first: they
hold the old key, and rotate refuses to run while any of them has the store open.

With a key file (no ` + EnvSecretKey + `), rotate generates the new key, writes it to
<key file>.next, rotates, and renames it over the key file (atomically). If it is
interrupted after the rotation committed, the next start finds <key file>.next and
finishes the rename. Back the new key file up with the database.

With ` + EnvSecretKey + `, rotate cannot change your environment: give --new-key-file PATH.
A new key is generated into PATH (mode 0600), or read from it if it exists. After the
rotation, set ` + EnvSecretKey + ` to the content of PATH wherever the store is used,
then delete PATH. The key is never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeyRotate(cmd, o, opts)
		},
	}
	opts.store.addFlags(cmd)
	cmd.Flags().StringVar(&opts.newKeyFile, "new-key-file", "",
		"where the new key goes (created with mode 0600) or comes from (an existing key file); required when "+EnvSecretKey+" holds the current key")
	return cmd
}

func runKeyRotate(cmd *cobra.Command, o Opts, opts keyRotateOpts) (err error) {
	ctx := cmd.Context()
	loc, err := opts.store.location()
	if err != nil {
		return err
	}
	path := loc.String()
	if loc.Kind == storeloc.SQLite {
		if _, err := os.Stat(loc.Path); err != nil {
			return fmt.Errorf("--store %s: %w: give the database file whose key to rotate", loc.Path, err)
		}
	}
	// A PostgreSQL store has no key file beside it: its key comes from the environment.
	fromEnv := o.Getenv(EnvSecretKey) != "" || loc.Kind == storeloc.PostgreSQL
	keyFile := loc.Path + sqlite.KeyFileSuffix
	target := opts.newKeyFile // where the new key is kept
	if fromEnv && target == "" {
		return fmt.Errorf("the current key comes from %s, which this command cannot change: give --new-key-file PATH; "+
			"the new key is written there, and you then set %s to its content", EnvSecretKey, EnvSecretKey)
	}
	if !fromEnv && target == "" {
		target = keyFile + sqlite.KeyFileNextSuffix
	}
	newKey, created, err := newKeyAt(target, opts.newKeyFile != "")
	if err != nil {
		return fmt.Errorf("--new-key-file: %w", err)
	}
	st, err := storeloc.Open(ctx, opts.store.config(slog.New(slog.DiscardHandler), o.Getenv))
	if err != nil {
		if created {
			_ = os.Remove(target)
		}
		return err
	}
	res, rerr := st.KeyRotate(ctx, store.KeyRotateParams{NewKey: newKey})
	err = st.Close()
	if rerr != nil {
		if created {
			_ = os.Remove(target)
		}
		return rerr
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if fromEnv {
		fmt.Fprintf(out, "Re-sealed %d webhook secrets under the new key in %s.\n"+
			"Now set %s to the content of that file for every process using %s, then delete the file;\n"+
			"a process started with the old key refuses to start.\n", res.Secrets, target, EnvSecretKey, path)
		return nil
	}
	if opts.newKeyFile != "" && target != keyFile {
		if err := secretbox.WriteKeyFile(keyFile, newKey); err != nil {
			return fmt.Errorf("the secrets are sealed under the key in %s, but replacing the key file failed: %w; copy %s over %s", target, err, target, keyFile)
		}
	} else if err := os.Rename(target, keyFile); err != nil {
		return fmt.Errorf("the secrets are sealed under the key in %s, but replacing the key file failed: %w; the next start finishes the rename", target, err)
	}
	syncDir(filepath.Dir(keyFile))
	fmt.Fprintf(out, "Re-sealed %d webhook secrets; the key file %s now holds the new key. Back it up with the database:\nthe old key no longer opens it.\n", res.Secrets, keyFile)
	return nil
}

// newKeyAt returns the key in the key file at path, when existing is allowed and it exists, or
// writes a new random key there; created says whether it wrote one.
func newKeyAt(path string, existing bool) ([]byte, bool, error) {
	if existing {
		key, err := secretbox.ReadKeyFile(path)
		if err == nil {
			return key, false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, err
		}
	}
	key, err := secretbox.GenerateKey()
	if err != nil {
		return nil, false, err
	}
	if err := secretbox.WriteKeyFile(path, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
