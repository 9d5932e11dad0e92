package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// queue queues a deployment as the API does.
func (b *bundle) queue(stack webhook.Scope, op string) *store.Deployment {
	b.t.Helper()
	d, _, err := b.eng.DeploymentCreate(b.ctx, engine.DeploymentCreateParams{Stack: stack, Operation: op, Source: engine.DeploymentSourceAPI})
	if err != nil {
		b.t.Fatal(err)
	}
	if b.runner != nil {
		b.runner.Wake()
	}
	return d
}

// TestFailingProgram: an update whose program fails gives deployment_failed, and the
// deployment's log holds the program's error.
func TestFailingProgram(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	rc := newReceiver(t)
	b.subscribe(rc, webhook.DeploymentFailed, webhook.UpdateFailed)
	dir := b.program("broken", "name: broken\nruntime: yaml\noutputs:\n  value: ${doesNotExist.someOutput}\n")
	stack := webhook.Scope{Org: "acme", Project: "broken", Stack: "dev"}
	b.settings(stack, api.SourceContext{Local: &api.LocalSource{Path: dir}})
	b.queue(stack, "update")
	d := b.wait(stack, 1)
	if d.Status != store.DeploymentFailed || !strings.Contains(d.Log, "doesNotExist") {
		t.Fatalf("deployment = %s (%s); log:\n%s", d.Status, d.Reason, d.Log)
	}
	eventually(t, "deployment_failed and update_failed", func() bool {
		return len(rc.find("deployment_failed", "dev")) == 1 && len(rc.find("update_failed", "dev")) == 1
	})
	if p := rc.find("deployment_failed", "dev")[0].Payload; p["status"] != "failed" || p["operation"] != "update" {
		t.Errorf("deployment_failed payload = %v", p)
	}
}

// TestMissingLanguageHost: a program whose language host is not installed fails with a
// reason naming the host, and no settings at all fails naming the endpoint to set them.
func TestMissingLanguageHost(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	dir := b.program("nodeapp", "name: nodeapp\nruntime: nodejs\n")
	stack := webhook.Scope{Org: "acme", Project: "nodeapp", Stack: "dev"}
	b.settings(stack, api.SourceContext{Local: &api.LocalSource{Path: dir}})
	b.queue(stack, "update")
	d := b.wait(stack, 1)
	if d.Status != store.DeploymentFailed || !strings.Contains(d.Reason, "pulumi-language-nodejs") {
		t.Fatalf("deployment = %s, reason %q", d.Status, d.Reason)
	}
	bare := webhook.Scope{Org: "acme", Project: "nodeapp", Stack: "nosettings"}
	b.queue(bare, "update")
	d = b.wait(bare, 1)
	if d.Status != store.DeploymentFailed || !strings.Contains(d.Reason, "no deployment settings") {
		t.Fatalf("deployment without settings = %s, reason %q", d.Status, d.Reason)
	}
	wrong := webhook.Scope{Org: "acme", Project: "other", Stack: "dev"}
	b.settings(wrong, api.SourceContext{Local: &api.LocalSource{Path: dir}})
	b.queue(wrong, "preview")
	if d = b.wait(wrong, 1); d.Status != store.DeploymentFailed || !strings.Contains(d.Reason, `is project "nodeapp", not "other"`) {
		t.Fatalf("deployment of the wrong project = %s, reason %q", d.Status, d.Reason)
	}
}

