package engine

import (
	"context"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// BenchmarkDeploymentAllToAll8: one update of a stack whose pulumi_deployments hooks chain 8
// stacks all to all (56 hooks). Unbounded, this event set off 671,307 deployment requests in
// one store transaction (2 min 12 s on the 2-core test machine); bounded by the defaults it
// queues MaxDeploymentRequestsPerEventDefault and records the rest as skipped.
//
//	go test -run '^$' -bench DeploymentAllToAll8 ./provider/engine/
func BenchmarkDeploymentAllToAll8(b *testing.B) {
	const stacks = 8
	e, _ := benchEngine(b)
	stack := func(i int) webhook.Scope { return webhook.Scope{Org: "acme", Project: "p", Stack: stackName(i)} }
	ctx := context.Background()
	for i := range stacks {
		for j := range stacks {
			if i != j {
				if _, err := e.HookCreate(ctx, deployHook("to-"+stackName(j), stack(i), "p/"+stackName(j))); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	var requests int
	b.ResetTimer()
	for range b.N {
		res, err := e.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stack(0)})
		if err != nil {
			b.Fatal(err)
		}
		requests = res.DeploymentRequests
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/event")
	b.ReportMetric(float64(requests), "requests/event")
}
