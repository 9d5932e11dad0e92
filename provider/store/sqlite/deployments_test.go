package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestDeploymentRunnerDied: a deployment left running by a store that closed (its process
// ended) is failed by the next store with a reason, never handed out again.
func TestDeploymentRunnerDied(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	key := make([]byte, 32)
	first := openAt(t, path, Config{Key: key})
	ctx := t.Context()
	stack := webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
	d := &store.Deployment{Stack: stack, Operation: "update"}
	if err := first.EventEmit(ctx, func(tx store.EmitTx) error { return tx.DeploymentInsert(ctx, d) }); err != nil {
		t.Fatal(err)
	}
	if got, err := first.DeploymentClaim(ctx, store.DeploymentClaimParams{Worker: "runner-1", Limit: 1}); err != nil || len(got) != 1 {
		t.Fatalf("claim = %d, %v", len(got), err)
	}
	second := openAt(t, path, Config{Key: key})
	if failed, err := second.DeploymentFailDead(ctx, store.DeploymentFailDeadParams{}); err != nil || len(failed) != 0 {
		t.Fatalf("DeploymentFailDead while the runner lives = %d, %v", len(failed), err)
	}
	first.Close()
	failed, err := second.DeploymentFailDead(ctx, store.DeploymentFailDeadParams{})
	if err != nil || len(failed) != 1 || failed[0].Status != store.DeploymentFailed || !strings.HasPrefix(failed[0].Reason, store.DeploymentFailDeadReason) {
		t.Fatalf("DeploymentFailDead after the runner ended = %+v, %v", failed, err)
	}
	if got, err := second.DeploymentClaim(ctx, store.DeploymentClaimParams{Worker: "runner-2", Limit: 1}); err != nil || len(got) != 0 {
		t.Fatalf("the dead runner's deployment was claimed again: %d, %v", len(got), err)
	}
}
