package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

// suite is what the end-to-end test needs built, prepared once on first use (the fast model
// tests need none of it).
type suiteT struct {
	// root is the repository root.
	root string
	// toolBin holds pulumi and pulumi-language-yaml (provider/scripts/toolchain.sh).
	toolBin string
	// deps is the directory of tests/deps.sh (node/node_modules, venv).
	deps string
	// tmp holds the builds and is removed when the tests end.
	tmp string
	// pluginDir holds the freshly built pulumi-resource-pulumiservice and nothing else.
	pluginDir string
	// server is the freshly built pulumi-webhooks binary.
	server string
	// runners run the Automation API programs, by language.
	runners map[string]sdkRunner
	// timings records how long each preparation step took, for the test log.
	timings []string
	// env is what pulumitest.Prepare made.
	env *pulumitest.Env
}

var suite suiteT

// prepareTimeout bounds building everything from scratch on 2 cores.
const prepareTimeout = pulumitest.PrepareTimeoutDefault

var prepareOnce = sync.OnceValue(prepare)

func TestMain(m *testing.M) {
	code := m.Run()
	if suite.tmp != "" {
		_ = os.RemoveAll(suite.tmp)
	}
	os.Exit(code)
}

// needSuite builds what the end-to-end test runs, once, and fails t when that fails.
func needSuite(t *testing.T) {
	t.Helper()
	if err := prepareOnce(); err != nil {
		t.Fatalf("tests/harness: setup failed: %v", err)
	}
	for _, s := range suite.timings {
		t.Log("setup:", s)
	}
}

func prepare() error {
	ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
	defer cancel()
	root, err := pulumitest.FindRoot(filepath.Join("provider", "cmd", "pulumi-webhooks"))
	if err != nil {
		return err
	}
	suite.root = root
	if suite.tmp, err = os.MkdirTemp("", "pulumi-webhooks-harness-"); err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	// First wave: the toolchain, the dependencies, the plugin and the server, side by side.
	env, err := pulumitest.Prepare(ctx, pulumitest.Config{Root: root, Tmp: suite.tmp,
		Binaries: map[string]string{filepath.Join("server", "pulumi-webhooks"): "./provider/cmd/pulumi-webhooks"}})
	if env != nil {
		suite.timings = append(suite.timings, env.Timings...)
	}
	if err != nil {
		return err
	}
	suite.env = env
	suite.toolBin, suite.deps, suite.pluginDir = env.ToolBin, env.Deps, env.PluginDir
	suite.server = filepath.Join(suite.tmp, "server", "pulumi-webhooks")

	// Second wave: the Automation API runners, which need the npm and pip packages.
	var mu sync.Mutex
	suite.runners = map[string]sdkRunner{}
	steps := pulumitest.NewSteps(&suite.timings)
	for lang, b := range map[string]struct {
		build   func(context.Context, pulumitest.RunnerBuild) (sdkRunner, error)
		program string
	}{
		"nodejs": {env.NodeRunner, harnessProgram("nodejs", "index.ts")},
		"python": {env.PythonRunner, harnessProgram("python", "__main__.py")},
		"go":     {env.GoRunner, harnessProgram("go", "program.go")},
	} {
		steps.Go("runner "+lang, func() error {
			r, err := b.build(ctx, pulumitest.RunnerBuild{Work: filepath.Join(suite.tmp, lang), Program: b.program})
			mu.Lock()
			suite.runners[lang] = r
			mu.Unlock()
			return err
		})
	}
	return steps.Wait()
}
