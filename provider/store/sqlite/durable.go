package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Durability. The connections run with synchronous=NORMAL: a commit is written to the WAL
// but not fsynced, so a power loss (not a process crash) can lose the last commits. That is
// fine for a recorded completion or a claim, whose loss only causes a duplicate request, but
// not for what a caller was told is stored: an event answered with 202, a webhook created or
// deleted, a token, a key rotation. Those go through withDurableTx, which after the commit
// fsyncs the WAL outside the write lock, as a group commit: a writer whose commit an fsync
// already covered returns without one, so concurrent emitters share fsyncs and the delivery
// loop's transactions never wait behind them. SQLite syncs the WAL before every checkpoint
// and the database after it, so a commit already checkpointed stays durable too.

// syncFile makes a file's contents durable; tests replace it to watch the syncs.
var syncFile = func(f *os.File) error { return f.Sync() }

// walSyncer group-commits fsyncs of the WAL.
type walSyncer struct {
	path string // the -wal file
	// committed counts durable-wanting commits, numbered after they commit.
	committed atomic.Uint64

	mu     sync.Mutex
	synced uint64      // every commit numbered <= synced is durable
	inode  os.FileInfo // the WAL file last synced, to notice a new one
}

func newWALSyncer(dbPath string) *walSyncer { return &walSyncer{path: dbPath + "-wal"} }

// commit numbers a commit that has just completed.
func (w *walSyncer) commit() uint64 { return w.committed.Add(1) }

// wait returns once commit seq is durable, syncing the WAL if no sync since covers it.
func (w *walSyncer) wait(seq uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.synced >= seq {
		return nil // a sync that started after this commit has finished
	}
	target := w.committed.Load() // every commit up to here has completed: this sync covers it
	f, err := os.Open(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		// No WAL: the last connection checkpointed it into the database, syncing it, and
		// removed it.
		w.synced = target
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: open the WAL to sync it: %w", err)
	}
	defer f.Close()
	if err := syncFile(f); err != nil {
		return fmt.Errorf("sqlite: sync the WAL: %w", err)
	}
	if fi, err := f.Stat(); err == nil && (w.inode == nil || !os.SameFile(fi, w.inode)) {
		// A new WAL file: make its directory entry durable too.
		if d, err := os.Open(filepath.Dir(w.path)); err == nil {
			err = syncFile(d)
			d.Close()
			if err != nil {
				return fmt.Errorf("sqlite: sync the store directory: %w", err)
			}
		}
		w.inode = fi
	}
	w.synced = target
	return nil
}

// withDurableTx is withWriteTx for a write the caller acknowledges: it returns once the
// commit is on disk.
func (s *Store) withDurableTx(ctx context.Context, fn func(tx txq) error) error {
	if err := s.withWriteTx(ctx, fn); err != nil {
		return err
	}
	if err := s.wal.wait(s.wal.commit()); err != nil {
		return fmt.Errorf("%w; the change was committed but may not survive a power loss", err)
	}
	return nil
}
