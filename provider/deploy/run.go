package deploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// outcome is what a run found.
type outcome struct {
	status  string
	reason  string
	changes map[string]int
	drift   bool
}

func failed(format string, args ...any) outcome {
	return outcome{status: store.DeploymentFailed, reason: fmt.Sprintf(format, args...)}
}

// run carries out one claimed deployment and records and announces its end.
func (r *Runner) run(ctx context.Context, d *store.Deployment) {
	log := r.log.With("deployment", d.ID, "stack", d.Stack.String(), "operation", d.Operation, "version", d.Version)
	// Claimed deployments are accepted; this one's operation begins now.
	running, err := r.store.DeploymentStart(ctx, store.DeploymentStartParams{ID: d.ID, Worker: r.cfg.Worker, Now: r.cfg.Now()})
	if err != nil {
		log.Error("start the accepted deployment", "error", err)
		return
	}
	d = running
	log.Info("deployment started")
	r.emitDeployment(ctx, d, webhook.DeploymentStarted)

	var settings *api.DeploymentSettings
	var secrets []string
	ds, err := r.store.DeploymentSettingsGet(ctx, d.Stack)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = nil
	case err != nil:
		log.Error("read deployment settings", "error", err)
	default:
		for _, v := range ds.Secrets {
			secrets = append(secrets, v)
		}
		settings, err = api.SettingsFromStore(ds)
	}
	lb := newLogBuffer(secrets, r.cfg.LogMaxBytes)

	runCtx, cancelRun := context.WithTimeout(ctx, r.cfg.OperationTimeout)
	defer cancelRun()
	canceled := make(chan struct{})
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
			}
			cancel, err := r.store.DeploymentProgress(ctx, store.DeploymentProgressParams{ID: d.ID, Worker: r.cfg.Worker, Log: lb.String()})
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("save deployment progress", "error", err)
				}
				if errors.Is(err, store.ErrDeploymentNotHeld) {
					cancelRun()
					return
				}
				continue
			}
			if cancel {
				close(canceled)
				cancelRun()
				return
			}
		}
	}()

	var out outcome
	switch {
	case err != nil:
		out = failed("the stack's deployment settings cannot be read: %v", err)
	case settings == nil:
		out = failed("stack %s has no deployment settings: set them with POST /api/stacks/%s/%s/%s/deployments/settings",
			d.Stack.String(), d.Stack.Org, d.Stack.Project, d.Stack.Stack)
	default:
		out = r.execute(runCtx, d, settings, lb)
	}
	close(stopProgress)
	<-progressDone
	select {
	case <-canceled:
		out = failed("canceled while running: the operation was stopped")
	default:
		if ctx.Err() != nil {
			out = failed("the server stopped while the deployment was running; it is not re-run: look at the stack, then start a new deployment")
		} else if runCtx.Err() != nil && out.status == store.DeploymentFailed {
			out.reason = fmt.Sprintf("timed out after %s: %s", r.cfg.OperationTimeout, out.reason)
		}
	}
	if out.status == store.DeploymentFailed {
		lb.line("deployment failed: " + out.reason)
	}

	rec, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancelRec()
	done, err := r.store.DeploymentComplete(rec, store.DeploymentCompleteParams{
		ID: d.ID, Worker: r.cfg.Worker, Status: out.status, Reason: lb.redactor.Replace(out.reason), Log: lb.String(),
		DriftDetected: out.drift, ResourceChanges: out.changes, Now: r.cfg.Now(),
	})
	if err != nil {
		log.Error("record the end of the deployment", "error", err)
		return
	}
	log.Info("deployment finished", "status", done.Status, "reason", done.Reason)
	r.counts.add(done.Status)
	if done.Status == store.DeploymentSucceeded {
		r.emitDeployment(rec, done, webhook.DeploymentSucceeded)
	} else {
		r.emitDeployment(rec, done, webhook.DeploymentFailed)
	}
}

// emitDeployment emits a deployment_* event about d.
func (r *Runner) emitDeployment(ctx context.Context, d *store.Deployment, f webhook.Filter) {
	r.emit(ctx, d, f, engine.DeploymentOverrides(d))
}

