// Package watch turns what Pulumi writes into a self-managed ("DIY") backend into webhook
// events, so that running `pulumi up` is enough to fire webhooks, as it is with Pulumi Cloud.
//
// A Watcher watches one backend, given as the URL `pulumi login` takes (file://, s3://, gs://,
// azblob://, postgres://). It opens the bucket through gocloud.dev/blob as Pulumi's DIY backend
// does and reads, never writes, Pulumi's layout: .pulumi/meta.yaml says whether stacks are
// kept per project (version 1: .pulumi/stacks/<project>/<stack>.json) or in the legacy flat
// layout (version 0: .pulumi/stacks/<stack>.json). Each non-dry run of `pulumi up`,
// `refresh`, `destroy` or `import` leaves one history entry,
// .pulumi/history/<project>/<stack>/<stack>-<UnixNano>.history.json (possibly .gz or .zst),
// beside a copy of the checkpoint that the watcher ignores, as it ignores .bak files and
// never reads a checkpoint: payloads carry the entry's counts and names only.
//
// Events:
//
//   - stack_created when a stack's checkpoint first appears (after `pulumi stack init`),
//     stack_deleted when it disappears together with its history (`pulumi stack rm`);
//     a rename moves the checkpoint and the history, and fires neither (see Rename below).
//   - one event per new history entry: update_*, refresh_*, destroy_* (resource imports
//     run as updates), _succeeded or _failed after the entry's result, with the entry's
//     resourceChanges, kind, message, start and end times, and the user from its
//     environment (git author, else git committer, else the owner of the stack's lock seen
//     during the run; an empty name when nothing says).
//
// Stacks in the legacy layout are followed but fire no events: their paths do not name the
// project that every stack event needs.
//
// Exactly once. Each event is emitted through the engine with an idempotency key derived
// from the entry's path in the bucket (stack events: the checkpoint's path, the event, and
// the name's generation), and the cursor, kept in the store (store.WatchCursors), moves
// past an entry only after its event is stored. A watcher that dies between the two emits
// the entry again after restart and the engine replays the first result; two servers
// watching one backend race on the same keys and only one event is stored. A watcher that
// was down catches up on restart, oldest entry first.
//
// The first time a backend is watched (no cursor in the store), what it already holds is
// the baseline: its stacks and their history are recorded, not announced.
//
// Listing cost. Every poll lists .pulumi/stacks/ (its cost grows with the number of stacks)
// and, per stack, only the history entries whose timestamps fall in a window from the
// cursor (or the previous poll, less ClockSkewDefault) to now plus the skew. gocloud's
// blob API has no "start after" for every driver, so the window is listed by decimal
// prefixes of the timestamp in the name (at most windowPrefixesMax prefixes): the cost does
// not grow with the history already seen. Clocks of the machines running pulumi must be
// within the skew of the watcher's; an entry stamped further in the future is only late.
//
// Rename. `pulumi stack rename` writes the new checkpoint, moves the old one to .bak and
// moves the history entries, keeping their timestamps. A checkpoint that disappears while
// its history still exists is waited for; once the history is gone, a stack that now holds
// the entry the old name's cursor points at is the old one renamed: the cursor moves to
// the new name and no event fires (hooks are attached to names, so the old name's stack
// hooks stay with the old name). A renamed stack that never ran an update cannot be told
// from a removal and a creation, and fires stack_deleted and stack_created.
//
// Latency. A file:// backend is watched with filesystem notifications (fsnotify) and also
// polled every Interval, in case notifications are unavailable or missed; other backends
// are polled every Interval. A backend that cannot be read is an error at Open (naming the
// URL with its credentials masked) and later a logged warning, retried with backoff; it never
// stops anything else. Status reports a watcher's state and lag for /readyz, Collector for
// /metrics.
package watch
