package pulumitest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/modfile"
)

// The TypeScript, Python and Go programs run as Automation API inline programs through the
// runners of tests/provider/testdata (one per language): a runner takes one JSON argument,
// RunnerParams, runs up, preview or destroy, and prints a RunnerResult. The CLI runs such
// programs with --client, so no Node, Python or Go language host is needed.

// RunnerParams is a runner's argument.
type RunnerParams struct {
	Action  string                 `json:"action"`
	WorkDir string                 `json:"workDir"`
	Project string                 `json:"project"`
	Stack   string                 `json:"stack"`
	Program string                 `json:"program,omitempty"`
	Config  map[string]ConfigValue `json:"config"`
}

// ConfigValue is one stack configuration value of RunnerParams.
type ConfigValue struct {
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
}

// RunnerResult is what a runner prints.
type RunnerResult struct {
	Changes map[string]int `json:"changes"`
	Outputs map[string]any `json:"outputs"`
}

// Runner says how to start one language's runner.
type Runner struct {
	// Argv is the command line before the params argument.
	Argv []string
	// Program is the runner's RunnerParams.Program (empty when compiled in).
	Program string
	// Env is the runner's extra environment.
	Env []string
}

// RunnerBuild says which program a runner runs and where it is built.
type RunnerBuild struct {
	// Work is the build directory (created).
	Work string
	// Program is the program's source file: index.ts, __main__.py or program.go.
	Program string
}

func (e *Env) testdata(parts ...string) string {
	return filepath.Join(append([]string{e.Root, "tests", "provider", "testdata"}, parts...)...)
}

// NodeRunner compiles sdk/nodejs the way it is published (tsc, package.json copied into bin/),
// links it as node_modules/@pulumi-webhooks/pulumiservice next to the npm packages of
// tests/deps.sh, and compiles the runner together with p.Program (as index.ts).
func (e *Env) NodeRunner(ctx context.Context, p RunnerBuild) (Runner, error) {
	nm := filepath.Join(p.Work, "node_modules")
	if err := os.MkdirAll(filepath.Join(nm, "@pulumi-webhooks"), 0o755); err != nil {
		return Runner{}, err
	}
	depsNM := filepath.Join(e.Deps, "node", "node_modules")
	entries, err := os.ReadDir(depsNM)
	if err != nil {
		return Runner{}, fmt.Errorf("read the npm packages of tests/deps.sh: %w", err)
	}
	for _, ent := range entries {
		if err := os.Symlink(filepath.Join(depsNM, ent.Name()), filepath.Join(nm, ent.Name())); err != nil {
			return Runner{}, err
		}
	}
	sdk, prog := filepath.Join(p.Work, "sdk"), filepath.Join(p.Work, "prog")
	if err := os.Symlink(filepath.Join(sdk, "bin"), filepath.Join(nm, "@pulumi-webhooks", "pulumiservice")); err != nil {
		return Runner{}, err
	}
	if err := CopyTree(filepath.Join(e.Root, "sdk", "nodejs"), sdk); err != nil {
		return Runner{}, err
	}
	tsc := filepath.Join(depsNM, "typescript", "bin", "tsc")
	if err := Command(ctx, sdk, nil, "node", tsc, "-p", "."); err != nil {
		return Runner{}, fmt.Errorf("compile sdk/nodejs: %w", err)
	}
	if err := copyFile(filepath.Join(sdk, "package.json"), filepath.Join(sdk, "bin", "package.json")); err != nil {
		return Runner{}, err
	}
	if err := CopyTree(e.testdata("nodejs"), prog); err != nil {
		return Runner{}, err
	}
	if err := copyFile(p.Program, filepath.Join(prog, "index.ts")); err != nil {
		return Runner{}, err
	}
	if err := Command(ctx, prog, nil, "node", tsc, "-p", "."); err != nil {
		return Runner{}, fmt.Errorf("compile the TypeScript runner and program: %w", err)
	}
	return Runner{
		Argv:    []string{"node", filepath.Join(prog, "bin", "runner.js")},
		Program: filepath.Join(prog, "bin", "index.js"),
	}, nil
}

