package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

// suite is what every test shares, prepared once by TestMain.
var suite struct {
	// root is the repository root.
	root string
	// toolBin holds pulumi and pulumi-language-yaml.
	toolBin string
	// deps is the directory tests/deps.sh installed into (node/node_modules, venv).
	deps string
	// pluginDir holds the freshly built pulumi-resource-pulumiservice and nothing else.
	pluginDir string
	// plugin is the plugin binary.
	plugin string
	// tmp is removed when the tests end.
	tmp string
	// env builds the Automation API runners.
	env *pulumitest.Env
}

// prepareTimeout bounds building the toolchain from scratch (several minutes on 2 cores).
const prepareTimeout = pulumitest.PrepareTimeoutDefault

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
	defer cancel()
	if err := prepare(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tests/provider: setup failed:", err)
		if suite.tmp != "" {
			_ = os.RemoveAll(suite.tmp)
		}
		return 1
	}
	code := m.Run()
	_ = os.RemoveAll(suite.tmp)
	return code
}

func prepare(ctx context.Context) error {
	root, err := pulumitest.FindRoot(filepath.Join("provider", "cmd", "pulumi-resource-pulumiservice"))
	if err != nil {
		return err
	}
	suite.root = root
	if suite.tmp, err = os.MkdirTemp("", "pulumi-webhooks-clitest-"); err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	env, err := pulumitest.Prepare(ctx, pulumitest.Config{Root: root, Tmp: suite.tmp})
	if err != nil {
		return err
	}
	suite.env = env
	suite.toolBin, suite.deps, suite.pluginDir, suite.plugin = env.ToolBin, env.Deps, env.PluginDir, env.Plugin
	return nil
}
