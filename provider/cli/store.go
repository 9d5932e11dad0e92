package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storeloc"
)

func newStoreCmd(o Opts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Manage the store itself",
	}
	cmd.AddCommand(newStoreMigrateCmd(o))
	return cmd
}

// storeMigrateOpts are the flags of `store migrate`.
type storeMigrateOpts struct {
	from, to  string
	resume    bool
	batchSize int
}

// migrateBatchSizeDefault is how many records one transaction of the target writes.
const migrateBatchSizeDefault = 500

func newStoreMigrateCmd(o Opts) *cobra.Command {
	var opts storeMigrateOpts
	cmd := &cobra.Command{
		Use:   "migrate --from FILE.db --to postgres://...",
		Short: "Copy every record of one store into another (SQLite to PostgreSQL)",
		Long: `migrate copies everything a store holds into an empty one, typically a SQLite file into
the PostgreSQL database that several servers will share: webhooks (their secrets still
sealed), API tokens, events, deliveries (pending ones included), attempts, deployment
requests, deployments, deployment settings, drift schedules, watch cursors and
idempotency keys. IDs are kept, so webhook IDs, delivery IDs and the delivery log's
pages stay the same.

Stop every server and command using --from first: the copy is read from one snapshot,
and what is written to --from afterwards is not copied. Deliveries that were running
are copied as pending (their attempt count kept), and deployments that were running
as failed, since the processes that held them are gone.

Both stores must use the same secret key: ` + EnvSecretKey + ` when it is set, else the
key file of --from (FILE.db.key), which is copied beside a SQLite --to that has none.
The copy refuses a --to whose key differs. Servers on a PostgreSQL store take the key
from ` + EnvSecretKey + `: set it to the content of the key file.

--to must be empty. Each batch is written in its own transaction; if the copy is
interrupted, run the same command again with --resume: records already copied are
kept and the rest is added.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStoreMigrate(cmd.Context(), cmd.OutOrStdout(), o, opts)
		},
	}
	cmd.Flags().StringVar(&opts.from, "from", "", "the store to copy: "+storeloc.Forms+" (required)")
	cmd.Flags().StringVar(&opts.to, "to", "", "the empty store to copy into: "+storeloc.Forms+" (required)")
	cmd.Flags().BoolVar(&opts.resume, "resume", false, "copy into a --to that already holds records (finish an interrupted copy); records already there are kept")
	cmd.Flags().IntVar(&opts.batchSize, "batch-size", migrateBatchSizeDefault, "records written per transaction")
	return cmd
}

func runStoreMigrate(ctx context.Context, out io.Writer, o Opts, opts storeMigrateOpts) (err error) {
	if opts.from == "" || opts.to == "" {
		return errors.New("--from and --to are required: give the store to copy and the empty store to copy it into, " +
			"e.g. --from ~/.local/share/pulumi-webhooks/webhooks.db --to postgres://hooks@127.0.0.1:5432/hooks")
	}
	if opts.batchSize < 1 {
		return fmt.Errorf("--batch-size %d: give a positive number of records", opts.batchSize)
	}
	from, err := storeloc.Parse("--from", opts.from)
	if err != nil {
		return err
	}
	to, err := storeloc.Parse("--to", opts.to)
	if err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("--from and --to are both %s: give another store to copy into", from)
	}
	if from.Kind == storeloc.SQLite {
		if _, err := os.Stat(from.Path); err != nil {
			return fmt.Errorf("--from %s: %w: give the database file to copy", from.Path, err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	// Both stores use one key: the environment's, else the key file of --from.
	keyFile := ""
	if o.Getenv(EnvSecretKey) == "" {
		if from.Kind != storeloc.SQLite {
			return fmt.Errorf("%s is not set: a PostgreSQL --from takes its key from it; set it to the store's key", EnvSecretKey)
		}
		keyFile = from.Path + sqlite.KeyFileSuffix
		if _, err := secretbox.ReadKeyFile(keyFile); err != nil {
			return fmt.Errorf("the key of --from: %w; set %s to the store's key, or restore its key file", err, EnvSecretKey)
		}
		if to.Kind == storeloc.SQLite {
			if err := shareKeyFile(keyFile, to.Path+sqlite.KeyFileSuffix); err != nil {
				return err
			}
		}
	}
	src, err := storeloc.Open(ctx, storeloc.Config{Location: opts.from, Setting: "--from", KeyFile: keyFile, Logger: log, Getenv: o.Getenv})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, src.Close()) }()
	// A SQLite --to uses its own key file (shared above when it had none); the import checks
	// that its key is the same.
	toKeyFile := keyFile
	if to.Kind == storeloc.SQLite {
		toKeyFile = ""
	}
	dst, err := storeloc.Open(ctx, storeloc.Config{Location: opts.to, Setting: "--to", KeyFile: toKeyFile, Logger: log, Getenv: o.Getenv})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dst.Close()) }()
	fromT, toT := store.Transfer(src), store.Transfer(dst)

	before, err := toT.TransferCount(ctx)
	if err != nil {
		return fmt.Errorf("--to %s: %w", to, err)
	}
	if before.Total() > 0 && !opts.resume {
		return fmt.Errorf("--to %s already holds %d records (%s): give an empty store, or --resume to finish an interrupted copy into it",
			to, before.Total(), describeCounts(before))
	}
	want, err := fromT.TransferCount(ctx)
	if err != nil {
		return fmt.Errorf("--from %s: %w", from, err)
	}
	check, err := fromT.TransferKeyCheck(ctx)
	if err != nil {
		return err
	}
	var res store.TransferImportResult
	now := time.Now()
	err = fromT.TransferExport(ctx, store.TransferExportParams{BatchSize: opts.batchSize}, func(b *store.TransferBatch) error {
		releaseHeldWork(b, now)
		r, err := toT.TransferImport(ctx, store.TransferImportParams{KeyCheck: check, Batch: b})
		if err != nil {
			return err
		}
		res.Inserted = res.Inserted.Add(r.Inserted)
		res.Existing = res.Existing.Add(r.Existing)
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrKeyMismatch) {
			return fmt.Errorf("--to %s: %w", to, err)
		}
		return fmt.Errorf("copy %s into %s: %w; %d records were copied: run the same command with --resume to finish",
			from, to, err, res.Inserted.Total())
	}
	after, err := toT.TransferCount(ctx)
	if err != nil {
		return fmt.Errorf("--to %s: %w", to, err)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORDS\tIN --from\tCOPIED\tALREADY THERE\t")
	ins, ex := res.Inserted.List(), res.Existing.List()
	for i, k := range want.List() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", k.Kind, k.N, ins[i].N, ex[i].N)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, k := range after.List() {
		if k.N < want.List()[i].N {
			return fmt.Errorf("--to %s holds %d %s after the copy, fewer than the %d of --from", to, k.N, k.Kind, want.List()[i].N)
		}
	}
	fmt.Fprintf(out, "Copied %d records from %s to %s.\n", res.Inserted.Total(), from, to)
	if to.Kind == storeloc.PostgreSQL && keyFile != "" {
		fmt.Fprintf(out, "Start every server on %s with %s set to the content of %s.\n", to, EnvSecretKey, keyFile)
	}
	return nil
}

// shareKeyFile copies the key file of the source beside a SQLite target that has none, so the
// target opens with the key its copied secrets are sealed with. An existing key file is left
// alone: the import compares its key with the source's.
func shareKeyFile(from, to string) error {
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	key, err := secretbox.ReadKeyFile(from)
	if err != nil {
		return fmt.Errorf("the key of --from: %w", err)
	}
	if err := secretbox.WriteKeyFile(to, key); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	return nil
}

// releaseHeldWork turns the work the source's processes held into work the target's can take:
// running deliveries become pending (their attempt counts kept: the attempt may have been
// sent), and accepted or running deployments fail, as they would when their runner dies.
func releaseHeldWork(b *store.TransferBatch, now time.Time) {
	for _, d := range b.Deliveries {
		if d.State != store.DeliveryRunning {
			continue
		}
		d.LastError = store.ReleasedDeadReason + d.ClaimedBy + "): the store was migrated"
		d.State, d.ClaimedBy, d.LeaseUntil, d.NextAttemptAt = store.DeliveryPending, "", time.Time{}, now
	}
	for _, d := range b.Deployments {
		if d.Status != store.DeploymentAccepted && d.Status != store.DeploymentRunning {
			continue
		}
		d.Reason = store.DeploymentFailDeadReason + d.Worker + "): the store was migrated; it is not re-run, because a half-finished " +
			"operation may have changed the stack; look at the stack, then start a new deployment"
		d.Status, d.FinishedAt = store.DeploymentFailed, now
	}
}

// describeCounts lists the non-zero counts.
func describeCounts(c store.TransferCounts) string {
	s := ""
	for _, k := range c.List() {
		if k.N == 0 {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", k.N, k.Kind)
	}
	return s
}