// emit emits an event about d's stack with d's chain as its cause.
func (r *Runner) emit(ctx context.Context, d *store.Deployment, f webhook.Filter, overrides json.RawMessage) {
	r.emitParams(ctx, d, engine.EmitParams{Filter: f, Subject: d.Stack, Overrides: overrides})
}

// emitParams emits p with d's chain as its cause. An event that cannot be stored is logged:
// the deployment's own record in the store stays the truth.
func (r *Runner) emitParams(ctx context.Context, d *store.Deployment, p engine.EmitParams) {
	p.Cause = d.Cause
	if _, err := r.eng.Emit(context.WithoutCancel(ctx), p); err != nil {
		r.log.Error("emit deployment event", "filter", string(p.Filter), "deployment", d.ID, "error", err)
	}
}

// historyEvent builds the stack event of an operation the backend records (update, refresh,
// destroy) from the history entry the run wrote, exactly as a backend watcher and the pulumi
// wrapper build it: the same payload and the same idempotency key. A watcher of the same
// backend for the same organization then replays this event instead of announcing the run a
// second time. Without a readable entry (another backend's credentials in the settings' env,
// say) it reports false and the runner describes the run itself.
func (r *Runner) historyEvent(ctx context.Context, d *store.Deployment, s *api.DeploymentSettings, started time.Time) (engine.EmitParams, bool) {
	if s.Backend == nil || s.Backend.URL == "" {
		return engine.EmitParams{}, false
	}
	b, err := watch.OpenBackend(ctx, s.Backend.URL)
	if err != nil {
		r.log.Debug("read the run's history entry", "deployment", d.ID, "error", err)
		return engine.EmitParams{}, false
	}
	defer b.Close()
	e, err := b.LatestEntry(ctx, watch.StackRef{Project: d.Stack.Project, Name: d.Stack.Stack}, started)
	if err != nil || e == nil {
		r.log.Debug("find the run's history entry", "deployment", d.ID, "error", err)
		return engine.EmitParams{}, false
	}
	p, ok, err := e.EmitParams(d.Stack.Org)
	if err != nil || !ok {
		return engine.EmitParams{}, false
	}
	return p, true
}

// execute prepares the program and runs the operation.
func (r *Runner) execute(ctx context.Context, d *store.Deployment, s *api.DeploymentSettings, lb *logBuffer) outcome {
	dir, cleanup, err := r.source(ctx, d, s, lb)
	if err != nil {
		return failed("%v", err)
	}
	defer cleanup()

	env := r.environment(s)
	if s.OperationContext != nil {
		for i, c := range s.OperationContext.PreRunCommands {
			lb.line("$ " + c)
			cmd := exec.CommandContext(ctx, "sh", "-c", c)
			cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, envList(env), lb, lb
			killGroupOnCancel(cmd)
			if err := cmd.Run(); err != nil {
				return failed("preRunCommands[%d] %q failed: %v", i, c, err)
			}
		}
	}

	pulumiCmd, err := r.pulumiCommand(env)
	if err != nil {
		return failed("%v", err)
	}
	opts := []auto.LocalWorkspaceOption{auto.WorkDir(dir), auto.EnvVars(env), auto.Pulumi(pulumiCmd)}
	if s.Backend != nil && s.Backend.SecretsProvider != "" {
		opts = append(opts, auto.SecretsProvider(s.Backend.SecretsProvider))
	}
	ws, err := auto.NewLocalWorkspace(ctx, opts...)
	if err != nil {
		return failed("open the program in %s: %v", dir, err)
	}
	proj, err := ws.ProjectSettings(ctx)
	if err != nil {
		return failed("read the program's Pulumi.yaml in %s: %v", dir, err)
	}
	if string(proj.Name) != d.Stack.Project {
		return failed("the program in %s is project %q, not %q: point the stack's sourceContext at the program of project %q",
			dir, proj.Name, d.Stack.Project, d.Stack.Project)
	}
	if err := checkLanguageHost(proj.Runtime.Name(), env, pulumiCmd); err != nil {
		return failed("%v", err)
	}

	var stack auto.Stack
	if d.Operation == webhook.OperationUpdate || d.Operation == webhook.OperationPreview {
		stack, err = auto.UpsertStack(ctx, d.Stack.Stack, ws)
	} else {
		stack, err = auto.SelectStack(ctx, d.Stack.Stack, ws)
	}
	if err != nil {
		return failed("select stack %s: %v", d.Stack.Stack, err)
	}
	lb.line(fmt.Sprintf("Running %s of stack %s (project %s) in %s", d.Operation, d.Stack.Stack, proj.Name, dir))
	out := r.operate(ctx, d, s, stack, lb)
	return out
}

