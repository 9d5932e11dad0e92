// Package engine decides who receives an event, renders and signs each request, and delivers it
// at least once. The server, the CLI and the Pulumi provider all go through an Engine; the
// database behind it is any store.Store.
//
// # Emit: one transaction
//
// Emit validates the event, builds its raw payload, and then, inside a single store
// transaction, stores the event, asks the store for the candidate hooks of the subject (the
// organization's hooks plus those of exactly that stack or environment, found through indexes),
// keeps those Matches accepts, renders each format's body once and stores one pending delivery
// per hook, due at once (the store keeps each distinct body once per event). A
// pulumi_deployments hook is served inside the same transaction: it records a deployment
// request for its target stack, queues a not-started update of that stack for the deployment
// runner (package deploy; DeploymentCreate queues the other operations), and emits
// deployment_queued for that stack, whose Cause lists
// the chain of targets that led to it, breadth first; a target already in the chain is
// recorded as cycle_detected and the chain stops. The work one event creates is bounded, so
// the transaction stays short however the hooks chain stacks: a request that would make a
// chain longer than Config.MaxDeploymentChainLength, or pass Config.MaxDeploymentRequestsPerEvent
// queued for the event, is recorded as skipped with the reason and stops its chain. An
// idempotency key is checked and stored in the same transaction. Only after the commit does Emit return and wake the local
// workers, so nothing is ever sent that was not first stored, and nothing stored is lost if the
// process dies a moment later. The store may write concurrent emits in one transaction, each in
// its own savepoint (an emit that fails is rolled back alone), so that they share one commit
// and one fsync; each still returns only once its own event is on disk.
//
// # Claim: a lease
//
// One claim loop per Engine asks the store for as many due deliveries as it has free workers:
// pending ones whose next attempt time has come, and running ones whose lease has expired
// because the worker holding them died. The store marks them running, bumps the attempt count
// and stamps the worker and a lease (Config.Lease, longer than any attempt can take) in one
// statement, never handing an endpoint more than PerEndpointLimit concurrent deliveries across
// all workers and processes, nor one organization more than PerOrgLimit of this process's
// workers. Claims are fair (store.DeliveryClaimParams): first attempts and retries (with
// expired leases) take turns, so neither starves the other, and slots go round-robin across
// organizations and endpoints rather than to the oldest backlog. The loop sleeps until a local Emit, a
// finished attempt or the poll interval, so work emitted by other processes sharing the store
// is found within PollInterval, or at once when the store signals stored work (store.Waker:
// the PostgreSQL store's LISTEN/NOTIFY); under load it lets finished attempts gather for a moment so
// that one round serves every worker.
//
// # Attempt, then complete or retry
//
// A worker sends the delivery with the hook's current URL and secret: the stored body,
// unchanged, signed, with the delivery ID as Pulumi-Webhook-ID on every attempt. It then hands
// the outcome to the claim loop, which records every attempt finished since its last round and
// claims work for the slots that frees in one store transaction (group commit,
// store.Store.DeliveryCycle), and only then frees those workers' slots, so a crash can lose at
// most one unrecorded attempt per worker. The store accepts a completion only while the worker
// still holds the claim (else store.ErrLeaseLost and the result is dropped: the new holder owns
// the delivery). The attempt is recorded and the delivery moves on: 2xx to succeeded; any other
// answer (a redirect, which is never followed, included), a timeout or a connection error back
// to pending, due after the next wait of Config.RetrySchedule with ±20% jitter, or later when
// the endpoint's Retry-After on a 429 or 503 asks for more (at most RetryAfterMax; a shorter
// Retry-After never brings the attempt forward); an address the SSRF guard
// refuses, a malformed URL, or the schedule running out, to failed; 410 Gone to failed while
// the hook is deactivated with the reason recorded. A delivery whose hook is inactive when it
// is claimed is discarded without a request.
//
// # Rescue and shutdown
//
// There is no separate rescuer. Every claim first puts back the deliveries of holders the store
// knows to be dead (store.Store.DeliveryReleaseDead: on SQLite a process's flock dies with it),
// so a process killed mid-attempt frees its deliveries and its share of each endpoint's cap as
// soon as another process claims; and an expired lease makes a running delivery claimable
// again whatever the store knows. Either way a crash costs at most one duplicate request per
// delivery the dead worker held. Delivery is therefore at least once; receivers de-duplicate on
// Pulumi-Webhook-ID. Stop stops claiming and lets in-flight attempts finish and be recorded
// until its context ends; attempts still running then are aborted and put back as due.
//
// Ping and Redeliver send synchronously, outside the queue, and record their attempt in the
// same log as the workers do.
package engine
