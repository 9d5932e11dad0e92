package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

const (
	// commandTimeout bounds one pulumi command or runner run.
	commandTimeout = 5 * time.Minute
	// passphrase encrypts the stacks' secrets.
	passphrase = "harness-passphrase"
	// stackName is the name of every program's stack.
	stackName = "harness"
)

// pstack is one program's stack: its private PULUMI_HOME and file backend, its working
// directory, and how it is run (the CLI for YAML, a runner for the others).
type pstack struct {
	h     *harness
	lang  string
	dir   string // the YAML project, or the runner's work directory
	home  string
	state string
	// configured is true once the YAML stack exists with its fixed configuration.
	configured bool
}

func (h *harness) newStack(lang string) *pstack {
	base := filepath.Join(h.dir, "stacks", lang)
	s := &pstack{h: h, lang: lang, dir: filepath.Join(base, "project"), home: filepath.Join(base, "home"), state: filepath.Join(base, "state")}
	for _, d := range []string{s.dir, s.home, s.state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			h.t.Fatal(err)
		}
	}
	if lang == "yaml" {
		if err := copyTree(harnessProgram("yaml"), s.dir); err != nil {
			h.t.Fatal(err)
		}
	}
	return s
}

// environ is the environment of every process of the stack: offline, passphrase secrets, its
// own PULUMI_HOME, the plugin on PATH, and the server's store as the default store.
func (s *pstack) environ(extra []string) []string {
	pe := pulumitest.PulumiEnv{ToolBin: suite.toolBin, Path: []string{suite.pluginDir}, Home: s.home, State: s.state,
		Passphrase: passphrase, Store: s.h.store}
	return append(pe.Environ(), extra...)
}

// run runs a command in the stack's directory and returns stdout; it fails the test when the
// command fails, and checks that no secret of the harness appears in what it printed.
func (s *pstack) run(t *testing.T, extraEnv []string, name string, args ...string) string {
	t.Helper()
	out, err := s.tryRun(t, extraEnv, name, args...)
	if err != nil {
		t.Fatalf("[%s] %v", s.lang, err)
	}
	return out
}

func (s *pstack) tryRun(t *testing.T, extraEnv []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.dir
	cmd.Env = s.environ(extraEnv)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("[%s] %s %s: %s", s.lang, filepath.Base(name), s.h.shortArgs(args), time.Since(start).Round(time.Millisecond))
	s.h.assertNoSecrets(t, s.lang+" "+filepath.Base(name), stdout.String(), stderr.String())
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), s.h.shortArgs(args), err, s.h.redact(stdout.String()), s.h.redact(stderr.String()))
	}
	return stdout.String(), nil
}

// shortArgs shows a command's arguments for the log and errors: the runner's JSON parameters
// as their action only, and every secret and token of the harness replaced.
func (h *harness) shortArgs(args []string) string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if strings.HasPrefix(a, "{") {
			var p runnerParams
			if json.Unmarshal([]byte(a), &p) == nil {
				a = p.Action
			} else {
				a = "{...}"
			}
		}
		out = append(out, h.redact(a))
	}
	return strings.Join(out, " ")
}

func (s *pstack) pulumi(t *testing.T, args ...string) string {
	t.Helper()
	return s.run(t, nil, filepath.Join(suite.toolBin, "pulumi"), append(args, "--non-interactive")...)
}

// programHooks is the "hooks" configuration of a runner program: the plan's hooks of lang.
func (s *pstack) programHooks(plan []hook) []map[string]any {
	var out []map[string]any
	for _, hk := range plan {
		if hk.Lang != s.lang {
			continue
		}
		m := map[string]any{
			"name": hk.Key, "provider": hk.Provider, "organizationName": hk.Scope.Org,
			"displayName": hk.displayName(), "payloadUrl": s.h.payloadURL(hk), "active": hk.Active,
		}
		for k, v := range map[string]string{"projectName": hk.Scope.Project, "stackName": hk.Scope.Stack,
			"environmentName": hk.Scope.Env, "format": hk.Format, "secretKey": hk.SecretName} {
			if v != "" {
				m[k] = v
			}
		}
		if len(hk.Filters) > 0 {
			m["filters"] = hk.Filters
		}
		if len(hk.Groups) > 0 {
			m["groups"] = hk.Groups
		}
		out = append(out, m)
	}
	return out
}

