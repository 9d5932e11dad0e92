package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/blang/semver"
	dotnetgen "github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3/codegen"
	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	nodejsgen "github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	pythongen "github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"golang.org/x/mod/modfile"
)

// Defaults and fixed names of the generated SDKs.
const (
	// VersionDefault is the SDK version, and so the provider plugin version the SDKs ask the
	// engine for, when the schema names none.
	VersionDefault = "0.1.0"

	// ToolName is written into the header of every generated file.
	ToolName = "pulumi-webhooks-sdkgen"

	// PulumiGoSDKVersion is the github.com/pulumi/pulumi/sdk/v3 version the Go SDK requires;
	// it is the version the rest of this repository pins.
	PulumiGoSDKVersion = "v3.274.1"

	// The package names, chosen so that none collides with the official SDKs
	// (@pulumi/pulumiservice, pulumi_pulumiservice, github.com/pulumi/pulumi-pulumiservice,
	// Pulumi.PulumiService). A program moves over by changing only its import line.
	NodePackageName   = "@pulumi-webhooks/pulumiservice"
	PythonPackageName = "pulumi_webhooks_pulumiservice"
	GoModulePath      = "github.com/pulumi-webhooks/pulumi-webhooks/sdk/go"
	GoImportBasePath  = GoModulePath + "/pulumiservice"
	DotnetRootNS      = "PulumiWebhooks"
	DotnetNamespace   = "PulumiService" // so the assembly and namespace are PulumiWebhooks.PulumiService
)

// LanguagesDefault lists every language the generator writes, each into OutDir/<language>.
var LanguagesDefault = []string{"nodejs", "python", "go", "dotnet"}

// Config says what to generate and where.
type Config struct {
	// SchemaPath is the provider's schema.json.
	SchemaPath string
	// OutDir receives one directory per language; each is replaced whole.
	OutDir string
	// Version is used when the schema has no version; when it has one, the two must agree.
	Version string
	// Languages to generate; empty means LanguagesDefault.
	Languages []string
	// SkipGoModTidy leaves the Go SDK's go.sum as it was instead of running `go mod tidy`.
	SkipGoModTidy bool
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.SchemaPath == "" {
		c.SchemaPath = "schema.json"
	}
	if c.OutDir == "" {
		c.OutDir = "sdk"
	}
	if c.Version == "" {
		c.Version = VersionDefault
	}
	if len(c.Languages) == 0 {
		c.Languages = slices.Clone(LanguagesDefault)
	}
	return c
}

func (c Config) validate() error {
	if _, err := semver.Parse(c.Version); err != nil {
		return fmt.Errorf("version %q is not a semantic version such as 0.1.0: %w", c.Version, err)
	}
	seen := map[string]bool{}
	for _, l := range c.Languages {
		if !slices.Contains(LanguagesDefault, l) {
			return fmt.Errorf("unknown language %q: choose from %s", l, strings.Join(LanguagesDefault, ", "))
		}
		if seen[l] {
			return fmt.Errorf("language %q is listed twice: list each language once", l)
		}
		seen[l] = true
	}
	return nil
}

