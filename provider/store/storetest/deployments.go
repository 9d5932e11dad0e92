package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// insertDeployments stores deployments (with a deployment_queued event) in one EventEmit.
func insertDeployments(t *testing.T, b *testBundle, ds ...*store.Deployment) {
	t.Helper()
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		for _, d := range ds {
			if err := tx.EventInsert(b.ctx, &store.Event{Filter: webhook.DeploymentQueued, Subject: d.Stack, Payload: []byte(`{}`), CreatedAt: T0}); err != nil {
				return err
			}
			if err := tx.DeploymentInsert(b.ctx, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("DeploymentInsert: %v", err)
	}
}

func testDeployments(t *testing.T, b *testBundle) {
	prod, qa := stackScope("acme", "web", "prod"), stackScope("acme", "web", "qa")
	d1 := &store.Deployment{Stack: prod, Operation: "update", Source: "api", Cause: []string{"acme/web/prod"}, CreatedAt: T0}
	d2 := &store.Deployment{Stack: prod, Operation: "refresh", Source: "api", CreatedAt: T0.Add(time.Second)}
	d3 := &store.Deployment{Stack: qa, Operation: "update", Source: "webhook", RequestID: "req1", CreatedAt: T0.Add(2 * time.Second)}
	insertDeployments(t, b, d1, d2, d3)
	if d1.Version != 1 || d2.Version != 2 || d3.Version != 1 || d1.ID == "" || d1.Status != store.DeploymentNotStarted {
		t.Fatalf("versions = %d %d %d (want 1 2 1 per stack), status %q", d1.Version, d2.Version, d3.Version, d1.Status)
	}
	if pending, err := b.st.DeploymentPending(b.ctx, prod, "refresh"); err != nil || !pending {
		t.Fatalf("DeploymentPending(refresh) = %v, %v", pending, err)
	}
	if pending, err := b.st.DeploymentPending(b.ctx, qa, "refresh"); err != nil || pending {
		t.Fatalf("DeploymentPending(qa refresh) = %v, %v", pending, err)
	}

	// One at a time per stack: the first claim takes prod's oldest and qa's, never prod's second.
	got, err := b.st.DeploymentClaim(b.ctx, store.DeploymentClaimParams{Worker: "w1", Now: T0, Limit: 10})
	if err != nil || len(got) != 2 || got[0].ID != d1.ID || got[1].ID != d3.ID || got[0].Status != store.DeploymentAccepted || got[0].Worker != "w1" {
		t.Fatalf("DeploymentClaim = %v, %v; want d1 and d3 accepted", got, err)
	}
	// Accepted, then running when the runner starts the operation; only its worker can.
	_, err = b.st.DeploymentStart(b.ctx, store.DeploymentStartParams{ID: d1.ID, Worker: "other", Now: T0})
	wantErr(t, "DeploymentStart by another worker", err, store.ErrDeploymentNotHeld)
	if started, err := b.st.DeploymentStart(b.ctx, store.DeploymentStartParams{ID: d1.ID, Worker: "w1", Now: T0}); err != nil ||
		started.Status != store.DeploymentRunning || started.Worker != "w1" {
		t.Fatalf("DeploymentStart = %+v, %v; want running", started, err)
	}
	_, err = b.st.DeploymentStart(b.ctx, store.DeploymentStartParams{ID: d1.ID, Worker: "w1", Now: T0})
	wantErr(t, "DeploymentStart of a running deployment", err, store.ErrDeploymentNotHeld)
	if got[0].Cause[0] != "acme/web/prod" || got[0].StartedAt.IsZero() {
		t.Fatalf("claimed deployment lost its cause or start: %+v", got[0])
	}
	if more, err := b.st.DeploymentClaim(b.ctx, store.DeploymentClaimParams{Worker: "w1", Now: T0, Limit: 10}); err != nil || len(more) != 0 {
		t.Fatalf("second claim while prod runs = %d, %v; want none", len(more), err)
	}
	if cancel, err := b.st.DeploymentProgress(b.ctx, store.DeploymentProgressParams{ID: d1.ID, Worker: "w1", Log: "step 1\n"}); err != nil || cancel {
		t.Fatalf("DeploymentProgress = %v, %v", cancel, err)
	}
	_, err = b.st.DeploymentProgress(b.ctx, store.DeploymentProgressParams{ID: d1.ID, Worker: "other", Log: "x"})
	wantErr(t, "DeploymentProgress by another worker", err, store.ErrDeploymentNotHeld)

	// Cancel: running is marked; the runner sees it on its next progress.
	c, err := b.st.DeploymentCancel(b.ctx, store.DeploymentCancelParams{Stack: prod, ID: d1.ID, Reason: "canceled", Now: T0})
	if err != nil || c.Status != store.DeploymentRunning || !c.CancelRequested {
		t.Fatalf("DeploymentCancel(running) = %+v, %v", c, err)
	}
	if cancel, err := b.st.DeploymentProgress(b.ctx, store.DeploymentProgressParams{ID: d1.ID, Worker: "w1", Log: "step 2\n"}); err != nil || !cancel {
		t.Fatalf("DeploymentProgress after cancel = %v, %v; want cancel", cancel, err)
	}
	_, err = b.st.DeploymentCancel(b.ctx, store.DeploymentCancelParams{Stack: qa, ID: d1.ID, Now: T0})
	wantErr(t, "DeploymentCancel under another stack", err, store.ErrNotFound)

	done, err := b.st.DeploymentComplete(b.ctx, store.DeploymentCompleteParams{ID: d1.ID, Worker: "w1", Status: store.DeploymentFailed,
		Reason: "canceled", Log: "all", ResourceChanges: map[string]int{"update": 2}, Now: T0.Add(time.Minute)})
	if err != nil || done.Status != store.DeploymentFailed || done.Log != "all" || done.ResourceChanges["update"] != 2 || done.FinishedAt.IsZero() {
		t.Fatalf("DeploymentComplete = %+v, %v", done, err)
	}
	_, err = b.st.DeploymentComplete(b.ctx, store.DeploymentCompleteParams{ID: d1.ID, Worker: "w1", Status: store.DeploymentSucceeded, Now: T0})
	wantErr(t, "DeploymentComplete twice", err, store.ErrDeploymentNotHeld)
	if _, err := b.st.DeploymentComplete(b.ctx, store.DeploymentCompleteParams{ID: d3.ID, Worker: "w1", Status: "running"}); err == nil {
		t.Fatal("DeploymentComplete with a status that is not final succeeded")
	}

	// A not-started deployment fails at once when canceled, and is never claimed.
	c, err = b.st.DeploymentCancel(b.ctx, store.DeploymentCancelParams{Stack: prod, ID: d2.ID, Reason: "canceled before it started", Now: T0})
	if err != nil || c.Status != store.DeploymentFailed || c.Reason != "canceled before it started" {
		t.Fatalf("DeploymentCancel(not-started) = %+v, %v", c, err)
	}
	if more, err := b.st.DeploymentClaim(b.ctx, store.DeploymentClaimParams{Worker: "w1", Now: T0, Limit: 10}); err != nil || len(more) != 0 {
		t.Fatalf("claim after cancel = %d, %v; want none", len(more), err)
	}

	list, err := b.st.DeploymentList(b.ctx, store.DeploymentListParams{Stack: prod})
	if err != nil || len(list) != 2 || list[0].ID != d2.ID || list[1].ID != d1.ID {
		t.Fatalf("DeploymentList = %v, %v; want newest first", list, err)
	}
	recent, err := b.st.DeploymentListRecent(b.ctx, store.DeploymentListRecentParams{Org: "acme", Limit: 2})
	if err != nil || len(recent) != 2 || recent[0].ID != d3.ID || recent[1].ID != d2.ID {
		t.Fatalf("DeploymentListRecent = %v, %v; want qa's then prod's newest", recent, err)
	}
	if none, err := b.st.DeploymentListRecent(b.ctx, store.DeploymentListRecentParams{Org: "globex"}); err != nil || len(none) != 0 {
		t.Fatalf("DeploymentListRecent of another organization = %v, %v; want none", none, err)
	}
	if _, err := b.st.DeploymentListRecent(b.ctx, store.DeploymentListRecentParams{}); err == nil {
		t.Fatal("DeploymentListRecent without an organization succeeded")
	}
	_, err = b.st.DeploymentGet(b.ctx, "nope")
	wantErr(t, "DeploymentGet of an unknown id", err, store.ErrNotFound)
	if _, err := b.st.DeploymentList(b.ctx, store.DeploymentListParams{Stack: orgScope("acme")}); err == nil {
		t.Fatal("DeploymentList without a stack succeeded")
	}
	if _, err := b.st.DeploymentClaim(b.ctx, store.DeploymentClaimParams{Now: T0, Limit: 1}); err == nil {
		t.Fatal("DeploymentClaim without a worker succeeded")
	}
	err = b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		return tx.DeploymentInsert(b.ctx, &store.Deployment{Stack: prod, CreatedAt: T0})
	})
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeploymentInsert without an operation = %v, want an error", err)
	}
	// A live runner's deployments are left alone.
	if failed, err := b.st.DeploymentFailDead(b.ctx, store.DeploymentFailDeadParams{Now: T0}); err != nil || len(failed) != 0 {
		t.Fatalf("DeploymentFailDead with the runner alive = %v, %v", failed, err)
	}
}

