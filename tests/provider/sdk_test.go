package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/modfile"
)

// An Automation API runner takes one JSON argument (runnerParams) and prints a runnerResult.
type runnerParams struct {
	Action  string                 `json:"action"`
	WorkDir string                 `json:"workDir"`
	Project string                 `json:"project"`
	Stack   string                 `json:"stack"`
	Program string                 `json:"program,omitempty"`
	Config  map[string]configValue `json:"config"`
}

type configValue struct {
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
}

type runnerResult struct {
	Changes map[string]int `json:"changes"`
	Outputs map[string]any `json:"outputs"`
}

// sdkRunner says how to start one language's runner.
type sdkRunner struct {
	// argv is the command line before the params argument.
	argv []string
	// program is the runner's params.Program (empty when compiled in).
	program string
	env     []string
}

// TestTypeScriptSDK runs examples/typescript on the generated Node SDK (compiled with tsc) as an
// Automation API inline program.
func TestTypeScriptSDK(t *testing.T) {
	t.Parallel()
	r, err := nodeRunner()
	if err != nil {
		t.Fatal(err)
	}
	runExample(t, "webhooks-example-typescript", r)
}

// TestPythonSDK runs examples/python on the generated Python SDK (installed with pip) as an
// Automation API inline program.
func TestPythonSDK(t *testing.T) {
	t.Parallel()
	r, err := pythonRunner()
	if err != nil {
		t.Fatal(err)
	}
	runExample(t, "webhooks-example-python", r)
}

// TestGoSDK runs examples/go on the generated Go SDK (sdk/go through a replace directive) as an
// Automation API inline program.
func TestGoSDK(t *testing.T) {
	t.Parallel()
	r, err := goRunner()
	if err != nil {
		t.Fatal(err)
	}
	runExample(t, "webhooks-example-go", r)
}

// TestGoExampleModule checks that examples/go, as a module of its own, resolves against its
// go.mod and go.sum: `pulumi up` in that directory would build it.
func TestGoExampleModule(t *testing.T) {
	t.Parallel()
	err := command(filepath.Join(suite.root, "examples", "go"), []string{"GOWORK=off", "GOFLAGS=-mod=readonly"},
		"go", "list", "-deps", "-test=false", "./...")
	if err != nil {
		t.Fatalf("examples/go does not resolve (run `go mod tidy` there after make sdks): %v", err)
	}
}

// runExample runs up, a no-change preview and destroy of an example through a runner, with the
// plugin on PATH and the store named by PULUMI_WEBHOOKS_STORE, and checks the store after each.
func runExample(t *testing.T, project string, r sdkRunner) {
	t.Helper()
	b := setup(t, pluginOnPath)
	work := filepath.Join(b.dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(action string) runnerResult {
		t.Helper()
		p := runnerParams{
			Action: action, WorkDir: work, Project: project, Stack: "dev", Program: r.program,
			Config: map[string]configValue{
				"receiverUrl":     {Value: exampleReceiverURL},
				"slackWebhookUrl": {Value: exampleSlackURL},
				"webhookSecret":   {Value: exampleSecret, Secret: true},
			},
		}
		raw, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		res := b.execEnv(work, r.env, r.argv[0], append(r.argv[1:], string(raw))...)
		if res.err != nil {
			t.Fatalf("runner %s: %v\nstdout:\n%s\nstderr:\n%s", action, res.err, res.stdout, res.stderr)
		}
		assertSecretHidden(t, exampleSecret, res.stdout, res.stderr)
		var out runnerResult
		if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
			t.Fatalf("decode the runner's %s result: %v\n%s", action, err, res.stdout)
		}
		return out
	}

	up := run("up")
	if up.Changes["create"] != 4 {
		t.Fatalf("up made changes %v, want the stack and 3 hooks created", up.Changes)
	}
	wantExampleHooks(t, b.hooks(), up.Outputs, project, "dev", exampleSecret)

	if p := run("preview"); !maps.Equal(p.Changes, map[string]int{"same": 4}) {
		t.Fatalf("the preview after up plans %v, want 4 unchanged resources", p.Changes)
	}

	if d := run("destroy"); d.Changes["delete"] != 4 {
		t.Fatalf("destroy made changes %v, want 4 deletions", d.Changes)
	}
	if hs := b.hooks(); len(hs) != 0 {
		t.Fatalf("after destroy the store holds %d hooks", len(hs))
	}
}