// Generate writes the SDKs of cfg.Languages from cfg.SchemaPath into cfg.OutDir.
func Generate(ctx context.Context, cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	raw, err := os.ReadFile(cfg.SchemaPath)
	if err != nil {
		return fmt.Errorf("read the schema (set -schema to the provider's schema.json): %w", err)
	}
	prepared, err := PrepareSchema(raw, cfg.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.SchemaPath, err)
	}
	for _, lang := range cfg.Languages {
		files, err := GenerateLanguage(prepared, lang)
		if err != nil {
			return err
		}
		dir := filepath.Join(cfg.OutDir, lang)
		keep, err := readKept(dir, lang)
		if err != nil {
			return err
		}
		if err := writeTree(dir, files, keep); err != nil {
			return fmt.Errorf("write the %s SDK: %w", lang, err)
		}
		if lang == "go" && !cfg.SkipGoModTidy {
			if err := goModTidy(ctx, dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// PrepareSchema parses a provider schema and returns it, as JSON, with what the SDKs need
// added: the version (when absent), package metadata the provider left empty, and our own
// language sections, which replace any the schema carries.
func PrepareSchema(raw []byte, version string) ([]byte, error) {
	var spec schema.PackageSpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("the schema is not a Pulumi package schema: %w", err)
	}
	if spec.Name != "pulumiservice" {
		return nil, fmt.Errorf("the schema's name is %q, want %q: generate from the pulumiservice provider's schema", spec.Name, "pulumiservice")
	}
	switch {
	case spec.Version == "":
		spec.Version = version
	case spec.Version != version:
		return nil, fmt.Errorf("the schema's version %q differs from -version %q: drop one of them or make them equal", spec.Version, version)
	}
	fillMetadata(&spec)
	langs, err := languageSections()
	if err != nil {
		return nil, err
	}
	spec.Language = langs
	out, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the prepared schema: %w", err)
	}
	return out, nil
}

// fillMetadata sets the package metadata that the provider's schema leaves empty; what the
// schema sets wins. The license is left to the schema: the generator does not invent one.
func fillMetadata(spec *schema.PackageSpec) {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&spec.DisplayName, "Pulumi Webhooks")
	set(&spec.Description, "Manage self-hosted Pulumi webhooks (organization, stack and environment hooks) with the pulumiservice Webhook resource.")
	set(&spec.Homepage, "https://github.com/pulumi-webhooks/pulumi-webhooks")
	set(&spec.Repository, "https://github.com/pulumi-webhooks/pulumi-webhooks")
	set(&spec.Publisher, "pulumi-webhooks")
	if len(spec.Keywords) == 0 {
		spec.Keywords = []string{"pulumi", "webhooks", "pulumiservice", "category/utility"}
	}
}

// sdkReadme is the README of the Node and Python packages.
const sdkReadme = `# pulumiservice webhooks SDK

The ` + "`Webhook`" + ` resource of the self-hosted pulumi-webhooks provider. It has the same
inputs and outputs as the Pulumi Service provider's Webhook, so a program moves over by
changing only its import line. The provider plugin (pulumi-resource-pulumiservice) keeps hooks
in its embedded store, or talks to a pulumi-webhooks server when apiUrl is configured.

See https://github.com/pulumi-webhooks/pulumi-webhooks for installation and configuration.
`

// languageSections returns the schema "language" object the generator uses for every SDK.
func languageSections() (map[string]schema.RawMessage, error) {
	sections := map[string]any{
		"nodejs": map[string]any{
			"packageName":          NodePackageName,
			"packageDescription":   "Self-hosted Pulumi webhooks: the pulumiservice Webhook resource.",
			"readme":               sdkReadme,
			"respectSchemaVersion": true,
		},
		"python": map[string]any{
			"packageName":          PythonPackageName,
			"readme":               sdkReadme,
			"respectSchemaVersion": true,
			"pyproject":            map[string]any{"enabled": true},
		},
		"go": map[string]any{
			"importBasePath":                 GoImportBasePath,
			"modulePath":                     GoModulePath,
			"generateResourceContainerTypes": true,
			"respectSchemaVersion":           true,
		},
		"csharp": map[string]any{
			"rootNamespace":        DotnetRootNS,
			"namespaces":           map[string]string{"pulumiservice": DotnetNamespace},
			"respectSchemaVersion": true,
			"packageReferences":    map[string]string{"Pulumi": "3.*"},
		},
	}
	out := map[string]schema.RawMessage{}
	for k, v := range sections {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode the %s language section: %w", k, err)
		}
		out[k] = b
	}
	return out, nil
}