// operate runs d's operation on stack and emits the stack and drift events it produces.
func (r *Runner) operate(ctx context.Context, d *store.Deployment, s *api.DeploymentSettings, stack auto.Stack, lb *logBuffer) outcome {
	result := func(err error, changes map[string]int) outcome {
		if err != nil {
			return outcome{status: store.DeploymentFailed, reason: firstLine(lb.redactor.Replace(err.Error())), changes: changes}
		}
		return outcome{status: store.DeploymentSucceeded, changes: changes}
	}
	started := time.Now() // pulumi runs here: its history timestamps are this clock's
	stackEvent := func(ok, bad webhook.Filter, out outcome) {
		if d.Operation != webhook.OperationPreview {
			if p, found := r.historyEvent(ctx, d, s, started); found {
				r.emitParams(ctx, d, p)
				return
			}
		}
		f := ok
		if out.status != store.DeploymentSucceeded {
			f = bad
		}
		b, _ := json.Marshal(map[string]any{"resourceChanges": nonNil(out.changes)})
		r.emit(ctx, d, f, b)
	}
	switch d.Operation {
	case webhook.OperationUpdate:
		res, err := stack.Up(ctx, optup.ProgressStreams(lb), optup.ErrorProgressStreams(lb), optup.Color("never"))
		out := result(err, summaryChanges(res.Summary.ResourceChanges))
		stackEvent(webhook.UpdateSucceeded, webhook.UpdateFailed, out)
		return out
	case webhook.OperationPreview:
		res, err := stack.Preview(ctx, optpreview.ProgressStreams(lb), optpreview.ErrorProgressStreams(lb), optpreview.Color("never"))
		out := result(err, opChanges(res.ChangeSummary))
		stackEvent(webhook.PreviewSucceeded, webhook.PreviewFailed, out)
		return out
	case webhook.OperationRefresh:
		res, err := stack.Refresh(ctx, optrefresh.ProgressStreams(lb), optrefresh.ErrorProgressStreams(lb), optrefresh.Color("never"))
		out := result(err, summaryChanges(res.Summary.ResourceChanges))
		stackEvent(webhook.RefreshSucceeded, webhook.RefreshFailed, out)
		return out
	case webhook.OperationDestroy:
		res, err := stack.Destroy(ctx, optdestroy.ProgressStreams(lb), optdestroy.ErrorProgressStreams(lb), optdestroy.Color("never"))
		out := result(err, summaryChanges(res.Summary.ResourceChanges))
		stackEvent(webhook.DestroySucceeded, webhook.DestroyFailed, out)
		if err == nil && s.OperationContext != nil && s.OperationContext.Options != nil && s.OperationContext.Options.DeleteAfterDestroy {
			if err := stack.Workspace().RemoveStack(ctx, d.Stack.Stack); err != nil {
				return failed("destroyed, but removing the stack failed (deleteAfterDestroy): %v", err)
			}
			lb.line("Removed stack " + d.Stack.Stack + " (deleteAfterDestroy)")
		}
		return out
	case webhook.OperationDetectDrift:
		out := r.detectDrift(ctx, d, stack, lb)
		remediate := d.AutoRemediate || (s.OperationContext != nil && s.OperationContext.Options != nil && s.OperationContext.Options.RemediateIfDriftDetected)
		if out.status == store.DeploymentSucceeded && out.drift && remediate {
			rem := r.remediate(ctx, d, stack, lb)
			rem.drift = true
			return rem
		}
		return out
	case webhook.OperationRemediateDrift:
		return r.remediate(ctx, d, stack, lb)
	}
	return failed("operation %q is not one this runner knows", d.Operation)
}

