// Package harness is the integration harness of the whole product, as a user meets it. Its
// end-to-end test (TestEndToEnd) builds the provider plugin and the pulumi-webhooks server,
// starts the server on a temporary store (loopback deliveries allowed, a short retry
// schedule), starts receivers on 127.0.0.1 that record every request, and then:
//
//   - creates webhooks with real `pulumi up` runs of programs/ in YAML (the pulumi CLI with the
//     YAML host) and in TypeScript, Python and Go (Automation API inline programs on the
//     generated SDKs), each program managing hooks through the provider in embedded mode (the
//     server's store file) and in remote mode (the server's REST API and a CLI-made token):
//     organization, stack and environment hooks with filters only, groups only, both, neither,
//     inactive, in every format;
//   - fires all 32 filters for the stacks and the environment of the organization, for a
//     second stack and for a second organization, through the events API and `pulumi-webhooks
//     emit`, and checks from one expectation table (plan_test.go) that every receiver got
//     exactly the deliveries it should, each with the right headers, a body of the reference
//     shape for its kind and format, and Pulumi and Standard Webhooks signatures verified with
//     crypto/hmac; pulumi_deployments hooks must have queued deployments of their targets;
//   - changes the hooks with `pulumi up` (filters narrowed, a hook deactivated, a scope changed),
//     adopts a hook made by `pulumi-webhooks hooks create` with `pulumi import` (then a
//     no-change preview), fires everything again; destroys every stack and proves nothing is
//     delivered any more;
//   - fault cases: a receiver answering 500 and then 200 (everything arrives), a receiver
//     answering 410 (hook disabled; `pulumi refresh` shows active: false), and the server
//     killed with SIGKILL under load and restarted (nothing lost).
//
// The model tests (TestExpectationTable) check the table itself against hand counts and need
// nothing built.
package harness
