package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/modfile"
)

// The TypeScript, Python and Go programs run as Automation API inline programs, through the
// runners of tests/provider/testdata (one per language): a runner takes one JSON argument,
// runnerParams, runs up, preview (expecting no changes) or destroy, and prints a runnerResult.
// The CLI runs such programs with --client, so no Node, Python or Go language host is needed.

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

func providerTestdata(parts ...string) string {
	return filepath.Join(append([]string{suite.root, "tests", "provider", "testdata"}, parts...)...)
}

func harnessProgram(parts ...string) string {
	return filepath.Join(append([]string{suite.root, "tests", "harness", "programs"}, parts...)...)
}

// buildNodeRunner compiles sdk/nodejs the way it is published (tsc, package.json copied into
// bin/), links it as node_modules/@pulumi-webhooks/pulumiservice next to the npm packages of
// tests/deps.sh, and compiles the runner together with programs/nodejs/index.ts.
func buildNodeRunner(ctx context.Context) (sdkRunner, error) {
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
	if err := command(ctx, sdk, nil, "node", tsc, "-p", "."); err != nil {
		return sdkRunner{}, fmt.Errorf("compile sdk/nodejs: %w", err)
	}
	pkg, err := os.ReadFile(filepath.Join(sdk, "package.json"))
	if err != nil {
		return sdkRunner{}, err
	}
	if err := os.WriteFile(filepath.Join(sdk, "bin", "package.json"), pkg, 0o644); err != nil {
		return sdkRunner{}, err
	}
	if err := copyTree(providerTestdata("nodejs"), prog); err != nil {
		return sdkRunner{}, err
	}
	if err := copyTree(harnessProgram("nodejs"), prog); err != nil {
		return sdkRunner{}, err
	}
	if err := command(ctx, prog, nil, "node", tsc, "-p", "."); err != nil {
		return sdkRunner{}, fmt.Errorf("compile the TypeScript runner and program: %w", err)
	}
	return sdkRunner{
		argv:    []string{"node", filepath.Join(prog, "bin", "runner.js")},
		program: filepath.Join(prog, "bin", "index.js"),
	}, nil
}

// buildPythonRunner installs sdk/python with pip (from a copy, so no build output lands in the
// repository) into a directory the runner finds through PYTHONPATH.
func buildPythonRunner(ctx context.Context) (sdkRunner, error) {
	w := filepath.Join(suite.tmp, "python")
	src, site := filepath.Join(w, "src"), filepath.Join(w, "site")
	if err := copyTree(filepath.Join(suite.root, "sdk", "python"), src); err != nil {
		return sdkRunner{}, err
	}
	python := filepath.Join(suite.deps, "venv", "bin", "python")
	if err := command(ctx, w, nil, python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
		"--no-deps", "--no-build-isolation", "--target", site, src); err != nil {
		return sdkRunner{}, fmt.Errorf("pip install sdk/python: %w", err)
	}
	return sdkRunner{
		argv:    []string{python, providerTestdata("python", "runner.py")},
		program: harnessProgram("python", "__main__.py"),
		env:     []string{"PYTHONPATH=" + site, "PYTHONDONTWRITEBYTECODE=1"},
	}, nil
}

// buildGoRunner builds programs/go/program.go with the runner's main in a throwaway module that
// requires what the main module requires (so the build cache is shared) plus sdk/go through a
// replace directive.
func buildGoRunner(ctx context.Context) (sdkRunner, error) {
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
		"program.go": harnessProgram("go", "program.go"),
		"main.go":    providerTestdata("go", "runner.go"),
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
	if err := command(ctx, w, []string{"GOWORK=off", "GOFLAGS=-mod=mod"}, "go", "build", "-o", bin, "."); err != nil {
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
	sdkGoMod := filepath.Join(suite.root, "sdk", "go", "go.mod")
	sdkRaw, err := os.ReadFile(sdkGoMod)
	if err != nil {
		return nil, err
	}
	sdkMod := modfile.ModulePath(sdkRaw)
	if sdkMod == "" {
		return nil, fmt.Errorf("%s names no module", sdkGoMod)
	}
	var f modfile.File
	if err := f.AddModuleStmt("harness.local/gorunner"); err != nil {
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

// copyTree copies the regular files of src into dst (created), recursively, leaving out build
// output and installed dependencies.
func copyTree(src, dst string) error {
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
			switch d.Name() {
			case "node_modules", "bin", "__pycache__", "venv":
				if p != src {
					return filepath.SkipDir
				}
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