// detectDrift runs a preview-only refresh: drift when it shows changes.
func (r *Runner) detectDrift(ctx context.Context, d *store.Deployment, stack auto.Stack, lb *logBuffer) outcome {
	lb.line("Detecting drift (preview-only refresh)")
	res, err := stack.PreviewRefresh(ctx, optrefresh.ProgressStreams(lb), optrefresh.ErrorProgressStreams(lb), optrefresh.Color("never"))
	changes := opChanges(res.ChangeSummary)
	out := outcome{status: store.DeploymentSucceeded, changes: changes}
	if err != nil {
		out = outcome{status: store.DeploymentFailed, reason: firstLine(lb.redactor.Replace(err.Error())), changes: changes}
	} else {
		for op, n := range changes {
			if op != string(apitype.OpSame) && n > 0 {
				out.drift = true
			}
		}
	}
	payload := func() json.RawMessage {
		b, _ := json.Marshal(map[string]any{"driftRunId": d.ID, "resourceChanges": nonNil(changes)})
		return b
	}
	if out.drift {
		lb.line("Drift detected")
		r.emit(ctx, d, webhook.DriftDetected, payload())
	}
	if out.status == store.DeploymentSucceeded {
		r.emit(ctx, d, webhook.DriftDetectionSucceeded, payload())
	} else {
		r.emit(ctx, d, webhook.DriftDetectionFailed, payload())
	}
	return out
}

// remediate runs `up --refresh`.
func (r *Runner) remediate(ctx context.Context, d *store.Deployment, stack auto.Stack, lb *logBuffer) outcome {
	lb.line("Remediating drift (update with refresh)")
	res, err := stack.Up(ctx, optup.Refresh(), optup.ProgressStreams(lb), optup.ErrorProgressStreams(lb), optup.Color("never"))
	out := outcome{status: store.DeploymentSucceeded, changes: summaryChanges(res.Summary.ResourceChanges)}
	if err != nil {
		out.status, out.reason = store.DeploymentFailed, firstLine(lb.redactor.Replace(err.Error()))
	}
	b, _ := json.Marshal(map[string]any{"resourceChanges": nonNil(out.changes)})
	if out.status == store.DeploymentSucceeded {
		r.emit(ctx, d, webhook.DriftRemediationSucceeded, b)
	} else {
		r.emit(ctx, d, webhook.DriftRemediationFailed, b)
	}
	return out
}

