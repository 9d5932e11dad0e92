package provider

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

// An Automation API runner takes one JSON argument (runnerParams) and prints a runnerResult.
type (
	runnerParams = pulumitest.RunnerParams
	configValue  = pulumitest.ConfigValue
	runnerResult = pulumitest.RunnerResult
	sdkRunner    = pulumitest.Runner
)

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
			Action: action, WorkDir: work, Project: project, Stack: "dev", Program: r.Program,
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
		res := b.execEnv(work, r.Env, r.Argv[0], append(r.Argv[1:], string(raw))...)
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
	b.wantExampleHooks(t, b.hooks(), up.Outputs, project, "dev", exampleSecret)

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

// The runners are built once per test binary, on first use, each with its example program.
var (
	nodeRunner = sync.OnceValues(func() (sdkRunner, error) {
		return buildRunner(suite.env.NodeRunner, "node", filepath.Join("examples", "typescript", "index.ts"))
	})
	pythonRunner = sync.OnceValues(func() (sdkRunner, error) {
		return buildRunner(suite.env.PythonRunner, "python", filepath.Join("examples", "python", "__main__.py"))
	})
	goRunner = sync.OnceValues(func() (sdkRunner, error) {
		return buildRunner(suite.env.GoRunner, "go", filepath.Join("examples", "go", "program.go"))
	})
)

func buildRunner(build func(context.Context, pulumitest.RunnerBuild) (sdkRunner, error), work, program string) (sdkRunner, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return build(ctx, pulumitest.RunnerBuild{Work: filepath.Join(suite.tmp, work), Program: filepath.Join(suite.root, program)})
}

// command runs a build step and returns its output in the error when it fails.
func command(dir string, env []string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return pulumitest.Command(ctx, dir, env, name, args...)
}
