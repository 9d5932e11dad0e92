// Package postgres is the PostgreSQL store: the store seam (store.Store, store.WatchCursors)
// on github.com/jackc/pgx/v5, for several pulumi-webhooks servers sharing one database.
//
// Schema. Versioned migrations (migrations/NNN_name.up.sql, embedded) are applied by Open and
// recorded in schema_migrations, under a transaction-level advisory lock, so that N servers
// starting at once on a fresh database migrate it once while the others wait and find it done.
// Timestamps are unix nanoseconds in bigint columns, as in SQLite, so the seam's times
// round-trip exactly. A body several deliveries of one event share is stored once
// (delivery_bodies), and a raw body is read from the event. Statements are prepared once per
// connection and cached (pgx's default exec mode).
//
// Key. Webhook and deployment secrets are sealed with the same scheme as the SQLite store
// (provider/secretbox: the same sealed format, key check value and keyed digest), so a store
// migrated from SQLite opens with the same key. There is no file beside a PostgreSQL database
// in which to create a key on first use, and the servers sharing a database must share its key,
// so Open never makes one up: the key comes from Config.Key, else PULUMI_WEBHOOKS_SECRET_KEY
// (base64 of 32 bytes), else Config.KeyFile (an existing key file, as SQLite's), and Open fails
// naming PULUMI_WEBHOOKS_SECRET_KEY and how to create a key when none is given. Generating one
// per server would give the second server a key that does not match the first's. The database
// records the key's check value (store_meta); a server started with another key is refused
// (store.ErrKeyMismatch), as with SQLite.
//
// Concurrency. Claims run in one transaction per round: the candidates are read from partial
// indexes, picked fairly in Go exactly as the SQLite store does (first attempts and retries
// take turns; the organization, then the endpoint, with the fewest running goes first), and
// the per-endpoint cap is held across every server by a transaction-level advisory lock per
// endpoint: a claim locks the endpoints it picked (in one order, so claims never deadlock),
// counts again what is running there now that every earlier claim of those endpoints has
// committed, trims its picks to the cap, and marks them running with FOR UPDATE SKIP LOCKED.
// A round (DeliveryCycle) records the finished attempts and claims in the same transaction.
// An emit can store its deliveries already claimed by the emitting process's idle workers
// (store.EmitClaimer, emitclaim.go) under the same rules: only while nothing in the queue is
// due, within the caps counted the same way after the same endpoint locks, its holder
// registered as a claim registers it.
//
// Durability. What a caller is told is stored (an emit with its deliveries, deployment
// requests and idempotency key, all in one transaction; a hook, a token, a key rotation)
// commits with the server's durable commit. The delivery loop's own records (claims, recorded
// attempts) commit with synchronous_commit off: losing the last of them in a crash of the
// database server only causes a duplicate request, as at-least-once delivery allows. SQLite
// draws the same line (synchronous=NORMAL, an fsync for acknowledged writes).
//
// Holders. Each Store keeps one dedicated connection (its session) for as long as it is open,
// and on it a session-level advisory lock per delivery worker and deployment runner it
// registered (table holders). PostgreSQL drops a session's locks when the session ends, however
// the process ends (the session asks for TCP keepalives a few seconds apart, so that even a
// machine that vanished is noticed within about SessionKeepaliveBound), so a holder whose lock
// nobody holds is dead: DeliveryReleaseDead (and every
// claim, at most once a second) puts its running deliveries back at once. The same session
// holds a shared lock while the store is open, which KeyRotate needs exclusively. When the
// session's connection is lost (a restart or failover of the server), the store opens a new
// one and takes its locks again before it claims (at once after a failed operation, else at
// most HolderCheckInterval later). Close gives the locks up before it returns. Open forgets
// holders that ended long ago holding nothing.
//
// Wake-ups. An emit that stores pending deliveries sends NOTIFY in its transaction; StoreWake
// (store.Waker) gives the engine a channel fed by LISTEN on another dedicated connection, so
// the workers of every server start on new work at once instead of at their next poll.
//
// Failures. Every transaction is retried with backoff, for up to RetryWindowDefault, when
// PostgreSQL or the network fail in a way that loses nothing by retrying: connection refused
// or reset, an administrator's or crash shutdown (57P01, 57P02), a server starting (57P03),
// serialization failures (40001) and deadlocks (40P01). When the connection drops during a
// COMMIT the outcome is unknown; the store then asks the server whether that transaction
// committed (txid_status) before it runs it again, so an emit, a hook or a token is recorded
// once. The URL's password never appears in errors or logs.
package postgres