// source returns the program's directory: the local path, or a fresh clone of the git source.
func (r *Runner) source(ctx context.Context, d *store.Deployment, s *api.DeploymentSettings, lb *logBuffer) (string, func(), error) {
	noop := func() {}
	sc := s.SourceContext
	switch {
	case sc == nil || (sc.Local == nil && sc.Git == nil):
		return "", noop, errors.New("the deployment settings have no sourceContext: give sourceContext.local.path or sourceContext.git.repoUrl")
	case sc.Local != nil:
		if sc.Local.Path == "" || !filepath.IsAbs(sc.Local.Path) {
			return "", noop, fmt.Errorf("sourceContext.local.path %q must be an absolute directory", sc.Local.Path)
		}
		if st, err := os.Stat(sc.Local.Path); err != nil || !st.IsDir() {
			return "", noop, fmt.Errorf("sourceContext.local.path %s is not a directory on the runner's machine", sc.Local.Path)
		}
		return sc.Local.Path, noop, nil
	}
	g := sc.Git
	if g.RepoURL == "" {
		return "", noop, errors.New("sourceContext.git.repoUrl is required")
	}
	ws, err := os.MkdirTemp(r.cfg.WorkDir, "pulumi-webhooks-deploy-")
	if err != nil {
		return "", noop, fmt.Errorf("create a workspace for the git checkout: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(ws) }
	repo := filepath.Join(ws, "repo")
	args := []string{}
	if g.GitAuth != nil {
		var user, pass string
		switch {
		case g.GitAuth.AccessToken != nil:
			user, pass = "x-access-token", g.GitAuth.AccessToken.Value
		case g.GitAuth.BasicAuth != nil:
			user, pass = g.GitAuth.BasicAuth.UserName.Value, g.GitAuth.BasicAuth.Password.Value
		}
		if pass != "" {
			hdr := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
			args = append(args, "-c", "http.extraHeader="+hdr)
		}
	}
	args = append(args, "clone", "--quiet")
	if g.Branch != "" && g.Commit == "" {
		args = append(args, "--branch", strings.TrimPrefix(g.Branch, "refs/heads/"))
	}
	args = append(args, "--", g.RepoURL, repo)
	lb.line("$ git clone " + g.RepoURL)
	git := func(dir string, args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, append(r.cfg.Env, "GIT_TERMINAL_PROMPT=0"), lb, lb
		return cmd.Run()
	}
	if err := git(ws, args...); err != nil {
		cleanup()
		return "", noop, fmt.Errorf("git clone of sourceContext.git.repoUrl %s failed: %v (see the log)", g.RepoURL, err)
	}
	if g.Commit != "" {
		if err := git(repo, "checkout", "--quiet", g.Commit); err != nil {
			cleanup()
			return "", noop, fmt.Errorf("git checkout of sourceContext.git.commit %s failed: %v", g.Commit, err)
		}
	}
	dir := repo
	if g.RepoDir != "" {
		dir = filepath.Join(repo, filepath.FromSlash(g.RepoDir))
		if rel, err := filepath.Rel(repo, dir); err != nil || strings.HasPrefix(rel, "..") {
			cleanup()
			return "", noop, fmt.Errorf("sourceContext.git.repoDir %q leaves the repository", g.RepoDir)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			cleanup()
			return "", noop, fmt.Errorf("sourceContext.git.repoDir %q is not a directory of the repository", g.RepoDir)
		}
	}
	return dir, cleanup, nil
}

// environment is the runner's base environment plus the settings' variables and backend.
func (r *Runner) environment(s *api.DeploymentSettings) map[string]string {
	env := map[string]string{}
	for _, kv := range r.cfg.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	// The Automation API passes --yes where an operation needs it; a --yes forced through the
	// environment breaks the preview-only refresh of drift detection.
	env["PULUMI_SKIP_CONFIRMATIONS"] = "false"
	if s.Backend != nil {
		if s.Backend.URL != "" {
			env["PULUMI_BACKEND_URL"] = s.Backend.URL
		}
		if s.Backend.Passphrase != nil {
			env["PULUMI_CONFIG_PASSPHRASE"] = s.Backend.Passphrase.Value
		}
	}
	if s.OperationContext != nil {
		for k, v := range s.OperationContext.EnvironmentVariables {
			env[k] = v.Value
		}
	}
	return env
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// lookPath finds name on the PATH of env.
func lookPath(name string, env map[string]string) (string, error) {
	for _, dir := range filepath.SplitList(env["PATH"]) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH", name)
}

// pulumiCommand finds the pulumi CLI on the PATH the operation runs with.
func (r *Runner) pulumiCommand(env map[string]string) (auto.PulumiCommand, error) {
	p, err := lookPath("pulumi", env)
	if err != nil {
		return nil, errors.New("the pulumi CLI is not installed on this runner's PATH: install it (https://www.pulumi.com/docs/install/) where serve runs")
	}
	root := filepath.Dir(filepath.Dir(p))
	if filepath.Base(filepath.Dir(p)) != "bin" {
		return auto.NewPulumiCommand(&auto.PulumiCommandOptions{SkipVersionCheck: true})
	}
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, SkipVersionCheck: true})
	if err != nil {
		return nil, fmt.Errorf("run the pulumi CLI at %s: %w", p, err)
	}
	return cmd, nil
}

// checkLanguageHost makes sure the program's language host is installed, so that a missing
// one fails with its name rather than a plugin error deep in the log.
func checkLanguageHost(runtime string, env map[string]string, _ auto.PulumiCommand) error {
	host := "pulumi-language-" + runtime
	if _, err := lookPath(host, env); err == nil {
		return nil
	}
	if p, err := lookPath("pulumi", env); err == nil {
		if st, err := os.Stat(filepath.Join(filepath.Dir(p), host)); err == nil && !st.IsDir() {
			return nil
		}
	}
	return fmt.Errorf("the program's runtime is %q but its language host %s is not installed on this runner (not on PATH, nor beside the pulumi CLI): install the %s language support where serve runs",
		runtime, host, runtime)
}

func summaryChanges(m *map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return *m
}

func opChanges(m map[apitype.OpType]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// firstLine shortens an error of the Automation API (which holds the whole output) to a
// reason; the log has the rest.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}
