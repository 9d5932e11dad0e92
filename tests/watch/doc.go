// Package watch tests the backend watcher (provider/watch) and the `pulumi-webhooks pulumi`
// wrapper end to end: the real pulumi CLI (provider/scripts/toolchain.sh) runs a YAML program
// against a file:// backend and an s3:// backend served on 127.0.0.1 by an in-process S3
// server (gofakes3), and a receiver on 127.0.0.1 checks that each expected event arrives
// exactly once, and nothing else.
package watch
