package store

import (
	"context"
	"time"
)

// WatchCursor is where a backend watcher is in one stack of one watched Pulumi backend. The
// row with Stack "" marks the backend itself as baselined.
type WatchCursor struct {
	// Backend names the watched backend (its URL without credentials).
	Backend string
	// Stack is "project/stack" (or the bare stack name in the legacy layout), "" for the
	// backend's own row.
	Stack string
	// Present is true while the stack's checkpoint exists (and, for the backend's row, once
	// it is baselined).
	Present bool
	// Generation counts the stack_deleted events of this name; it is part of the stack
	// events' idempotency keys, so a stack removed and created again fires again.
	Generation int
	// LastNanos is the timestamp in the name of the newest history entry handled, and
	// LastKey that entry's path; LastNanos only grows.
	LastNanos int64
	LastKey   string
	UpdatedAt time.Time
}

// WatchCursorAdvanceParams records that the history entry Key, whose name carries Nanos, of
// Stack in Backend has been turned into an event. A cursor already past Nanos is kept.
type WatchCursorAdvanceParams struct {
	Backend string
	Stack   string
	Nanos   int64
	Key     string
	Now     time.Time
}

// WatchCursorPresenceParams records that Stack's checkpoint appeared (Present) or
// disappeared. It writes only if the stored generation is still Generation (a cursor that
// does not exist yet counts as generation 0); a disappearance also moves the generation on.
// It returns ErrLeaseLost when another watcher got there first.
type WatchCursorPresenceParams struct {
	Backend    string
	Stack      string
	Present    bool
	Generation int
	Now        time.Time
}

// WatchCursors is the store of backend watcher cursors. Backends that support watching
// implement it beside Store.
type WatchCursors interface {
	// WatchCursorList returns the cursors of backend, ordered by stack.
	WatchCursorList(ctx context.Context, backend string) ([]*WatchCursor, error)
	WatchCursorAdvance(ctx context.Context, p WatchCursorAdvanceParams) error
	WatchCursorPresence(ctx context.Context, p WatchCursorPresenceParams) error
}
