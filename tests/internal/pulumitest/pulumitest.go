// Package pulumitest holds what the real-CLI test packages (tests/provider and tests/harness)
// share: preparing the toolchain, the npm and pip dependencies and freshly built binaries; the
// environment of an offline `pulumi` run on a file backend; and the Automation API runners of
// tests/provider/testdata, built for the TypeScript, Python and Go SDKs.
package pulumitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// PrepareTimeoutDefault bounds building everything from scratch on 2 cores.
const PrepareTimeoutDefault = 30 * time.Minute

// Config says what Prepare builds besides the toolchain, the dependencies and the plugin.
type Config struct {
	// Root is the repository root.
	Root string
	// Tmp holds the builds.
	Tmp string
	// Binaries are extra packages of the main module to build, by output path below Tmp
	// (e.g. "server/pulumi-webhooks": "./provider/cmd/pulumi-webhooks").
	Binaries map[string]string
}

// Env is what Prepare made.
type Env struct {
	Root string
	Tmp  string
	// ToolBin holds pulumi and pulumi-language-yaml (provider/scripts/toolchain.sh).
	ToolBin string
	// Deps is the directory of tests/deps.sh (node/node_modules, venv).
	Deps string
	// PluginDir holds the freshly built pulumi-resource-pulumiservice and nothing else.
	PluginDir string
	// Plugin is the plugin binary.
	Plugin string
	// Timings says how long each step took, for the test log.
	Timings []string
}

// Steps runs functions side by side and collects their errors and timings.
type Steps struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	errs    []error
	timings *[]string
}

// Go starts fn as the step name.
func (s *Steps) Go(name string, fn func() error) {
	s.wg.Go(func() {
		start := time.Now()
		err := fn()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.timings != nil {
			*s.timings = append(*s.timings, fmt.Sprintf("%s took %s", name, time.Since(start).Round(time.Millisecond)))
		}
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
		}
	})
}

// Wait waits for every step started so far and returns their errors.
func (s *Steps) Wait() error {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// NewSteps returns Steps that record their timings in timings (when not nil).
func NewSteps(timings *[]string) *Steps { return &Steps{timings: timings} }

// Prepare runs provider/scripts/toolchain.sh and tests/deps.sh, builds the plugin and cfg's
// binaries, side by side, and checks that the scripts produced what the tests run.
func Prepare(ctx context.Context, cfg Config) (*Env, error) {
	e := &Env{Root: cfg.Root, Tmp: cfg.Tmp, PluginDir: filepath.Join(cfg.Tmp, "plugin")}
	e.Plugin = filepath.Join(e.PluginDir, "pulumi-resource-pulumiservice")
	steps := NewSteps(&e.Timings)
	steps.Go("toolchain", func() (err error) {
		e.ToolBin, err = RunScript(ctx, filepath.Join(cfg.Root, "provider", "scripts", "toolchain.sh"))
		return err
	})
	steps.Go("deps", func() (err error) {
		e.Deps, err = RunScript(ctx, filepath.Join(cfg.Root, "tests", "deps.sh"))
		return err
	})
	steps.Go("build plugin", func() error {
		return GoBuild(ctx, cfg.Root, e.Plugin, "./provider/cmd/pulumi-resource-pulumiservice")
	})
	for out, pkg := range cfg.Binaries {
		steps.Go("build "+pkg, func() error { return GoBuild(ctx, cfg.Root, filepath.Join(cfg.Tmp, out), pkg) })
	}
	if err := steps.Wait(); err != nil {
		return e, err
	}
	for _, f := range []string{
		filepath.Join(e.ToolBin, "pulumi"),
		filepath.Join(e.ToolBin, "pulumi-language-yaml"),
		filepath.Join(e.Deps, "node", "node_modules", "@pulumi", "pulumi", "package.json"),
		filepath.Join(e.Deps, "venv", "bin", "python"),
	} {
		if _, err := os.Stat(f); err != nil {
			return e, fmt.Errorf("the setup scripts did not produce %s: %w", f, err)
		}
	}
	return e, nil
}

// FindRoot returns the repository root, two levels above a test package's directory, checked
// by the presence of rel (e.g. provider/cmd/pulumi-webhooks).
func FindRoot(rel string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
		return "", fmt.Errorf("repository root not found from %s: %w", wd, err)
	}
	return root, nil
}

// RunScript runs a setup script and returns the last line it printed on stdout (the directory
// it reports). Its progress goes to stderr, shown only when it fails.
func RunScript(ctx context.Context, path string) (string, error) {
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

// GoBuild builds package pkg of the module in root into out.
func GoBuild(ctx context.Context, root, out, pkg string) error {
	return Command(ctx, root, nil, "go", "build", "-o", out, pkg)
}

// Command runs a build step in dir with extra environment variables and returns its output
// in the error when it fails.
func Command(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// CleanEnv is this process's environment without any PULUMI_ variable, so that nothing of
// the caller's Pulumi settings leaks into a test.
func CleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PULUMI_") })
}

// PulumiEnv is the environment of an offline pulumi run.
type PulumiEnv struct {
	// ToolBin, then each of Path, go before the inherited PATH.
	ToolBin string
	Path    []string
	// Home is PULUMI_HOME, State the file backend's directory.
	Home, State string
	// Passphrase encrypts the stacks' secrets.
	Passphrase string
	// Store is PULUMI_WEBHOOKS_STORE.
	Store string
}

// Environ returns the environment: CleanEnv with PATH replaced, a private PULUMI_HOME, a file
// backend, passphrase secrets, no update checks, no plugin downloads, no prompts, no colour.
func (p PulumiEnv) Environ() []string {
	env := slices.DeleteFunc(CleanEnv(), func(kv string) bool { return strings.HasPrefix(kv, "PATH=") })
	path := append(append([]string{p.ToolBin}, p.Path...), os.Getenv("PATH"))
	return append(env,
		"PATH="+strings.Join(path, string(os.PathListSeparator)),
		"PULUMI_HOME="+p.Home,
		"PULUMI_BACKEND_URL=file://"+p.State,
		"PULUMI_CONFIG_PASSPHRASE="+p.Passphrase,
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
		"PULUMI_SKIP_CONFIRMATIONS=true",
		"PULUMI_WEBHOOKS_STORE="+p.Store,
		"NO_COLOR=1",
	)
}

// CopyTree copies the regular files of src into dst (created), recursively, leaving out build
// output and installed dependencies.
func CopyTree(src, dst string) error {
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if p != src && slices.Contains([]string{"node_modules", "bin", "__pycache__", "venv"}, d.Name()) {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}
