package store

import "context"

// Waker is implemented by backends that can tell a process when another process has stored
// work (PostgreSQL: LISTEN/NOTIFY). The engine's claim loop then starts on new deliveries at
// once instead of at its next poll; polling stays, as the fallback for a missed signal.
type Waker interface {
	// StoreWake returns a channel that receives (without blocking the sender; signals may merge)
	// whenever any process stores due work. It stops receiving when ctx ends.
	StoreWake(ctx context.Context) <-chan struct{}
}