// The runners are built once per test binary, on first use.
var (
	nodeRunner   = sync.OnceValues(buildNodeRunner)
	pythonRunner = sync.OnceValues(buildPythonRunner)
	goRunner     = sync.OnceValues(buildGoRunner)
)

// buildNodeRunner compiles sdk/nodejs the way it is published (tsc, package.json copied into
// bin/), links it as node_modules/@pulumi-webhooks/pulumiservice next to the npm packages of
// tests/deps.sh, and compiles the runner together with examples/typescript/index.ts.
func buildNodeRunner() (sdkRunner, error) {
	w := filepath.Join(suite.tmp, "node")
	nm := filepath.Join(w, "node_modules")
	if err := os.MkdirAll(filepath.Join(nm, "@pulumi-webhooks"), 0o755); err != nil {
		return sdkRunner{}, err
	}
	depsNM := filepath.Join(suite.deps, "node", "node_modules")
	entries, err := os.ReadDir(depsNM)
	if err != nil {
		return sdkRunner{}, fmt.Errorf("read the npm packages of tests/deps.sh: %w", err)
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(depsNM, e.Name()), filepath.Join(nm, e.Name())); err != nil {
			return sdkRunner{}, err
		}
	}
	sdk, prog := filepath.Join(w, "sdk"), filepath.Join(w, "prog")
	if err := os.Symlink(filepath.Join(sdk, "bin"), filepath.Join(nm, "@pulumi-webhooks", "pulumiservice")); err != nil {
		return sdkRunner{}, err
	}
	if err := copyTree(filepath.Join(suite.root, "sdk", "nodejs"), sdk); err != nil {
		return sdkRunner{}, err
	}
	tsc := filepath.Join(depsNM, "typescript", "bin", "tsc")
	if err := command(sdk, nil, "node", tsc, "-p", "."); err != nil {
		return sdkRunner{}, fmt.Errorf("compile sdk/nodejs: %w", err)
	}
	pkg, err := os.ReadFile(filepath.Join(sdk, "package.json"))
	if err != nil {
		return sdkRunner{}, err
	}
	if err := os.WriteFile(filepath.Join(sdk, "bin", "package.json"), pkg, 0o644); err != nil {
		return sdkRunner{}, err
	}
	if err := copyTree(filepath.Join(suite.root, "tests", "provider", "testdata", "nodejs"), prog); err != nil {
		return sdkRunner{}, err
	}
	index, err := os.ReadFile(filepath.Join(suite.root, "examples", "typescript", "index.ts"))
	if err != nil {
		return sdkRunner{}, err
	}
	if err := os.WriteFile(filepath.Join(prog, "index.ts"), index, 0o644); err != nil {
		return sdkRunner{}, err
	}
	if err := command(prog, nil, "node", tsc, "-p", "."); err != nil {
		return sdkRunner{}, fmt.Errorf("compile the TypeScript runner and example: %w", err)
	}
	return sdkRunner{
		argv:    []string{"node", filepath.Join(prog, "bin", "runner.js")},
		program: filepath.Join(prog, "bin", "index.js"),
	}, nil
}

