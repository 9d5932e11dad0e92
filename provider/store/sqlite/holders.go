package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Dead holders: every worker that claims deliveries holds an exclusive flock on its own file in
// <database>.holders/ for as long as its Store is open. The operating system drops the lock when
// the process ends, however it ends (SIGKILL, power loss of a container, OOM killer). A claim
// looks at the holders of running deliveries (HolderCheckInterval apart at most) and tries
// each one's lock: a lock it can take belongs to a dead holder, whose deliveries it puts back
// in the same transaction. A holder with no file at all is left to its lease: it may be a
// process of an older version that never took a lock.

// HoldersDirSuffix is appended to the database path to name the directory of holder locks.
const HoldersDirSuffix = ".holders"

// HolderCheckInterval bounds how often one store looks for dead holders while claiming.
const HolderCheckInterval = time.Second

// holderStaleAfter is the age after which an unlocked holder file with no claims left is
// removed when a store takes its first lock (a process that died holding no claims leaves one).
const holderStaleAfter = time.Hour

// holders keeps this store's holder locks and probes other holders'.
type holders struct {
	dir string

	mu        sync.Mutex
	own       map[string]*os.File // worker -> its locked file
	swept     bool
	lastCheck time.Time
}

func newHolders(dbPath string) *holders {
	return &holders{dir: dbPath + HoldersDirSuffix, own: map[string]*os.File{}}
}

// holderFile names the lock file of worker: a readable prefix and a digest, so any worker name
// (they hold slashes and colons) maps to one safe, distinct file name.
func (h *holders) holderFile(worker string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, worker)
	if len(safe) > 48 {
		safe = safe[:48]
	}
	sum := sha256.Sum256([]byte(worker))
	return filepath.Join(h.dir, safe+"-"+hex.EncodeToString(sum[:8])+".lock")
}

