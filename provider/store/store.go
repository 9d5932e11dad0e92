// Package store is the seam between the delivery engine and its database: the domain records
// (hooks, events, deliveries, attempts, deployment requests, API tokens, web console
// sessions), one interface with a method per query, and the sentinel errors every backend
// returns. The SQLite backend lives in store/sqlite, the PostgreSQL backend (several servers
// sharing one database) in store/postgres; every backend passes the shared suite in
// store/storetest. A backend may also implement WatchCursors (backend watchers) and Waker
// (telling a process that another one stored work).
//
// Method names put the noun first (HookCreate, DeliveryClaim) and take a Params struct when
// they need more than an identifier, so adding a field never changes a signature.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Sentinel errors. Backends wrap them with context (fmt.Errorf("...: %w", ErrNotFound)); callers
// test them with errors.Is. They are mapped to HTTP statuses and Pulumi diagnostics in exactly
// one place each (the server and the resource).
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrLeaseLost is returned when a worker completes a delivery it no longer holds: its lease
	// expired and another worker claimed it, or it was completed already.
	ErrLeaseLost = errors.New("delivery lease lost")
	// ErrKeyMismatch is returned when a store is opened with a key other than the one its
	// secrets are sealed with (its key check value differs).
	ErrKeyMismatch = errors.New("the secret key does not match the store")
	// ErrStoreBusy is returned by operations that need the store to themselves (KeyRotate)
	// while other processes have it open.
	ErrStoreBusy = errors.New("the store is in use by other processes")
)

// HookRef names one hook: its scope and its name within the scope.
type HookRef struct {
	webhook.Scope
	Name string
}

func (r HookRef) String() string { return r.Scope.String() + "/" + r.Name }

// Hook is a webhook as stored. Its Spec.Secret is always empty: the secret is kept encrypted
// and only the delivery path reads it back (ClaimedDelivery.Secret, HookSecretGet).
type Hook struct {
	ID int64
	webhook.Spec
	HasSecret bool
	// SecretDigest is a keyed digest of the secret (HMAC-SHA256 under a key derived from the
	// store's key, secretbox.Box.Digest), or "" when there is none or it cannot be read. It lets
	// a client notice that a secret changed without ever seeing it, and unlike a plain hash it
	// cannot be tested against guesses without the store's key. The REST API returns it as
	// secretCiphertext, the name Pulumi Cloud gives that field. It changes when the store's key
	// is rotated.
	SecretDigest string
	// DisabledReason says why the engine set Active to false (e.g. the endpoint answered 410).
	DisabledReason string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Ref returns the hook's reference.
func (h *Hook) Ref() HookRef { return HookRef{Scope: h.Scope, Name: h.Name} }

// HookCreateParams creates a hook. Spec.Name empty means the store generates a short random
// name; Spec.Secret is the plain secret (empty for none) which the store encrypts.
type HookCreateParams struct {
	Spec webhook.Spec
	Now  time.Time
}

// HookUpdateParams replaces the mutable fields of a hook (display name, URL, active, format,
// filters, groups) with Spec's. Scope and name cannot change. Secret nil keeps the stored
// secret; a pointer to "" removes it; anything else replaces it. Setting Active to false
// discards the hook's pending deliveries; setting it to true clears DisabledReason.
type HookUpdateParams struct {
	Ref    HookRef
	Spec   webhook.Spec
	Secret *string
	Now    time.Time
}

// HookDisableParams deactivates a hook, records why, and discards its pending deliveries.
type HookDisableParams struct {
	ID     int64
	Reason string
	Now    time.Time
}

// HookListParams lists hooks. An empty Scope.Org lists every hook; with Exact, only the hooks
// of exactly that scope, ordered by name in byte order in every backend (whatever the
// database's collation); without it, every hook under the organization.
//
// After and Limit page the hooks of one scope, where names are unique: they need Exact and
// Scope.Org (see Validate). A page reads about Limit rows, not the whole scope; a caller that
// wants to know whether a next page exists asks for one more hook than it shows.
type HookListParams struct {
	Scope webhook.Scope
	Exact bool
	// After lists only the hooks whose names come strictly after it in byte order: the last
	// name of the previous page. "" lists from the first hook.
	After string
	// Limit is the most hooks listed; 0 lists every one.
	Limit int
}

// Event is something that happened, stored before any delivery of it.
type Event struct {
	ID     string
	Filter webhook.Filter
	Kind   webhook.Kind
	// Subject is the stack or environment the event is about (Org only for ping).
	Subject webhook.Scope
	// Payload is the raw-format JSON body.
	Payload []byte
	// Cause lists, oldest first, the deployment targets ("org/project/stack") whose deployment
	// requests led to this event. Empty for an event from outside.
	Cause     []string
	CreatedAt time.Time
}

// DeliveryState is where a delivery is in its life.
//
//	pending --claim--> running --2xx--> succeeded
//	                      |--failure, attempts left--> pending (NextAttemptAt later)
//	                      |--failure, none left, or 410--> failed
//	pending/running --hook deleted or disabled--> discarded
type DeliveryState string

// The delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryRunning   DeliveryState = "running"
	DeliverySucceeded DeliveryState = "succeeded"
	DeliveryFailed    DeliveryState = "failed"
	DeliveryDiscarded DeliveryState = "discarded"
)