// GenerateLanguage binds a prepared schema and runs one language's code generator. The result
// maps slash-separated paths, relative to the language's directory, to file contents.
func GenerateLanguage(prepared []byte, lang string) (files map[string][]byte, err error) {
	// The code generators assert their invariants with panics; turn one into an error.
	defer func() {
		if r := recover(); r != nil {
			files, err = nil, fmt.Errorf("the %s code generator failed: %v\n%s", lang, r, debug.Stack())
		}
	}()
	var spec schema.PackageSpec
	if err := json.Unmarshal(prepared, &spec); err != nil {
		return nil, fmt.Errorf("decode the prepared schema: %w", err)
	}
	loader := noExternalPackages{}
	pkg, diags, err := schema.BindSpec(spec, loader, schema.ValidationOptions{})
	if err != nil {
		return nil, fmt.Errorf("bind the schema: %w", err)
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("the schema is invalid: %w", diags)
	}
	switch lang {
	case "nodejs":
		files, err = nodejsgen.GeneratePackage(ToolName, pkg, nil, nil, false, loader)
	case "python":
		files, err = pythongen.GeneratePackage(ToolName, pkg, map[string][]byte{}, loader)
		if err == nil {
			// pyproject.toml names README.md beside it.
			files["README.md"] = []byte(sdkReadme)
		}
	case "go":
		files, err = gogen.GeneratePackage(ToolName, pkg, nil)
		if err == nil {
			files["go.mod"], err = goModFile()
			files["README.md"] = []byte(sdkReadme)
		}
	case "dotnet":
		files, err = generateDotnet(pkg)
		if err == nil {
			files["README.md"] = []byte(sdkReadme)
		}
	default:
		return nil, fmt.Errorf("unknown language %q: choose from %s", lang, strings.Join(LanguagesDefault, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("generate the %s SDK: %w", lang, err)
	}
	out := make(map[string][]byte, len(files))
	for p, b := range files {
		out[filepath.ToSlash(filepath.Clean(p))] = b
	}
	return out, nil
}

// generateDotnet runs the C# generator with the logo download answered from logo.png.
func generateDotnet(pkg *schema.Package) (map[string][]byte, error) {
	restore := installOfflineTransport()
	defer restore()
	return dotnetgen.GeneratePackage(ToolName, pkg, nil, nil)
}

// goModFile is the Go SDK's go.mod before `go mod tidy` completes it.
func goModFile() ([]byte, error) {
	var f modfile.File
	if err := f.AddModuleStmt(GoModulePath); err != nil {
		return nil, fmt.Errorf("go.mod module: %w", err)
	}
	if err := f.AddGoStmt("1.25"); err != nil {
		return nil, fmt.Errorf("go.mod go version: %w", err)
	}
	if err := f.AddRequire("github.com/pulumi/pulumi/sdk/v3", PulumiGoSDKVersion); err != nil {
		return nil, fmt.Errorf("go.mod require: %w", err)
	}
	return f.Format()
}

// noExternalPackages is the schema loader: the pulumiservice schema references no other
// package, so any request for one is an error that names it.
type noExternalPackages struct{}

func (noExternalPackages) LoadPackage(pkg string, _ *semver.Version) (*schema.Package, error) {
	return nil, fmt.Errorf("the schema references package %q: only self-contained schemas are supported", pkg)
}

func (noExternalPackages) LoadPackageV2(_ context.Context, d *schema.PackageDescriptor) (*schema.Package, error) {
	return nil, fmt.Errorf("the schema references package %q: only self-contained schemas are supported", d.Name)
}

func (noExternalPackages) LoadPackageReference(pkg string, _ *semver.Version) (schema.PackageReference, error) {
	return nil, fmt.Errorf("the schema references package %q: only self-contained schemas are supported", pkg)
}

func (noExternalPackages) LoadPackageReferenceV2(_ context.Context, d *schema.PackageDescriptor) (schema.PackageReference, error) {
	return nil, fmt.Errorf("the schema references package %q: only self-contained schemas are supported", d.Name)
}

// readKept returns the files of a language directory that survive regeneration: the Go SDK's
// go.sum, which `go mod tidy` maintains (keeping it lets tidy run without the network when
// nothing changed).
func readKept(dir, lang string) (map[string][]byte, error) {
	if lang != "go" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read the Go SDK's go.sum: %w", err)
	}
	return map[string][]byte{"go.sum": b}, nil
}

// writeTree replaces dir with exactly files plus keep.
func writeTree(dir string, files, keep map[string][]byte) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove the old SDK: %w", err)
	}
	all := map[string][]byte{}
	for p, b := range keep {
		all[p] = b
	}
	for p, b := range files {
		all[p] = b
	}
	names := make([]string, 0, len(all))
	for p := range all {
		if p == ".." || strings.HasPrefix(p, "../") || filepath.IsAbs(p) {
			return fmt.Errorf("generated path %q leaves the SDK directory", p)
		}
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(full), err)
		}
		if err := os.WriteFile(full, all[p], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", full, err)
		}
	}
	return nil
}

// goModTidy completes the Go SDK's go.mod and go.sum.
func goModTidy(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "mod", "tidy")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go mod tidy in %s (use -skip-go-mod-tidy to leave go.sum as it is): %w\n%s", dir, err, out)
	}
	return nil
}
