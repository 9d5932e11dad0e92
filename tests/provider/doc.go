// Package provider holds the tests that run the pulumiservice provider plugin under the real
// pulumi CLI (v3.274.1) on a local file backend and a throwaway SQLite store:
//
//   - a YAML program through the YAML language host: preview, up, a no-change preview, an
//     in-place update, a replace on a scope change, refresh after out-of-band edits and an
//     out-of-band delete, `pulumi import` of a hook created directly in the store, destroy;
//   - the examples/ programs in YAML, and in TypeScript, Python and Go on the generated SDKs
//     as Automation API inline programs (the CLI runs them with --client, so no Node, Python
//     or Go language host is needed): up, a no-change preview, destroy.
//
// TestMain builds the plugin, the pinned toolchain (provider/scripts/toolchain.sh) and the npm and
// pip packages (tests/deps.sh) when they are missing; nothing is skipped.
package provider