// testDeploymentsPruned: HistoryDeleteBefore deletes finished deployments (with their logs)
// older than the cut-off, never one still waiting or held, never a recent one, and never a
// stack's newest, whose version the next deployment counts on from.
func testDeploymentsPruned(t *testing.T, b *testBundle) {
	prod, qa := stackScope("acme", "web", "prod"), stackScope("acme", "web", "qa")
	finishAt := func(d *store.Deployment, at time.Time) {
		t.Helper()
		got, err := b.st.DeploymentClaim(b.ctx, store.DeploymentClaimParams{Worker: "w", Now: at, Limit: 1})
		if err != nil || len(got) != 1 || got[0].ID != d.ID {
			t.Fatalf("claim %s = %v, %v", d.ID, got, err)
		}
		if _, err := b.st.DeploymentComplete(b.ctx, store.DeploymentCompleteParams{ID: d.ID, Worker: "w", Status: store.DeploymentSucceeded,
			Log: "a long log", Now: at}); err != nil {
			t.Fatal(err)
		}
	}
	old, recent := T0, T0.Add(40*24*time.Hour)
	p1 := &store.Deployment{Stack: prod, Operation: "update", Source: "api", CreatedAt: old}
	insertDeployments(t, b, p1)
	finishAt(p1, old)
	p2 := &store.Deployment{Stack: prod, Operation: "update", Source: "api", CreatedAt: old}
	insertDeployments(t, b, p2)
	finishAt(p2, old)
	p3 := &store.Deployment{Stack: prod, Operation: "update", Source: "api", CreatedAt: recent}
	insertDeployments(t, b, p3)
	finishAt(p3, recent)
	q1 := &store.Deployment{Stack: qa, Operation: "update", Source: "api", CreatedAt: old}
	insertDeployments(t, b, q1)
	finishAt(q1, old)
	dev1 := &store.Deployment{Stack: stackScope("acme", "web", "dev"), Operation: "update", Source: "api", CreatedAt: old} // dev's newest, old
	insertDeployments(t, b, dev1)
	finishAt(dev1, old)
	q2 := &store.Deployment{Stack: qa, Operation: "refresh", Source: "api", CreatedAt: old} // still waiting
	insertDeployments(t, b, q2)

	var deleted int
	for calls := 0; ; calls++ {
		if calls > 10 {
			t.Fatal("HistoryDeleteBefore keeps saying there is more")
		}
		res, err := b.st.HistoryDeleteBefore(b.ctx, store.HistoryDeleteBeforeParams{Before: old.Add(30 * 24 * time.Hour), Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Deployments > 1 {
			t.Fatalf("one call deleted %d deployments, more than its limit of 1", res.Deployments)
		}
		deleted += res.Deployments
		if !res.More {
			break
		}
	}
	// prod keeps p3 (recent), qa q2 (waiting), dev dev1 (its newest, however old).
	if deleted != 3 {
		t.Errorf("deleted %d deployments, want prod's two old ones and qa's finished one", deleted)
	}
	for _, d := range []*store.Deployment{p1, p2, q1} {
		if _, err := b.st.DeploymentGet(b.ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("old finished deployment v%d is still there (%v)", d.Version, err)
		}
	}
	for _, d := range []*store.Deployment{p3, q2, dev1} {
		if _, err := b.st.DeploymentGet(b.ctx, d.ID); err != nil {
			t.Errorf("deployment %s v%d of %s was deleted: %v", d.Operation, d.Version, d.Stack, err)
		}
	}
	// Versions go on: prod's next is 4, qa's next is 3.
	p4 := &store.Deployment{Stack: prod, Operation: "update", Source: "api", CreatedAt: recent}
	insertDeployments(t, b, p4)
	if p4.Version != 4 {
		t.Errorf("prod's next version after pruning = %d, want 4", p4.Version)
	}
}