// buildPythonRunner installs sdk/python with pip (from a copy, so no build output lands in the
// repository) into a directory the runner finds through PYTHONPATH.
func buildPythonRunner() (sdkRunner, error) {
	w := filepath.Join(suite.tmp, "python")
	src, site := filepath.Join(w, "src"), filepath.Join(w, "site")
	if err := copyTree(filepath.Join(suite.root, "sdk", "python"), src); err != nil {
		return sdkRunner{}, err
	}
	python := filepath.Join(suite.deps, "venv", "bin", "python")
	if err := command(w, nil, python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
		"--no-deps", "--no-build-isolation", "--target", site, src); err != nil {
		return sdkRunner{}, fmt.Errorf("pip install sdk/python: %w", err)
	}
	return sdkRunner{
		argv:    []string{python, filepath.Join(suite.root, "tests", "provider", "testdata", "python", "runner.py")},
		program: filepath.Join(suite.root, "examples", "python", "__main__.py"),
		env:     []string{"PYTHONPATH=" + site, "PYTHONDONTWRITEBYTECODE=1"},
	}, nil
}

// buildGoRunner builds examples/go/program.go with the runner's main in a throwaway module that
// requires what the main module requires (so the build cache is shared) plus sdk/go through a
// replace directive.
func buildGoRunner() (sdkRunner, error) {
	w := filepath.Join(suite.tmp, "go")
	if err := os.MkdirAll(w, 0o755); err != nil {
		return sdkRunner{}, err
	}
	gomod, err := runnerGoMod()
	if err != nil {
		return sdkRunner{}, err
	}
	var sum []byte
	for _, f := range []string{filepath.Join(suite.root, "go.sum"), filepath.Join(suite.root, "sdk", "go", "go.sum")} {
		b, err := os.ReadFile(f)
		if err != nil {
			return sdkRunner{}, fmt.Errorf("read %s: %w", f, err)
		}
		sum = append(sum, b...)
	}
	files := map[string][]byte{"go.mod": gomod, "go.sum": sum}
	for dst, src := range map[string]string{
		"program.go": filepath.Join(suite.root, "examples", "go", "program.go"),
		"main.go":    filepath.Join(suite.root, "tests", "provider", "testdata", "go", "runner.go"),
	} {
		if files[dst], err = os.ReadFile(src); err != nil {
			return sdkRunner{}, err
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(w, name), b, 0o644); err != nil {
			return sdkRunner{}, err
		}
	}
	bin := filepath.Join(w, "runner")
	if err := command(w, []string{"GOWORK=off", "GOFLAGS=-mod=mod"}, "go", "build", "-o", bin, "."); err != nil {
		return sdkRunner{}, fmt.Errorf("build the Go runner: %w", err)
	}
	return sdkRunner{argv: []string{bin}}, nil
}

// runnerGoMod derives the runner module's go.mod from the main module's.
func runnerGoMod() ([]byte, error) {
	path := filepath.Join(suite.root, "go.mod")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	main, err := modfile.Parse(path, raw, nil)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	sdkMod, err := modulePath(filepath.Join(suite.root, "sdk", "go", "go.mod"))
	if err != nil {
		return nil, err
	}
	var f modfile.File
	if err := f.AddModuleStmt("clitest.local/gorunner"); err != nil {
		return nil, err
	}
	if err := f.AddGoStmt(main.Go.Version); err != nil {
		return nil, err
	}
	for _, r := range main.Require {
		f.AddNewRequire(r.Mod.Path, r.Mod.Version, r.Indirect)
	}
	f.AddNewRequire(sdkMod, "v0.0.0", false)
	if err := f.AddReplace(sdkMod, "", filepath.Join(suite.root, "sdk", "go"), ""); err != nil {
		return nil, err
	}
	for _, r := range main.Replace {
		newPath := r.New.Path
		if r.New.Version == "" && !filepath.IsAbs(newPath) {
			newPath = filepath.Join(suite.root, newPath)
		}
		if err := f.AddReplace(r.Old.Path, r.Old.Version, newPath, r.New.Version); err != nil {
			return nil, err
		}
	}
	f.Cleanup()
	return f.Format()
}

func modulePath(gomod string) (string, error) {
	raw, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if p := modfile.ModulePath(raw); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%s names no module", gomod)
}

// command runs a build step and returns its output in the error when it fails.
func command(dir string, env []string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
