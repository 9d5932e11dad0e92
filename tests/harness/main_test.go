package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// suite is what the end-to-end test needs built, prepared once on first use (the fast model
// tests need none of it).
type suiteT struct {
	// root is the repository root.
	root string
	// toolBin holds pulumi and pulumi-language-yaml (tests/toolchain/build.sh).
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
}

var suite suiteT

// prepareTimeout bounds building everything from scratch on 2 cores.
const prepareTimeout = 30 * time.Minute

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
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	suite.root = filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(suite.root, "provider", "cmd", "pulumi-webhooks")); err != nil {
		return fmt.Errorf("repository root not found from %s: %w", wd, err)
	}
	if suite.tmp, err = os.MkdirTemp("", "pulumi-webhooks-harness-"); err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	suite.pluginDir = filepath.Join(suite.tmp, "plugin")
	suite.server = filepath.Join(suite.tmp, "server", "pulumi-webhooks")

	// First wave: independent steps side by side.
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	step := func(name string, fn func() error) {
		wg.Go(func() {
			start := time.Now()
			err := fn()
			mu.Lock()
			defer mu.Unlock()
			suite.timings = append(suite.timings, fmt.Sprintf("%s took %s", name, time.Since(start).Round(time.Millisecond)))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		})
	}
	step("toolchain", func() (err error) {
		suite.toolBin, err = runScript(ctx, filepath.Join(suite.root, "tests", "toolchain", "build.sh"))
		return err
	})
	step("deps", func() (err error) {
		suite.deps, err = runScript(ctx, filepath.Join(suite.root, "tests", "deps.sh"))
		return err
	})
	step("build plugin", func() error {
		return goBuild(ctx, filepath.Join(suite.pluginDir, "pulumi-resource-pulumiservice"), "./provider/cmd/pulumi-resource-pulumiservice")
	})
	step("build server", func() error {
		return goBuild(ctx, suite.server, "./provider/cmd/pulumi-webhooks")
	})
	wg.Wait()
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

	// Second wave: the Automation API runners, which need the npm and pip packages.
	suite.runners = map[string]sdkRunner{}
	for lang, build := range map[string]func(context.Context) (sdkRunner, error){
		"nodejs": buildNodeRunner, "python": buildPythonRunner, "go": buildGoRunner,
	} {
		step("runner "+lang, func() error {
			r, err := build(ctx)
			mu.Lock()
			suite.runners[lang] = r
			mu.Unlock()
			return err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// goBuild builds a package of the main module into out.
func goBuild(ctx context.Context, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = suite.root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// runScript runs a setup script and returns the last line it printed on stdout (the directory
// it reports). Its progress goes to stderr, shown only when it fails.
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

// command runs a build step in dir and returns its output in the error when it fails.
func command(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
