// Package console is the web console of pulumi-webhooks: server-rendered HTML pages (package
// html/template, no JavaScript) over the engine, for the people who manage webhooks in a
// browser what the REST API is for scripts. The server mounts its Handler at / (every path
// the API does not serve); the templates, the stylesheet and the rest are embedded in the
// binary, and nothing is fetched from elsewhere at run time.
//
// # Signing in
//
// A person signs in with an API token (`pulumi-webhooks token create --org ORG`): the form
// trades it for a random session ID in an HTTP-only, SameSite=Strict cookie (Secure over
// TLS). The session is kept in the store (store.Session): every server on one store, and a
// restarted one, knows it, and signing out on one ends it on all. The store holds the hash of
// the session ID and the ID of the token, never the token, which is loaded by that ID and
// checked again on every request, so revoking it ends the session. A token has at most
// Config.SessionsPerToken sessions (a sign-in beyond ends its oldest), so that no organization
// can sign another's people out; expired sessions are deleted by later sign-ins (a bounded
// batch each, store.SessionPruneLimit). Every form carries the session's CSRF token; a
// POST without it is refused (the sign-in form uses a double-submitted cookie). A request
// with the API's "Authorization: token <t>" header is served without a session or CSRF
// token, as scripts and tests need. A token sees its own organization only: another
// organization's pages answer 404, exactly as pages that do not exist.
//
// # Pages
//
// The paths of the console links that payloads and chat messages carry (updateUrl,
// deploymentUrl, and the environment links of Slack and Teams messages, see engine/render) are
// pages here, so setting `serve --console-url` to the server's own URL makes those links open
// the console:
//
//	/{org}                                       hooks of every scope, 24-hour chart, recent events
//	/{org}/{project}/{stack}[/updates/{n}, ...]  the same for one stack, with its newest deployments
//	/{org}/{project}/{stack}/deployments/{n}     one deployment (by version or ID): fields, drift, log, Cancel
//	/{org}/esc/{project}/{env}                   the same for one ESC environment
//
// The console's own pages live under /-/, which no organization can shadow in practice:
//
//	/-/signin, /-/signout, /-/assets/...
//	/-/orgs/{org}/new-hook                       create a hook (any scope)
//	/-/orgs/{org}/events/{event}                 one event, its payload and its deliveries
//	/-/orgs/{org}/deployments                    the newest deployments of every stack
//	/-/orgs/{org}/hooks/{hook}                   one hook: deliveries, Ping, Redeliver
//	/-/stacks/{org}/{project}/{stack}/hooks/{hook}
//	/-/environments/{org}/{project}/{env}/hooks/{hook}
//	/-/stacks/{org}/{project}/{stack}/deployments                 a stack's deployments, newest first
//	/-/stacks/{org}/{project}/{stack}/deployments/{n}/cancel      POST: cancel one
//
// with .../edit, .../active, .../delete, .../ping and .../deliveries/{id}/redeliver under
// each hook. Hooks are validated by package webhook through the engine, so the console
// reports exactly the fields and messages the API does.
//
// # What the pages read
//
// Everything goes through the engine (hooks, delivery logs, ping, redelivery, finding and
// cancelling a deployment) except the event pages, which read events and deliveries from the
// store, and the deployment lists, which read the store's. A deployment's log is shown as
// stored, where the runner has already redacted secrets; the stack's deployment settings are
// never shown. The recent events are found
// from the newest attempts of the organization's hooks, so an event that matched no hook is
// not listed; the chart counts at most ChartAttemptsPerHook of each hook's newest attempts.
// The organization's deployments are in the navigation of every page, and on every page about
// a stack, that stack's too (navFor).
package console