// runner runs one Automation API action with the plan's hooks as configuration.
func (s *pstack) runner(t *testing.T, action string, plan []hook) runnerResult {
	t.Helper()
	r := suite.runners[s.lang]
	hooksJSON, err := json.Marshal(s.programHooks(plan))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for _, hk := range plan {
		if hk.Lang == s.lang && hk.SecretName != "" {
			secrets[hk.SecretName] = s.h.secret(hk.SecretName)
		}
	}
	secretsJSON, err := json.Marshal(secrets)
	if err != nil {
		t.Fatal(err)
	}
	p := runnerParams{
		Action: action, WorkDir: s.dir, Project: "harness-" + s.lang, Stack: stackName, Program: r.Program,
		Config: map[string]configValue{
			"hooks":       {Value: string(hooksJSON)},
			"hookSecrets": {Value: string(secretsJSON), Secret: true},
			"storePath":   {Value: s.h.store},
			"apiUrl":      {Value: s.h.srv.url()},
			"accessToken": {Value: s.h.tokens[org1], Secret: true},
		},
	}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	out := s.run(t, r.Env, r.Argv[0], append(r.Argv[1:], string(raw))...)
	var res runnerResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("[%s] decode the runner's %s result: %v\n%s", s.lang, action, err, out)
	}
	return res
}

// yamlConfig sets the YAML stack's configuration for a phase (creating the stack first).
func (s *pstack) yamlConfig(t *testing.T, phase int) {
	t.Helper()
	if !s.configured {
		s.pulumi(t, "stack", "init", stackName)
		s.pulumi(t, "config", "set-all", "--path",
			"--plaintext", "storePath="+s.h.store,
			"--plaintext", "apiUrl="+s.h.srv.url(),
			"--secret", "accessToken="+s.h.tokens[org1],
			"--plaintext", "jsonUrl="+s.h.recv[recvJSON].url()+"/yaml",
			"--plaintext", "chatUrl="+s.h.recv[recvChat].url()+"/yaml",
			"--plaintext", "goneUrl="+s.h.recv[recvGone].url()+"/yaml/gone",
			"--secret", "orgSecret="+s.h.secret("yaml/org"),
			"--secret", "envSecret="+s.h.secret("yaml/env-whsec"),
		)
		s.configured = true
	} else {
		s.pulumi(t, "config", "rm", "orgFilters")
	}
	var args []string
	for _, hk := range yamlPlan(phase) {
		switch hk.Key {
		case "org-filters":
			for i, f := range hk.Filters {
				args = append(args, "--plaintext", fmt.Sprintf("orgFilters[%d]=%s", i, f))
			}
		case "teams-all":
			args = append(args, "--plaintext", fmt.Sprintf("teamsActive=%t", hk.Active))
		case "stack-groups":
			args = append(args, "--plaintext", "slackStack="+hk.Scope.Stack)
		}
	}
	s.pulumi(t, append([]string{"config", "set-all", "--path"}, args...)...)
}

// up brings the stack to a phase of the plan and returns the hook IDs it exports, by key.
func (s *pstack) up(t *testing.T, phase int) map[string]string {
	t.Helper()
	var outputs map[string]any
	if s.lang == "yaml" {
		s.yamlConfig(t, phase)
		s.pulumi(t, "up", "--yes", "--skip-preview")
		out := s.pulumi(t, "stack", "output", "--json")
		if err := json.Unmarshal([]byte(out), &outputs); err != nil {
			t.Fatalf("[yaml] decode stack output: %v\n%s", err, out)
		}
	} else {
		res := s.runner(t, "up", planFor(phase))
		s.checkChanges(t, phase, res.Changes)
		outputs = res.Outputs
	}
	ids := map[string]string{}
	m, _ := outputs["hookIds"].(map[string]any)
	for k, v := range m {
		ids[k], _ = v.(string)
	}
	return ids
}

// checkChanges checks what a runner's up did: in phase 1 it creates the stack, the two
// providers and every hook; in phase 2 it updates the narrowed and the deactivated hook in
// place and replaces the one whose scope changed.
func (s *pstack) checkChanges(t *testing.T, phase int, changes map[string]int) {
	t.Helper()
	n := len(languagePlan(s.lang, phase))
	var want map[string]int
	switch phase {
	case 1:
		want = map[string]int{"create": n + 3}
	case 2:
		want = map[string]int{"same": n + 3 - 3, "update": 2, "replace": 1}
	}
	for op, c := range want {
		if changes[op] != c {
			t.Errorf("[%s] up in phase %d made changes %v, want %v", s.lang, phase, changes, want)
			return
		}
	}
}

