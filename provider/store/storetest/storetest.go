// Package storetest is the conformance suite every store.Store backend passes. A backend's
// tests call Run with a function that opens a fresh, empty store; Run then exercises every
// method, its success paths and its error paths (ErrNotFound, ErrAlreadyExists,
// ErrLeaseLost), lease expiry, the per-endpoint and per-organization caps, fair claims (first
// attempts and retries taking turns, round-robin across organizations and endpoints: see
// fairness.go), the queue's counters (stats.go), idempotency windows, pagination, and that
// secrets never come back in a Hook.
//
// Like river's driver tests, the suite has a file per noun of the store (hooks.go, events.go,
// deliveries.go, claims.go, emitclaims.go, completions.go, cycles.go, attempts.go, deployments.go, tokens.go,
// sessions.go, ...), each with the runner Run calls; fixtures.go holds what they share. RunReliability
// (reliability.go) runs the tests that need more than one handle on a store.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Opener opens a fresh, empty store for one test; the suite closes it.
type Opener func(t *testing.T) store.Store

// T0 is the suite's clock origin.
var T0 = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)

type testBundle struct {
	st  store.Store
	ctx context.Context
}

func setup(t *testing.T, open Opener) *testBundle {
	t.Helper()
	st := open(t)
	t.Cleanup(func() { _ = st.Close() })
	return &testBundle{st: st, ctx: t.Context()}
}

// Run runs the suite, noun by noun as river's driver tests do: one file, and one runner, per
// noun of the store. Subtests run in parallel, each on its own store.
func Run(t *testing.T, open Opener) {
	runHooks(t, open)
	runEvents(t, open)
	runDeliveries(t, open)
	runDeployments(t, open)
	runClaims(t, open)
	runEmitClaims(t, open)
	runCompletions(t, open)
	runCycles(t, open)
	runAttempts(t, open)
	runTokens(t, open)
	runSessions(t, open)
}

// storeTest is one test of the suite: its name under Run and its body.
type storeTest struct {
	name string
	fn   func(t *testing.T, b *testBundle)
}

// runTests runs tests as subtests of t, in parallel, each on a fresh store.
func runTests(t *testing.T, open Opener, tests []storeTest) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, setup(t, open))
		})
	}
}