// acquire makes sure this store holds worker's lock. It is cheap once the lock is held.
func (h *holders) acquire(worker string) error {
	if !holderLocks {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.own[worker]; ok {
		return nil
	}
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return fmt.Errorf("sqlite: create the holder lock directory %s: %w", h.dir, err)
	}
	if !h.swept {
		h.swept = true
		h.sweep()
	}
	path := h.holderFile(worker)
	for i := 0; ; i++ {
		f, err := lockFile(path, true)
		if err == nil {
			// Write the name for whoever looks at the directory; the lock is what counts.
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(worker+"\n"), 0)
			h.own[worker] = f
			return nil
		}
		// Another store is probing the file this very moment (it gives the lock back at once),
		// or the same worker name is used by two stores, which is a bug of the caller.
		if !errors.Is(err, errLocked) || i >= 100 {
			return fmt.Errorf("sqlite: lock %s for worker %q: %w; give every store's worker a distinct name", path, worker, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sweep removes lock files that nobody holds and that have not changed for holderStaleAfter:
// their holders died long ago and any claim they had has since expired. h.mu is held.
func (h *holders) sweep() {
	entries, err := os.ReadDir(h.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !strings.HasSuffix(e.Name(), ".lock") || time.Since(info.ModTime()) < holderStaleAfter {
			continue
		}
		path := filepath.Join(h.dir, e.Name())
		if f, err := lockFile(path, false); err == nil {
			_ = os.Remove(path)
			f.Close()
		}
	}
}

// deadHolder is a dead holder's lock, held by the store that found it until its claims are
// released (then the file is removed) or the release failed (then it is only unlocked).
type deadHolder struct {
	worker string
	path   string
	f      *os.File
}

func (d deadHolder) finish(released bool) {
	if released {
		_ = os.Remove(d.path)
	}
	d.f.Close()
}

// probe returns the lock of worker when it is dead, nil when it is alive or cannot be judged.
func (h *holders) probe(worker string) *deadHolder {
	if !holderLocks {
		return nil
	}
	h.mu.Lock()
	_, mine := h.own[worker]
	h.mu.Unlock()
	if mine {
		return nil
	}
	path := h.holderFile(worker)
	f, err := lockFile(path, false)
	if err != nil {
		return nil // locked (alive), missing (unknown: left to the lease), or unreadable
	}
	return &deadHolder{worker: worker, path: path, f: f}
}

// due reports whether a check for dead holders is due, and if so starts the next interval.
func (h *holders) due(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.lastCheck.IsZero() && now.Sub(h.lastCheck) < HolderCheckInterval {
		return false
	}
	h.lastCheck = now
	return true
}

// close gives up every lock this store holds: its workers count as dead from now on. The file
// of a worker that still holds claims stays, so that the next claim elsewhere finds it
// unlocked and releases them; stillHolds says whether that is the case.
func (h *holders) close(stillHolds func(worker string) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w, f := range h.own {
		if !stillHolds(w) {
			_ = os.Remove(f.Name())
		}
		f.Close()
		delete(h.own, w)
	}
}

// holdsClaims reports whether worker has running deliveries (true when that cannot be read).
func (s *Store) holdsClaims(worker string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	err := s.db.QueryRowContext(ctx, holderClaimsSQL, worker).Scan(&n)
	return err != nil || n > 0
}

// errLocked is returned by lockFile when another open file holds the lock.
var errLocked = errors.New("the lock is held by a live process")

// lockFile opens path (creating it when create is set) and takes an exclusive lock on it
// without waiting. It checks that the file it locked is still the one at path: a prober may
// have removed it in between, and a lock on a removed file protects nothing.
func lockFile(path string, create bool) (*os.File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flockExclusive(f); err != nil {
		f.Close()
		return nil, err
	}
	fi, err1 := f.Stat()
	pi, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(fi, pi) {
		f.Close()
		if create {
			return nil, errLocked // removed under us: try again
		}
		return nil, fs.ErrNotExist
	}
	return f, nil
}

// Holder queries read running deliveries only, through the partial index deliveries_running
// (TestHolderQueriesUseIndexes).
const (
	holdersRunningSQL = `SELECT DISTINCT claimed_by FROM deliveries WHERE state = 'running'`
	holderReleaseSQL  = `UPDATE deliveries SET state = 'pending', lease_until = 0, last_error = ?1, updated_at = ?2
			WHERE rowid IN (SELECT rowid FROM deliveries WHERE state = 'running' AND claimed_by = ?3)`
	holderClaimsSQL = `SELECT COUNT(*) FROM deliveries WHERE state = 'running' AND claimed_by = ?`
)

// releaseDead finds the dead holders of running deliveries and puts their deliveries back,
// inside tx. The returned holders' locks are held until the caller calls finish on them after
// the transaction.
func (s *Store) releaseDead(ctx context.Context, tx queryer, now int64) ([]*deadHolder, int, error) {
	rows, err := tx.QueryContext(ctx, holdersRunningSQL)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: find the holders of running deliveries: %w", err)
	}
	var workers []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("sqlite: find the holders of running deliveries: %w", err)
		}
		workers = append(workers, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: find the holders of running deliveries: %w", err)
	}
	var dead []*deadHolder
	total := 0
	for _, w := range workers {
		d := s.holders.probe(w)
		if d == nil {
			continue
		}
		dead = append(dead, d)
		res, err := tx.ExecContext(ctx, holderReleaseSQL, store.ReleasedDeadReason+w+")", now, w)
		if err != nil {
			for _, d := range dead {
				d.finish(false)
			}
			return nil, 0, fmt.Errorf("sqlite: release the claims of dead holder %q: %w", w, err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return dead, total, nil
}

// finishRelease removes the released holders' files (or only unlocks them when the
// transaction failed) and logs what was released.
func (s *Store) finishRelease(dead []*deadHolder, n int, err error) {
	for _, d := range dead {
		d.finish(err == nil)
	}
	if err == nil && len(dead) > 0 {
		names := make([]string, len(dead))
		for i, d := range dead {
			names[i] = d.worker
		}
		s.logger.Warn("released the claims of delivery processes that ended without recording their attempts; those deliveries will be retried now",
			"holders", names, "deliveries", n)
	}
}

// claimRelease is the dead-holder release a claim did in its transaction.
type claimRelease struct {
	dead []*deadHolder
	n    int
}

// releaseBeforeClaim releases dead holders' claims inside a claim's transaction when a check is
// due (HolderCheckInterval).
func (s *Store) releaseBeforeClaim(ctx context.Context, tx queryer, now int64, rel *claimRelease) error {
	for _, d := range rel.dead { // a retried transaction function starts over
		d.finish(false)
	}
	*rel = claimRelease{}
	if !s.holders.due(time.Now()) {
		return nil
	}
	var err error
	rel.dead, rel.n, err = s.releaseDead(ctx, tx, now)
	return err
}

// DeliveryReleaseDead releases the claims of dead holders; see store.Store.
func (s *Store) DeliveryReleaseDead(ctx context.Context, p store.DeliveryReleaseDeadParams) (store.DeliveryReleaseDeadResult, error) {
	var res store.DeliveryReleaseDeadResult
	var dead []*deadHolder
	err := s.withWriteTx(ctx, func(tx txq) error {
		var err error
		dead, res.Deliveries, err = s.releaseDead(ctx, tx, store.UnixNanos(p.Now))
		return err
	})
	s.finishRelease(dead, res.Deliveries, err)
	if err != nil {
		return store.DeliveryReleaseDeadResult{}, err
	}
	for _, d := range dead {
		res.Holders = append(res.Holders, d.worker)
	}
	return res, nil
}