// PythonRunner installs sdk/python with pip (from a copy, so no build output lands in the
// repository) into a directory the runner finds through PYTHONPATH.
func (e *Env) PythonRunner(ctx context.Context, p RunnerBuild) (Runner, error) {
	src, site := filepath.Join(p.Work, "src"), filepath.Join(p.Work, "site")
	if err := CopyTree(filepath.Join(e.Root, "sdk", "python"), src); err != nil {
		return Runner{}, err
	}
	python := filepath.Join(e.Deps, "venv", "bin", "python")
	if err := Command(ctx, p.Work, nil, python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
		"--no-deps", "--no-build-isolation", "--target", site, src); err != nil {
		return Runner{}, fmt.Errorf("pip install sdk/python: %w", err)
	}
	return Runner{
		Argv:    []string{python, e.testdata("python", "runner.py")},
		Program: p.Program,
		Env:     []string{"PYTHONPATH=" + site, "PYTHONDONTWRITEBYTECODE=1"},
	}, nil
}

// GoRunner builds p.Program with the runner's main in a throwaway module that requires what
// the main module requires (so the build cache is shared) plus sdk/go through a replace
// directive.
func (e *Env) GoRunner(ctx context.Context, p RunnerBuild) (Runner, error) {
	if err := os.MkdirAll(p.Work, 0o755); err != nil {
		return Runner{}, err
	}
	gomod, err := e.runnerGoMod()
	if err != nil {
		return Runner{}, err
	}
	var sum []byte
	for _, f := range []string{filepath.Join(e.Root, "go.sum"), filepath.Join(e.Root, "sdk", "go", "go.sum")} {
		b, err := os.ReadFile(f)
		if err != nil {
			return Runner{}, fmt.Errorf("read %s: %w", f, err)
		}
		sum = append(sum, b...)
	}
	files := map[string][]byte{"go.mod": gomod, "go.sum": sum}
	for dst, src := range map[string]string{"program.go": p.Program, "main.go": e.testdata("go", "runner.go")} {
		if files[dst], err = os.ReadFile(src); err != nil {
			return Runner{}, err
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(p.Work, name), b, 0o644); err != nil {
			return Runner{}, err
		}
	}
	bin := filepath.Join(p.Work, "runner")
	if err := Command(ctx, p.Work, []string{"GOWORK=off", "GOFLAGS=-mod=mod"}, "go", "build", "-o", bin, "."); err != nil {
		return Runner{}, fmt.Errorf("build the Go runner: %w", err)
	}
	return Runner{Argv: []string{bin}}, nil
}

// runnerGoMod derives the runner module's go.mod from the main module's.
func (e *Env) runnerGoMod() ([]byte, error) {
	path := filepath.Join(e.Root, "go.mod")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	main, err := modfile.Parse(path, raw, nil)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	sdkGoMod := filepath.Join(e.Root, "sdk", "go", "go.mod")
	sdkRaw, err := os.ReadFile(sdkGoMod)
	if err != nil {
		return nil, err
	}
	sdkMod := modfile.ModulePath(sdkRaw)
	if sdkMod == "" {
		return nil, fmt.Errorf("%s names no module", sdkGoMod)
	}
	var f modfile.File
	if err := f.AddModuleStmt("pulumitest.local/gorunner"); err != nil {
		return nil, err
	}
	if err := f.AddGoStmt(main.Go.Version); err != nil {
		return nil, err
	}
	for _, r := range main.Require {
		f.AddNewRequire(r.Mod.Path, r.Mod.Version, r.Indirect)
	}
	f.AddNewRequire(sdkMod, "v0.0.0", false)
	if err := f.AddReplace(sdkMod, "", filepath.Join(e.Root, "sdk", "go"), ""); err != nil {
		return nil, err
	}
	for _, r := range main.Replace {
		newPath := r.New.Path
		if r.New.Version == "" && !filepath.IsAbs(newPath) {
			newPath = filepath.Join(e.Root, newPath)
		}
		if err := f.AddReplace(r.Old.Path, r.Old.Version, newPath, r.New.Version); err != nil {
			return nil, err
		}
	}
	f.Cleanup()
	return f.Format()
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
