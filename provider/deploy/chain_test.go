package deploy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestChainAllToAllBounded: 8 stacks whose pulumi_deployments hooks deploy every other stack
// on update_succeeded. The chain-length bound (here 1) stops the cascade after the first hop:
// the first stack's update deploys the 7 others for real, and each of their updates records
// its 7 requests as skipped with the reason, deploying nothing more. A hop back to a stack
// already in the chain stays a cycle (TestHookChainDeploysTarget checks the chain itself).
func TestChainAllToAllBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, 2, func(c *engine.Config) { c.MaxDeploymentChainLength = 1 })
	dir := b.program("chain", okProgram)
	var stacks []webhook.Scope
	for i := range 8 {
		stacks = append(stacks, webhook.Scope{Org: "acme", Project: "chain", Stack: fmt.Sprintf("s%d", i)})
	}
	for _, s := range stacks {
		b.settings(s, api.SourceContext{Local: &api.LocalSource{Path: dir}})
		for _, to := range stacks {
			if to != s {
				b.hook(webhook.Spec{Scope: s, Name: "to-" + to.Stack, PayloadURL: "chain/" + to.Stack, Active: true,
					Format: webhook.FormatPulumiDeployments, Filters: []webhook.Filter{webhook.UpdateSucceeded}})
			}
		}
	}
	if _, err := b.eng.Emit(b.ctx, engine.EmitParams{Filter: webhook.UpdateSucceeded, Subject: stacks[0]}); err != nil {
		t.Fatal(err)
	}
	b.runner.Wake()
	for _, s := range stacks[1:] {
		if d := b.wait(s, 1); d.Status != store.DeploymentSucceeded {
			t.Fatalf("deployment of %s = %s (%s)", s, d.Status, d.Reason)
		}
	}
	// Every deployed stack's update_succeeded recorded its 7 requests (to every other stack) as skipped.
	eventually(t, "the skipped requests of the second hop", func() bool {
		reqs, err := b.st.DeploymentRequestList(b.ctx, webhook.Scope{Org: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		skipped := 0
		for _, r := range reqs {
			if r.Status == engine.DeploymentStatusSkipped && strings.Contains(r.Reason, "MaxDeploymentChainLength") {
				skipped++
			}
		}
		return skipped == 7*7
	})
	total := 0
	for _, s := range stacks {
		ds, err := b.st.DeploymentList(b.ctx, store.DeploymentListParams{Stack: s})
		if err != nil {
			t.Fatal(err)
		}
		total += len(ds)
	}
	if total != 7 {
		t.Fatalf("%d deployments in all, want 7 (the first hop only)", total)
	}
}

// TestChainFromAPIStopsAtItsOrigin: a deployment started through the API begins its own
// chain, so stacks b and c hooked to each other deploy c once and then stop at the cycle back
// to b.
func TestChainFromAPIStopsAtItsOrigin(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	dir := b.program("chain", okProgram)
	sb, sc := webhook.Scope{Org: "acme", Project: "chain", Stack: "b"}, webhook.Scope{Org: "acme", Project: "chain", Stack: "c"}
	for _, pair := range [][2]webhook.Scope{{sb, sc}, {sc, sb}} {
		b.settings(pair[0], api.SourceContext{Local: &api.LocalSource{Path: dir}})
		b.hook(webhook.Spec{Scope: pair[0], Name: "to-" + pair[1].Stack, PayloadURL: "chain/" + pair[1].Stack, Active: true,
			Format: webhook.FormatPulumiDeployments, Filters: []webhook.Filter{webhook.UpdateSucceeded}})
	}
	b.queue(sb, "update")
	if d := b.wait(sc, 1); d.Status != store.DeploymentSucceeded || strings.Join(d.Cause, " ") != "acme/chain/b acme/chain/c" {
		t.Fatalf("deployment of c = %s, cause %v", d.Status, d.Cause)
	}
	eventually(t, "the cycle back to b recorded", func() bool {
		reqs, _ := b.st.DeploymentRequestList(b.ctx, sb)
		return len(reqs) == 1 && reqs[0].Status == engine.DeploymentStatusCycleDetected
	})
	if ds, _ := b.st.DeploymentList(b.ctx, store.DeploymentListParams{Stack: sb}); len(ds) != 1 {
		t.Fatalf("b was deployed %d times, want once", len(ds))
	}
}
