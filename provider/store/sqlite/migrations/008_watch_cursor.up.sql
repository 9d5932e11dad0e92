-- Where each backend watcher (provider/watch) is in each watched Pulumi backend. One row per
-- stack ("project/stack") of a backend, plus one row with stack = '' that marks the backend as
-- baselined (its stacks and history that existed before it was first watched are not events).
-- present: the stack's checkpoint exists; generation counts the stack_deleted events of the
-- name, so a stack removed and created again gets new idempotency keys; last_nanos is the
-- timestamp in the name of the newest history entry turned into an event (it only grows).
CREATE TABLE watch_cursors (
	backend    TEXT    NOT NULL,
	stack      TEXT    NOT NULL,
	present    INTEGER NOT NULL DEFAULT 0,
	generation INTEGER NOT NULL DEFAULT 0,
	last_nanos INTEGER NOT NULL DEFAULT 0,
	last_key   TEXT    NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (backend, stack)
) WITHOUT ROWID;
