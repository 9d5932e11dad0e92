//go:build !unix

package sqlite

import "os"

// holderLocks says whether holder locks work here: without flock, dead holders' claims are left
// to their leases.
const holderLocks = false

func flockExclusive(*os.File) error { return errLocked }

func flockShared(*os.File) error { return nil }
