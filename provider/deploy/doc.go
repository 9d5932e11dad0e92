// Package deploy runs deployments: real Pulumi operations on stacks, from the durable queue in
// the store, through the Automation API and the pulumi CLI on PATH.
//
// # Queue
//
// A deployment is created not-started, together with its deployment_queued event, in one store
// transaction: by the REST API (POST .../deployments), by a pulumi_deployments hook (the
// engine turns the hook's request into an update of its target), or by a drift schedule. The
// Runner's loop claims them (store.DeploymentClaim): oldest first, never a second one of a
// stack that has one running, so operations on one stack run one at a time, in order, across
// every process sharing the store. A claimed deployment is running under the runner's worker
// name, which the store ties to this process; when a process dies, the next claim anywhere
// fails its running deployments with a reason (store.DeploymentFailDead) and emits
// deployment_failed. They are never re-run: a half-done update may have changed the stack, and
// a person should look first. Not-started deployments wait in the store across restarts.
//
// # Run
//
// A run emits deployment_started, loads the stack's settings (secrets opened from the store),
// prepares the program (a local directory, or a fresh `git clone` of a git source into a
// temporary workspace), runs the pre-run commands with the settings' environment variables,
// checks that the program's language host is installed, and runs the operation with the
// Automation API: update (`up`), preview, refresh, destroy, detect-drift (a preview-only
// refresh: drift when it shows changes) and remediate-drift (`up --refresh`). The backend URL
// and passphrase come from the settings. The output is the deployment's log, with every secret
// value of the settings replaced by [secret]; it is saved every ProgressInterval, which is also
// when a cancel is noticed (the operation's context is canceled: the pulumi CLI stops).
//
// The run then emits what Pulumi Cloud would: the stack event of the operation
// (update_succeeded, refresh_failed, ...) with the deployment's chain as its cause, so that the
// stack's own hooks, pulumi_deployments ones included, fire and chains of stacks work while
// cycles are still detected; drift_detected and drift_detection_succeeded/failed for a drift
// run, drift_remediation_succeeded/failed when it remediates (autoRemediate of its schedule or
// remediateIfDriftDetected of the settings); and deployment_succeeded or deployment_failed.
//
// # Drift schedules
//
// The Scheduler fires each due drift schedule (a cron expression, seconds optional) by queuing
// a detect-drift deployment, unless one is already waiting or running for the stack. Firing
// moves the schedule's next time forward only if no other process did so first.
package deploy
