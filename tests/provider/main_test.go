package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
}

// prepareTimeout bounds building the toolchain from scratch (several minutes on 2 cores).
const prepareTimeout = 30 * time.Minute

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
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	suite.root = filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(suite.root, "provider", "cmd", "pulumi-resource-pulumiservice")); err != nil {
		return fmt.Errorf("repository root not found from %s: %w", wd, err)
	}
	suite.tmp, err = os.MkdirTemp("", "pulumi-webhooks-clitest-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}

	// The three preparations are independent; run them side by side.
	type result struct {
		name string
		out  string
		err  error
	}
	results := make(chan result, 3)
	go func() {
		out, err := runScript(ctx, filepath.Join(suite.root, "tests", "toolchain", "build.sh"))
		results <- result{"toolchain", out, err}
	}()
	go func() {
		out, err := runScript(ctx, filepath.Join(suite.root, "tests", "deps.sh"))
		results <- result{"deps", out, err}
	}()
	go func() {
		suite.pluginDir = filepath.Join(suite.tmp, "plugin")
		suite.plugin = filepath.Join(suite.pluginDir, "pulumi-resource-pulumiservice")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", suite.plugin, "./provider/cmd/pulumi-resource-pulumiservice")
		cmd.Dir = suite.root
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go build the plugin: %w\n%s", err, out)
		}
		results <- result{"plugin", "", err}
	}()
	var errs []error
	for range 3 {
		r := <-results
		switch {
		case r.err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
		case r.name == "toolchain":
			suite.toolBin = r.out
		case r.name == "deps":
			suite.deps = r.out
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, f := range []string{
		filepath.Join(suite.toolBin, "pulumi"),
		filepath.Join(suite.toolBin, "pulumi-language-yaml"),
		filepath.Join(suite.deps, "node", "node_modules", "@pulumi", "pulumi", "package.json"),
		filepath.Join(suite.deps, "venv", "bin", "python"),
	} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("the setup scripts did not produce %s: %w", f, err)
		}
	}
	return nil
}

// runScript runs a setup script and returns the last line it printed on stdout (the directory
// it reports). Its progress goes to stderr, which is shown only when it fails.
func runScript(ctx context.Context, path string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", path, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s printed no directory", path)
	}
	return dir, nil
}