// TestQueuedSurvivesRestart: a deployment queued while no runner runs waits in the store
// through a restart and runs after it; a deployment left running by a runner whose process
// ended is failed with the reason, not run again.
func TestQueuedSurvivesRestart(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	dir := b.program("chain", okProgram)
	stack := webhook.Scope{Org: "acme", Project: "chain", Stack: "restart"}
	b.settings(stack, api.SourceContext{Local: &api.LocalSource{Path: dir}})
	b.queue(stack, "update")

	// A runner of another process claims a second stack's deployment and dies.
	other := webhook.Scope{Org: "acme", Project: "chain", Stack: "orphan"}
	b.settings(other, api.SourceContext{Local: &api.LocalSource{Path: dir}})
	orphan := b.queue(other, "update")
	dead, err := sqlite.Open(b.ctx, sqlite.Config{Path: b.dbPath, Key: b.key, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dead.DeploymentClaim(b.ctx, store.DeploymentClaimParams{Worker: "deploy/dead-host/1", Limit: 1}); err != nil || len(got) != 1 || got[0].ID == orphan.ID {
		// The oldest deployment (stack restart's) is claimed first; claim once more for the orphan.
		if err != nil {
			t.Fatal(err)
		}
	}
	b.close()
	dead.Close()

	rc := newReceiver(t)
	b.open(1)
	b.subscribe(rc, webhook.DeploymentFailed, webhook.DeploymentSucceeded)
	b.runner.Wake()
	// Whichever one the dead runner held is failed with the reason; the other one runs.
	var failedOne, ranOne *store.Deployment
	for _, s := range []webhook.Scope{stack, other} {
		d := b.wait(s, 1)
		if d.Status == store.DeploymentFailed {
			failedOne = d
		} else {
			ranOne = d
		}
	}
	if failedOne == nil || ranOne == nil || !strings.HasPrefix(failedOne.Reason, store.DeploymentFailDeadReason) {
		t.Fatalf("after the restart: failed %+v, ran %+v", failedOne, ranOne)
	}
	if ranOne.Status != store.DeploymentSucceeded {
		t.Fatalf("the queued deployment = %s (%s)\n%s", ranOne.Status, ranOne.Reason, ranOne.Log)
	}
	eventually(t, "deployment_failed of the dead runner's deployment", func() bool {
		return len(rc.find("deployment_failed", failedOne.Stack.Stack)) == 1
	})
}

// TestGitSource: the program is cloned from a bare repository given by its path, at a branch,
// from a directory of the repository.
func TestGitSource(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	work := filepath.Join(b.dir, "work")
	bare := filepath.Join(b.dir, "repo.git")
	if err := os.MkdirAll(filepath.Join(work, "infra"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "infra", "Pulumi.yaml"), []byte(strings.Replace(okProgram, "name: chain", "name: gitapp", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	git := func(dir string, args ...string) {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(b.env, "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git(work, "init", "-q")
	git(work, "add", ".")
	git(work, "commit", "-q", "-m", "program")
	git(b.dir, "clone", "-q", "--bare", work, bare)
	stack := webhook.Scope{Org: "acme", Project: "gitapp", Stack: "dev"}
	b.settings(stack, api.SourceContext{Git: &api.GitSource{RepoURL: bare, Branch: "refs/heads/main", RepoDir: "infra"}})
	b.queue(stack, "update")
	d := b.wait(stack, 1)
	if d.Status != store.DeploymentSucceeded {
		t.Fatalf("git deployment = %s (%s)\n%s", d.Status, d.Reason, d.Log)
	}
	b.settings(stack, api.SourceContext{Git: &api.GitSource{RepoURL: filepath.Join(b.dir, "missing.git")}})
	b.queue(stack, "refresh")
	d = b.wait(stack, 2)
	if d.Status != store.DeploymentFailed || !strings.Contains(d.Reason, "git clone") {
		t.Fatalf("deployment of a missing repository = %s (%s)", d.Status, d.Reason)
	}
}

// TestCancelRunning: a cancel of a running deployment stops it; it fails saying so.
func TestCancelRunning(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	dir := b.program("chain", okProgram)
	stack := webhook.Scope{Org: "acme", Project: "chain", Stack: "slow"}
	b.settings(stack, api.SourceContext{Local: &api.LocalSource{Path: dir}}, "sleep 60")
	d := b.queue(stack, "update")
	eventually(t, "the deployment to run", func() bool {
		got, err := b.st.DeploymentGet(b.ctx, d.ID)
		return err == nil && got.Status == store.DeploymentRunning
	})
	if _, err := b.st.DeploymentCancel(b.ctx, store.DeploymentCancelParams{Stack: stack, ID: d.ID, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got := b.wait(stack, 1)
	if got.Status != store.DeploymentFailed || !strings.Contains(got.Reason, "canceled") {
		t.Fatalf("canceled deployment = %s (%s)", got.Status, got.Reason)
	}
}

// TestRunnerMetrics: the collector reports the workers and the deployments finished.
func TestRunnerMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	stack := webhook.Scope{Org: "acme", Project: "none", Stack: "dev"}
	b.queue(stack, "update") // no settings: fails at once
	b.wait(stack, 1)
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.runner.Collector())
	eventually(t, "the failed deployment counted", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				key := mf.GetName()
				for _, l := range m.GetLabel() {
					key += "/" + l.GetValue()
				}
				got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
		return got["pulumi_webhooks_deployment_workers"] == 2 && got["pulumi_webhooks_deployments_finished_total/failed"] == 1 &&
			got["pulumi_webhooks_deployments_finished_total/succeeded"] == 0
	})
}