// destroy deletes every resource of the stack.
func (s *pstack) destroy(t *testing.T) {
	t.Helper()
	if s.lang == "yaml" {
		s.pulumi(t, "destroy", "--yes", "--skip-preview")
		return
	}
	res := s.runner(t, "destroy", planFor(2))
	if want := len(languagePlan(s.lang, 2)) + 3; res.Changes["delete"] != want {
		t.Errorf("[%s] destroy made changes %v, want %d deletions", s.lang, res.Changes, want)
	}
}

// previewResult is the part of `pulumi preview --json` the harness reads.
type previewResult struct {
	Steps []struct {
		Op             string   `json:"op"`
		URN            string   `json:"urn"`
		DiffReasons    []string `json:"diffReasons"`
		ReplaceReasons []string `json:"replaceReasons"`
	} `json:"steps"`
}

// preview runs `pulumi preview --json` on the YAML stack and returns the operation planned for
// each resource, by name, with the properties that cause it.
func (s *pstack) preview(t *testing.T, args ...string) map[string]string {
	t.Helper()
	out := s.pulumi(t, append([]string{"preview", "--json"}, args...)...)
	var p previewResult
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("[yaml] decode preview --json: %v\n%s", err, out)
	}
	ops := map[string]string{}
	for _, st := range p.Steps {
		name := st.URN[strings.LastIndex(st.URN, "::")+2:]
		reasons := append(slices.Clone(st.DiffReasons), st.ReplaceReasons...)
		slices.Sort(reasons)
		reasons = slices.Compact(reasons)
		op := st.Op
		if len(reasons) > 0 {
			op += " " + strings.Join(reasons, ",")
		}
		if prev, ok := ops[name]; ok && prev != op {
			op = prev + "; " + op
		}
		ops[name] = op
	}
	return ops
}

// stateOutputs returns the outputs of a resource of the YAML stack's state.
func (s *pstack) stateOutputs(t *testing.T, name string) map[string]any {
	t.Helper()
	out := s.pulumi(t, "stack", "export")
	var dep struct {
		Deployment struct {
			Resources []struct {
				URN     string         `json:"urn"`
				ID      string         `json:"id"`
				Outputs map[string]any `json:"outputs"`
			} `json:"resources"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(out), &dep); err != nil {
		t.Fatalf("[yaml] decode stack export: %v", err)
	}
	for _, r := range dep.Deployment.Resources {
		if strings.HasSuffix(r.URN, "::"+name) {
			return r.Outputs
		}
	}
	t.Fatalf("[yaml] the state has no resource %s", name)
	return nil
}

// providerURN returns the URN of the YAML stack's provider resource named name.
func (s *pstack) providerURN(t *testing.T, name string) string {
	t.Helper()
	out := s.pulumi(t, "stack", "export")
	var dep struct {
		Deployment struct {
			Resources []struct {
				URN string `json:"urn"`
			} `json:"resources"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(out), &dep); err != nil {
		t.Fatalf("[yaml] decode stack export: %v", err)
	}
	for _, r := range dep.Deployment.Resources {
		if strings.HasSuffix(r.URN, "::pulumi:providers:pulumiservice::"+name) {
			return r.URN
		}
	}
	t.Fatalf("[yaml] the state has no provider %s", name)
	return ""
}

// importHook adopts an existing hook into the YAML stack with `pulumi import` through the
// remote provider, adds the generated code to the program, and checks that the next preview
// has nothing to do.
func (s *pstack) importHook(t *testing.T, name, id string) {
	t.Helper()
	generated := filepath.Join(s.h.dir, "imported.yaml")
	s.pulumi(t, "import", "pulumiservice:index:Webhook", name, id, "--yes", "--protect=false",
		"--provider", "remote="+s.providerURN(t, "remote"), "--out", generated)
	mergeYAMLResources(t, filepath.Join(s.dir, "Pulumi.yaml"), generated)
	for res, op := range s.preview(t, "--expect-no-changes") {
		if op != "same" {
			t.Errorf("[yaml] after the import the preview plans %q for %s, want no change", op, res)
		}
	}
}

// mergeYAMLResources adds the resource `pulumi import --out` generated to the program.
func mergeYAMLResources(t *testing.T, programPath, generatedPath string) {
	t.Helper()
	if _, err := pulumitest.MergeImportedYAML(programPath, generatedPath); err != nil {
		t.Fatal(err)
	}
}
