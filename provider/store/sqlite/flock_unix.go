//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// holderLocks says whether holder locks work here.
const holderLocks = true

// flockExclusive takes an exclusive flock on f without waiting; errLocked when another open
// file holds it. The lock goes when f is closed or the process ends.
func flockExclusive(f *os.File) error { return flockNow(f, syscall.LOCK_EX) }

// flockShared takes a shared flock on f without waiting (or turns an exclusive one shared);
// errLocked when another open file holds it exclusively.
func flockShared(f *os.File) error { return flockNow(f, syscall.LOCK_SH) }

// flockNow takes the flock how on f without waiting, retrying an interrupted call.
func flockNow(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLocked
		default:
			return err
		}
	}
}