// Delivery is one event on its way to one hook. ID is the Pulumi-Webhook-ID header: unique per
// delivery and the same on every attempt of it.
type Delivery struct {
	ID      string
	EventID string
	HookID  int64
	Filter  webhook.Filter
	Kind    webhook.Kind
	Format  webhook.Format
	// Body is the rendered request body, exactly the bytes that are sent and signed.
	Body []byte
	// Endpoint groups deliveries for the per-endpoint concurrency cap (the URL's host:port).
	Endpoint      string
	State         DeliveryState
	Attempts      int
	NextAttemptAt time.Time
	LeaseUntil    time.Time
	ClaimedBy     string
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// DeliveryInsertParams is a delivery to create inside EventEmit's transaction.
type DeliveryInsertParams struct {
	ID       string
	HookID   int64
	Format   webhook.Format
	Body     []byte
	Endpoint string
	// State is pending for HTTP deliveries; a pulumi_deployments delivery, which is carried out
	// inside the same transaction, is stored already succeeded.
	State         DeliveryState
	NextAttemptAt time.Time
}

// DeploymentRequest is a durable request to deploy a stack, created by a pulumi_deployments hook.
type DeploymentRequest struct {
	ID string
	// Target is the stack to deploy.
	Target webhook.Scope
	// HookID and EventID say which hook and event asked for it.
	HookID  int64
	EventID string
	// Cause is the chain of targets that led here, this one last.
	Cause []string
	// Status is "queued", or "cycle_detected" when the target already appears in the chain of
	// causes, or "skipped" when queuing it would pass a bound on the work one event may create
	// (Reason names the bound): then no deployment_queued event is emitted and the chain stops.
	// The deployment runner takes only queued requests.
	Status    string
	Reason    string
	CreatedAt time.Time
}

// EmitTx is what EventEmit's callback may do inside its one transaction.
type EmitTx interface {
	// HookCandidates returns the active hooks that could receive an event about subject: the
	// organization's org-scoped hooks plus, for a stack or environment subject, the hooks of
	// exactly that stack or environment (none when orgOnly). It uses indexes: its cost does not
	// grow with hooks of other organizations, stacks or environments.
	HookCandidates(ctx context.Context, subject webhook.Scope, orgOnly bool) ([]*Hook, error)
	EventInsert(ctx context.Context, e *Event) error
	DeliveryInsertMany(ctx context.Context, eventID string, now time.Time, ds []DeliveryInsertParams) error
	DeploymentRequestInsert(ctx context.Context, r *DeploymentRequest) error
	// DeploymentInsert stores a not-started deployment, assigning ID (when empty) and the
	// stack's next Version.
	DeploymentInsert(ctx context.Context, d *Deployment) error
	// IdempotencyGet returns the response stored for key in org at or after since, or ErrNotFound.
	IdempotencyGet(ctx context.Context, org, key string, since time.Time) ([]byte, error)
	IdempotencyPut(ctx context.Context, org, key string, response []byte, now time.Time) error
}

// EmitClaimer is an EmitTx that can hand the deliveries an emit stores straight to the
// emitting process's workers, skipping the claim loop's search of the queue (the local fast
// path). A backend may offer it; the engine uses it when the EmitTx has it.
type EmitClaimer interface {
	// DeliveryInsertClaimed inserts ds as DeliveryInsertMany does, except that up to
	// p.Limit of its pending ones are stored already claimed by p.Worker: running, attempt 1,
	// leased until p.Now+p.Lease, exactly as DeliveryClaim would leave them, and returned
	// (with their hooks' URL, secret and active flag, as DeliveryClaim returns them). It
	// claims only when nothing else in the queue is due (due pending deliveries and expired
	// leases, including those earlier emits of the transaction left pending, go first, to the
	// claim loop), within p.PerEndpointLimit and p.PerOrgLimit counted as DeliveryClaim counts
	// them, and fairly among ds's endpoints; the rest stay pending. The caller owns the
	// claims once the transaction has committed, and nothing if it has not.
	DeliveryInsertClaimed(ctx context.Context, eventID string, now time.Time, ds []DeliveryInsertParams, p DeliveryClaimParams) ([]*ClaimedDelivery, error)
}

// ClaimedDelivery is a delivery a worker holds, with what it needs to send it.
type ClaimedDelivery struct {
	Delivery
	// URL is the hook's payload URL now (it may have changed since the event).
	URL string
	// Secret is the hook's plain secret now, or "". Never log it.
	Secret     string
	HookActive bool
}

// DeliveryClaimParams claims due work: pending deliveries whose NextAttemptAt has come, and
// running ones whose lease has expired (their worker died). No endpoint gets more than
// PerEndpointLimit deliveries running at once, counting those other workers hold, and no
// organization more than PerOrgLimit running under this Worker's claims (so one organization's
// slow endpoints cannot hold every slot of a worker while another's deliveries wait); 0 means
// no cap. Claiming marks rows running, bumps Attempts, sets LeaseUntil = Now+Lease and
// ClaimedBy = Worker, all in one statement. Limit <= 0 claims nothing. A claim may return
// fewer than Limit deliveries while more are due (backends bound how far they look); claim
// again when workers are still free.
//
// Claims are fair, so nothing due starves:
//   - first attempts and the rest (retries and expired leases) take turns slot by slot, the
//     turn carrying over from one claim to the next: while both are due, each gets every other
//     slot (a claim of one takes a retry at least every second time); when one class has
//     nothing that fits, the other takes every slot;
//   - within a class, the organization with the fewest deliveries running under this worker
//     goes first, then the endpoint with the fewest running, then the earliest due: slots go
//     round-robin across organizations and endpoints rather than to the oldest backlog;
//   - an endpoint or organization at its cap does not hide the work behind it.
//
// Before it claims, a claim releases the claims of dead holders as DeliveryReleaseDead does
// (backends may check at most about once a second). A claimed delivery whose hook's secret
// cannot be decrypted is not returned: it is failed there and then, with an attempt whose Error
// is UndecryptableSecretReason, and the rest of the claim (and of a DeliveryCycle's
// completions) goes ahead.
type DeliveryClaimParams struct {
	Worker           string
	Now              time.Time
	Lease            time.Duration
	Limit            int
	PerEndpointLimit int
	PerOrgLimit      int
}

// DeliveryReleaseDeadParams releases the claims of dead holders. A holder is the Worker a
// claim was stamped with; a backend knows it is alive while the process that claimed for it
// has the store open, by a lock that the operating system or the database server drops when
// that process ends (SQLite: an flock on a per-worker file beside the database; PostgreSQL: a
// session advisory lock). A holder the backend cannot judge (no lock was ever taken for it, for
// instance claims made by an older version) is left to its lease. Released deliveries keep
// their attempt count: the attempt the dead holder made may or may not have been sent, so the
// next claim counts as a retry, as after an expired lease.
type DeliveryReleaseDeadParams struct {
	Now time.Time
}

// DeliveryReleaseDeadResult says what DeliveryReleaseDead released.
type DeliveryReleaseDeadResult struct {
	// Holders lists the dead holders whose claims were released.
	Holders []string
	// Deliveries counts the deliveries put back.
	Deliveries int
}

// ReleasedDeadReason is the LastError of a delivery whose holder died, before the holder name.
const ReleasedDeadReason = "released: the process holding the claim ended before recording the attempt (holder "

// KeyRotateParams rotates the key sealing hook secrets.
type KeyRotateParams struct {
	// NewKey is the new 32-byte key.
	NewKey []byte
}

// KeyRotateResult says what KeyRotate re-sealed.
type KeyRotateResult struct {
	Secrets int
}

// UndecryptableSecretReason is the attempt error of a delivery failed because its hook's
// secret cannot be opened with the store's key.
const UndecryptableSecretReason = "not sent: the webhook's secret cannot be decrypted with the store's key (it was damaged or sealed with another key); set the webhook's secret again, then redeliver"

// HistoryDeleteBeforeParams deletes up to Limit events (and up to Limit idempotency keys)
// created before Before. Limit <= 0 means a backend default (SQLite: 100).
type HistoryDeleteBeforeParams struct {
	Before time.Time
	Limit  int
}

// HistoryDeleteBeforeResult counts what one HistoryDeleteBefore call deleted.
type HistoryDeleteBeforeResult struct {
	Events, Deliveries, Attempts, Bodies, DeploymentRequests, IdempotencyKeys int
	// Deployments counts finished deployments deleted with their logs (a stack's newest
	// deployment is kept, whatever its age: the next one's version counts on from it).
	Deployments int
	// More says whether a batch limit was reached: there may be more to delete.
	More bool
}

// Attempt is the record of one HTTP request made for a delivery (or for a ping).
type Attempt struct {
	ID              int64
	DeliveryID      string
	HookID          int64
	Number          int
	Filter          webhook.Filter
	Kind            webhook.Kind
	StartedAt       time.Time
	Duration        time.Duration
	RequestURL      string
	RequestHeaders  map[string][]string
	RequestBody     []byte
	ResponseCode    int
	ResponseHeaders map[string][]string
	ResponseBody    []byte
	// Error says why the attempt failed when there was no usable response (timeout, refused
	// connection, blocked address, redirect...). Empty on success.
	Error string
}

// Succeeded reports whether the attempt delivered: a 2xx answer and no error. The store, the
// console and the CLI all judge a recorded attempt by it.
func (a *Attempt) Succeeded() bool {
	return a.Error == "" && a.ResponseCode >= 200 && a.ResponseCode < 300
}

// DeliveryCompleteParams finishes a claimed attempt. It only writes if the delivery is still
// running with Attempts == Attempt and ClaimedBy == Worker; otherwise (including when the
// delivery is gone because its hook was deleted) ErrLeaseLost. It records
// the attempt and moves the delivery to State (succeeded, failed, or pending with
// NextAttemptAt for a retry). DisableHookReason, when set, also deactivates the hook and
// discards its other pending deliveries, in the same transaction.
type DeliveryCompleteParams struct {
	ID                string
	Worker            string
	Attempt           int
	State             DeliveryState
	NextAttemptAt     time.Time
	Record            Attempt
	DisableHookReason string
	Now               time.Time
}

// DeliveryCycleParams is one round of a claim loop: record the attempts its workers finished,
// then claim work for the slots that frees, in one transaction (one durable write instead of
// two). Complete may be empty; Claim.Limit <= 0 claims nothing.
type DeliveryCycleParams struct {
	Complete []DeliveryCompleteParams
	Claim    DeliveryClaimParams
}

// DeliveryCycleResult is what DeliveryCycle did.
type DeliveryCycleResult struct {
	// CompleteErrs has one entry per Complete item, as DeliveryCompleteMany returns them.
	CompleteErrs []error
	// Claimed is what the claim took, as DeliveryClaim returns it.
	Claimed []*ClaimedDelivery
}

// AttemptListParams pages through a hook's attempts, newest first. Before, when non-zero,
// returns attempts with ID < Before (the cursor is the last ID of the previous page). Limit 0
// means a backend default (100 for SQLite); backends cap it (1,000 for SQLite).
type AttemptListParams struct {
	HookID int64
	Limit  int
	Before int64
}

// AttemptRecordParams records an attempt made outside the worker loop: a ping (with its event
// and delivery created in the same transaction when Event is set) or a redelivery of an
// existing delivery (Event nil), which bumps the delivery's attempt count.
type AttemptRecordParams struct {
	Event    *Event
	Delivery *DeliveryInsertParams
	Record   Attempt
	Now      time.Time
}

// QueueStats describes the queue for metrics and readiness. Every /readyz and /metrics
// request reads it, so backends keep counters rather than count rows: its cost must not grow
// with the delivery history.
type QueueStats struct {
	Pending int
	Running int
	// OldestDue is the NextAttemptAt of the oldest pending delivery that is due, zero if none.
	OldestDue time.Time
	// NextDue is the earliest NextAttemptAt of any pending delivery, zero if none.
	NextDue time.Time
	// HooksDisabled counts hooks the engine deactivated (inactive with a DisabledReason).
	HooksDisabled int
	// DeliveriesDone counts deliveries that ever reached succeeded or failed; deleting them
	// later (with their hook, or by pruning) does not lower it.
	DeliveriesDone int
}

// Token is an API token; only its hash is stored.
type Token struct {
	ID          string
	Org         string
	Description string
	Hash        string
	CreatedAt   time.Time
	LastUsedAt  time.Time
	RevokedAt   time.Time
}

// Store is everything the engine, the server and the CLI need from a database. Implementations
// are safe for concurrent use by many goroutines and, for the SQLite backend, many processes.
type Store interface {
	HookCreate(ctx context.Context, p HookCreateParams) (*Hook, error)
	HookGet(ctx context.Context, ref HookRef) (*Hook, error)
	HookGetByID(ctx context.Context, id int64) (*Hook, error)
	HookList(ctx context.Context, p HookListParams) ([]*Hook, error)
	HookUpdate(ctx context.Context, p HookUpdateParams) (*Hook, error)
	// HookDelete deletes a hook together with its deliveries and their attempts (its delivery
	// log). Events and deployment requests stay.
	HookDelete(ctx context.Context, ref HookRef) error
	HookDisable(ctx context.Context, p HookDisableParams) error
	// HookSecretGet returns the hook's plain secret, "" when it has none.
	HookSecretGet(ctx context.Context, id int64) (string, error)

	// EventEmit runs fn in one write transaction: the event, its deliveries and deployment
	// requests are stored together or not at all. fn must do its work through tx only: calling
	// a writing Store method from fn waits for the transaction fn is in (SQLite: deadlock).
	EventEmit(ctx context.Context, fn func(tx EmitTx) error) error
	EventGet(ctx context.Context, id string) (*Event, error)

	DeliveryClaim(ctx context.Context, p DeliveryClaimParams) ([]*ClaimedDelivery, error)
	DeliveryComplete(ctx context.Context, p DeliveryCompleteParams) error
	// DeliveryCompleteMany completes many claimed attempts in one transaction (group commit:
	// one durable write for the attempts of many workers). The result has one entry per item,
	// nil when that item is recorded. Each item has DeliveryComplete's semantics, applied in
	// order: an item that is invalid or whose lease is lost (ErrLeaseLost) gets its own error
	// and writes nothing, without affecting the others; an error of the transaction itself
	// (the database failed, ctx ended) is returned for every item that was not already refused.
	DeliveryCompleteMany(ctx context.Context, ps []DeliveryCompleteParams) []error
	// DeliveryCycle records Complete exactly as DeliveryCompleteMany does and then, in the same
	// transaction, claims exactly as DeliveryClaim does, so the claim sees the slots and
	// endpoint capacity the completions freed. An invalid Claim is refused before anything is
	// written: the error is returned and set for every Complete item. An error of the
	// transaction itself is returned and set for every item not already refused; nothing is
	// written then, and nothing is claimed.
	DeliveryCycle(ctx context.Context, p DeliveryCycleParams) (DeliveryCycleResult, error)
	DeliveryGet(ctx context.Context, id string) (*Delivery, error)
	// DeliveryListByEvent returns the deliveries of one event.
	DeliveryListByEvent(ctx context.Context, eventID string) ([]*Delivery, error)
	DeliveryStats(ctx context.Context, now time.Time) (QueueStats, error)

	AttemptRecord(ctx context.Context, p AttemptRecordParams) (*Attempt, error)
	AttemptList(ctx context.Context, p AttemptListParams) ([]*Attempt, error)

	DeploymentRequestList(ctx context.Context, target webhook.Scope) ([]*DeploymentRequest, error)

	DeploymentStore

	TokenCreate(ctx context.Context, t *Token) error
	// TokenGet returns the token with ID id, revoked or not, or ErrNotFound.
	TokenGet(ctx context.Context, id string) (*Token, error)
	TokenGetByHash(ctx context.Context, hash string) (*Token, error)
	TokenList(ctx context.Context, org string) ([]*Token, error)
	TokenRevoke(ctx context.Context, id string, now time.Time) error
	// TokenTouch sets a token's LastUsedAt.
	TokenTouch(ctx context.Context, id string, now time.Time) error

	// SessionCreate stores a web console session (see Session and SessionCreateParams):
	// ErrAlreadyExists when its IDHash is taken.
	SessionCreate(ctx context.Context, p SessionCreateParams) error
	// SessionGet returns the session with p.IDHash unless it has expired at p.Now, else
	// ErrNotFound. It does not look at the session's token: the caller loads it (TokenGet) and
	// refuses a revoked one.
	SessionGet(ctx context.Context, p SessionGetParams) (*Session, error)
	// SessionDelete ends the session with idHash (signing out); ending one that is gone, or
	// never was, is not an error.
	SessionDelete(ctx context.Context, idHash string) error

	// DeliveryReleaseDead puts back the claims of holders that are known to be dead: their
	// running deliveries become pending at once, whatever their lease says, with LastError
	// saying why (see DeliveryReleaseDeadParams). DeliveryClaim and DeliveryCycle do the same
	// before they claim, so a crashed process's deliveries, and its share of every endpoint's
	// cap, come back within moments instead of after a lease.
	DeliveryReleaseDead(ctx context.Context, p DeliveryReleaseDeadParams) (DeliveryReleaseDeadResult, error)

	// KeyRotate re-seals every hook secret under p.NewKey, recomputes their digests and records
	// the new key check value, in one transaction: afterwards only the new key opens the store.
	// A secret the current key cannot open makes it refuse, naming the hooks, with nothing
	// changed. It refuses with ErrStoreBusy while other processes have the store open (they
	// hold the old key). This store handle uses the new key once it returns.
	KeyRotate(ctx context.Context, p KeyRotateParams) (KeyRotateResult, error)

	// HistoryDeleteBefore deletes one small batch of history older than p.Before (retention):
	// events none of whose deliveries is pending or running, with their deliveries, attempts,
	// bodies and deployment requests, and idempotency keys. Pending and running work is never
	// deleted, however old. Each call is one short transaction; the result says whether more
	// is left, so a pruner calls it again after letting other writers through.
	HistoryDeleteBefore(ctx context.Context, p HistoryDeleteBeforeParams) (HistoryDeleteBeforeResult, error)

	// Close releases the store. A holder whose store is closed counts as dead: its claims, if
	// any are left, are released by the next claim of another store.
	Close() error
}
