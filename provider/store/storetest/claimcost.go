package storetest

import (
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// ClaimRounds runs rounds rounds of a claim loop on st as an engine runs them (DeliveryCycle:
// record the attempts of the previous round as succeeded, claim up to 8 more at now, a cap of
// 8 per endpoint) and returns the mean time of one round and the deliveries claimed. The
// backends' claim-cost benchmarks fill the store in bulk first (a large history, a backlog).
func ClaimRounds(tb testing.TB, st store.Store, now time.Time, rounds int) (time.Duration, int) {
	tb.Helper()
	ctx := tb.Context()
	var complete []store.DeliveryCompleteParams
	claimed := 0
	start := time.Now()
	for range rounds {
		res, err := st.DeliveryCycle(ctx, store.DeliveryCycleParams{Complete: complete,
			Claim: store.DeliveryClaimParams{Worker: "claim-cost", Now: now, Lease: time.Minute, Limit: 8, PerEndpointLimit: 8}})
		if err != nil {
			tb.Fatalf("DeliveryCycle: %v", err)
		}
		for _, e := range res.CompleteErrs {
			if e != nil {
				tb.Fatalf("DeliveryCycle completion: %v", e)
			}
		}
		complete = complete[:0]
		for _, d := range res.Claimed {
			complete = append(complete, store.DeliveryCompleteParams{ID: d.ID, Worker: "claim-cost", Attempt: d.Attempts,
				State: store.DeliverySucceeded, Now: now, Record: store.Attempt{DeliveryID: d.ID, HookID: d.HookID, Number: d.Attempts,
					StartedAt: now, RequestURL: d.URL, RequestBody: d.Body, ResponseCode: 200}})
		}
		claimed += len(res.Claimed)
	}
	return time.Since(start) / time.Duration(rounds), claimed
}

// BenchClaimAt1M is each backend's BenchmarkClaimAt1M: the claim loop's round (record 8
// attempts, claim 8) on a store holding 1,000,000 finished deliveries beside a backlog of
// 10,000, against the same backlog alone. build returns a fresh store filled in bulk with
// history finished deliveries and backlog due ones; it runs before the clock starts.
func BenchClaimAt1M(b *testing.B, build func(tb testing.TB, history, backlog int, now time.Time) store.Store) {
	const rounds = 500
	now := time.Now()
	for range b.N {
		b.StopTimer()
		empty := build(b, 0, 10000, now)
		full := build(b, 1000000, 10000, now)
		b.StartTimer()
		base, n1 := ClaimRounds(b, empty, now, rounds)
		at1M, n2 := ClaimRounds(b, full, now, rounds)
		b.StopTimer()
		if n1 != rounds*8 || n2 != rounds*8 {
			b.Fatalf("claimed %d and %d deliveries, want %d each", n1, n2, rounds*8)
		}
		b.ReportMetric(float64(base.Microseconds()), "backlog-only-µs/round")
		b.ReportMetric(float64(at1M.Microseconds()), "at-1M-µs/round")
		b.ReportMetric(float64(at1M)/float64(base), "ratio")
		b.StartTimer()
	}
}
