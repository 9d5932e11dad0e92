package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// repoRoot is the repository root, three levels above this package.
var repoRoot = filepath.Join("..", "..", "..")

type testBundle struct {
	schema   []byte // the checked-in schema.json
	prepared []byte
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "schema.json"))
	if err != nil {
		t.Fatalf("read the checked-in schema.json (make schema writes it): %v", err)
	}
	prepared, err := PrepareSchema(raw, VersionDefault)
	if err != nil {
		t.Fatalf("prepare schema.json: %v", err)
	}
	return &testBundle{schema: raw, prepared: prepared}
}

// readTree returns the files under dir by slash-separated relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return files
}

// TestCheckedInSDKs regenerates every SDK in memory from the checked-in schema.json and
// compares it, file by file, with sdk/. The C# SDK is never compiled here, so this golden
// comparison is what guards it; for the others `make check-generated` does the same on disk.
func TestCheckedInSDKs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, lang := range LanguagesDefault {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			want, err := GenerateLanguage(b.prepared, lang)
			if err != nil {
				t.Fatal(err)
			}
			got := readTree(t, filepath.Join(repoRoot, "sdk", lang))
			if lang == "go" {
				// go.mod and go.sum are completed by `go mod tidy`; check what the generator decides.
				checkGoMod(t, got["go.mod"])
				if len(got["go.sum"]) == 0 {
					t.Errorf("sdk/go/go.sum is missing or empty: run make sdks")
				}
				delete(want, "go.mod")
				delete(got, "go.mod")
				delete(got, "go.sum")
			}
			for _, p := range slices.Sorted(maps.Keys(want)) {
				g, ok := got[p]
				switch {
				case !ok:
					t.Errorf("sdk/%s/%s is missing: run make sdks", lang, p)
				case !bytes.Equal(g, want[p]):
					t.Errorf("sdk/%s/%s differs from what the generator writes: run make sdks", lang, p)
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok {
					t.Errorf("sdk/%s/%s is not generated any more: run make sdks", lang, p)
				}
			}
		})
	}
}

func checkGoMod(t *testing.T, raw []byte) {
	t.Helper()
	f, err := modfile.Parse("sdk/go/go.mod", raw, nil)
	if err != nil {
		t.Fatalf("parse sdk/go/go.mod: %v", err)
	}
	if f.Module.Mod.Path != GoModulePath {
		t.Errorf("sdk/go/go.mod module = %q, want %q", f.Module.Mod.Path, GoModulePath)
	}
	var sdk string
	for _, r := range f.Require {
		if r.Mod.Path == "github.com/pulumi/pulumi/sdk/v3" {
			sdk = r.Mod.Version
		}
	}
	if sdk != PulumiGoSDKVersion {
		t.Errorf("sdk/go requires github.com/pulumi/pulumi/sdk/v3 %q, want %q", sdk, PulumiGoSDKVersion)
	}
}

// TestGenerateIsReproducible writes every SDK twice into separate directories and compares the
// trees byte for byte.
func TestGenerateIsReproducible(t *testing.T) {
	t.Parallel()
	schemaPath := filepath.Join(repoRoot, "schema.json")
	var trees []map[string][]byte
	for range 2 {
		out := t.TempDir()
		err := Generate(t.Context(), Config{SchemaPath: schemaPath, OutDir: out, SkipGoModTidy: true})
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, readTree(t, out))
	}
	if len(trees[0]) < 40 {
		t.Fatalf("only %d files were generated", len(trees[0]))
	}
	if !maps.EqualFunc(trees[0], trees[1], bytes.Equal) {
		for p := range trees[0] {
			if !bytes.Equal(trees[0][p], trees[1][p]) {
				t.Errorf("%s differs between two runs", p)
			}
		}
		t.Fatal("two runs of the generator wrote different SDKs")
	}
	if !bytes.Equal(trees[0]["dotnet/logo.png"], logoPNG) {
		t.Errorf("the C# SDK's logo.png is not the logo.png beside the generator")
	}
}

// TestPackageNames checks that no SDK takes the official provider's package name.
func TestPackageNames(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gen := func(lang string) map[string][]byte {
		files, err := GenerateLanguage(b.prepared, lang)
		if err != nil {
			t.Fatal(err)
		}
		return files
	}

	var npm struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Pulumi  struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"pulumi"`
	}
	if err := json.Unmarshal(gen("nodejs")["package.json"], &npm); err != nil {
		t.Fatal(err)
	}
	if npm.Name != "@pulumi-webhooks/pulumiservice" || npm.Version != "0.1.0" ||
		npm.Pulumi.Name != "pulumiservice" || npm.Pulumi.Version != "0.1.0" {
		t.Errorf("package.json: %+v", npm)
	}

	py := gen("python")
	if !strings.Contains(string(py["pyproject.toml"]), `name = "pulumi_webhooks_pulumiservice"`) {
		t.Errorf("pyproject.toml does not name pulumi_webhooks_pulumiservice:\n%s", py["pyproject.toml"])
	}
	if _, ok := py["pulumi_webhooks_pulumiservice/webhook.py"]; !ok {
		t.Errorf("the Python module is not pulumi_webhooks_pulumiservice: %v", slices.Sorted(maps.Keys(py)))
	}

	goFiles := gen("go")
	if ok := bytes.Contains(goFiles["pulumiservice/init.go"], []byte(`"`+GoImportBasePath+`/internal"`)); !ok {
		t.Errorf("the Go SDK does not import its internal package under %s", GoImportBasePath)
	}
	if modfile.ModulePath(goFiles["go.mod"]) != GoModulePath {
		t.Errorf("go.mod:\n%s", goFiles["go.mod"])
	}

	cs := gen("dotnet")
	if _, ok := cs["PulumiWebhooks.PulumiService.csproj"]; !ok {
		t.Errorf("the C# project is not PulumiWebhooks.PulumiService.csproj: %v", slices.Sorted(maps.Keys(cs)))
	}
	if !bytes.Contains(cs["Webhook.cs"], []byte("namespace PulumiWebhooks.PulumiService")) {
		t.Errorf("Webhook.cs is not in namespace PulumiWebhooks.PulumiService")
	}
	for lang, files := range map[string]map[string][]byte{"nodejs": gen("nodejs"), "python": py, "go": goFiles, "dotnet": cs} {
		for p, b := range files {
			for _, official := range []string{"@pulumi/pulumiservice", "pulumi_pulumiservice", "Pulumi.PulumiService", "github.com/pulumi/pulumi-pulumiservice"} {
				if bytes.Contains(b, []byte(official)) {
					t.Errorf("%s/%s mentions the official package %s", lang, p, official)
				}
			}
		}
	}
}

func TestPrepareSchema(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("fills the version and replaces language sections", func(t *testing.T) {
		t.Parallel()
		var spec map[string]any
		if err := json.Unmarshal(b.schema, &spec); err != nil {
			t.Fatal(err)
		}
		delete(spec, "version")
		spec["language"] = map[string]any{"nodejs": map[string]any{"packageName": "@pulumi/pulumiservice"}}
		raw, _ := json.Marshal(spec)
		out, err := PrepareSchema(raw, "1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Version  string                     `json:"version"`
			Language map[string]json.RawMessage `json:"language"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if got.Version != "1.2.3" {
			t.Errorf("version = %q, want 1.2.3", got.Version)
		}
		if !slices.Equal(slices.Sorted(maps.Keys(got.Language)), []string{"csharp", "go", "nodejs", "python"}) {
			t.Errorf("language sections: %v", slices.Sorted(maps.Keys(got.Language)))
		}
		if !strings.Contains(string(got.Language["nodejs"]), NodePackageName) {
			t.Errorf("the schema's nodejs section was kept: %s", got.Language["nodejs"])
		}
	})

	t.Run("keeps metadata the schema sets", func(t *testing.T) {
		t.Parallel()
		var spec map[string]any
		if err := json.Unmarshal(b.schema, &spec); err != nil {
			t.Fatal(err)
		}
		spec["publisher"] = "someone else"
		delete(spec, "description")
		raw, _ := json.Marshal(spec)
		out, err := PrepareSchema(raw, VersionDefault)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Publisher, Description string }
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if got.Publisher != "someone else" || got.Description == "" {
			t.Errorf("publisher %q, description %q: want the schema's publisher and a filled description", got.Publisher, got.Description)
		}
	})

	for _, tc := range []struct {
		name, schema, version, wantErr string
	}{
		{"not JSON", `{"name": `, VersionDefault, "not a Pulumi package schema"},
		{"unknown field", `{"name": "pulumiservice", "resourcez": {}}`, VersionDefault, "not a Pulumi package schema"},
		{"another package", `{"name": "aws"}`, VersionDefault, `name is "aws"`},
		{"version mismatch", `{"name": "pulumiservice", "version": "0.2.0"}`, VersionDefault, `version "0.2.0" differs from -version "0.1.0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := PrepareSchema([]byte(tc.schema), tc.version)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("PrepareSchema(%s) = %v, want an error containing %q", tc.schema, err, tc.wantErr)
			}
		})
	}
}

func TestGenerateLanguageErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name     string
		prepared string
		lang     string
		wantErr  string
	}{
		{"unknown language", string(b.prepared), "rust", `unknown language "rust"`},
		{"not JSON", `{`, "nodejs", "decode the prepared schema"},
		{"dangling type reference", `{"name": "pulumiservice", "version": "0.1.0", "resources": {"pulumiservice:index:X": {
			"inputProperties": {"a": {"$ref": "#/types/pulumiservice:index:Missing"}}}}}`, "nodejs", "the schema is invalid"},
		// The C# generator asserts that its language section decodes; that panic becomes an error.
		{"generator panic", `{"name": "pulumiservice", "version": "0.1.0", "language": {"csharp": {"namespaces": 5}}}`,
			"dotnet", "the dotnet code generator failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := GenerateLanguage([]byte(tc.prepared), tc.lang)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("GenerateLanguage = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestGenerateConfigErrors(t *testing.T) {
	t.Parallel()
	schemaPath := filepath.Join(repoRoot, "schema.json")
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"bad version", Config{SchemaPath: schemaPath, Version: "one"}, `version "one" is not a semantic version`},
		{"unknown language", Config{SchemaPath: schemaPath, Languages: []string{"java"}}, `unknown language "java"`},
		{"duplicate language", Config{SchemaPath: schemaPath, Languages: []string{"go", "go"}}, `"go" is listed twice`},
		{"missing schema", Config{SchemaPath: filepath.Join(t.TempDir(), "nope.json")}, "read the schema"},
		{"schema version differs", Config{SchemaPath: schemaPath, Version: "9.9.9"}, `differs from -version "9.9.9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.OutDir = t.TempDir()
			err := Generate(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Generate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestRun drives the command line: flags, the C# SDK on disk with a stale file removed, and
// a go.sum that survives regeneration.
func TestRun(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	schemaPath := filepath.Join(repoRoot, "schema.json")
	stale := filepath.Join(out, "dotnet", "Stale.cs")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("// old"), 0o644); err != nil {
		t.Fatal(err)
	}
	goSum := filepath.Join(out, "go", "go.sum")
	if err := os.MkdirAll(filepath.Dir(goSum), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goSum, []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"-schema", schemaPath, "-out", out, "-languages", "dotnet, go", "-skip-go-mod-tidy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a file the generator no longer writes survived (stat: %v)", err)
	}
	if b, err := os.ReadFile(goSum); err != nil || string(b) != "kept\n" {
		t.Errorf("go.sum = %q, %v: want it kept", b, err)
	}
	if _, err := os.Stat(filepath.Join(out, "dotnet", "Webhook.cs")); err != nil {
		t.Errorf("the C# SDK was not written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "nodejs")); !os.IsNotExist(err) {
		t.Errorf("a language that was not asked for was written (stat: %v)", err)
	}

	if err := run(t.Context(), []string{"-out", out, "extra"}); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("run with a positional argument = %v, want an error", err)
	}
	if err := run(t.Context(), []string{"-no-such-flag"}); err == nil {
		t.Errorf("run with an unknown flag succeeded")
	}
	if err := run(t.Context(), []string{"-help"}); err != nil {
		t.Errorf("run -help = %v, want the usage and no error", err)
	}
}

func TestWriteTreeRejectsEscapingPaths(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sdk")
	err := writeTree(dir, map[string][]byte{"../evil.txt": []byte("x")}, nil)
	if err == nil || !strings.Contains(err.Error(), "leaves the SDK directory") {
		t.Fatalf("writeTree = %v, want an error", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil.txt")); !os.IsNotExist(err) {
		t.Fatalf("the escaping file was written")
	}
}

func TestGoModTidyError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\nrequire (\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := goModTidy(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "go mod tidy in") {
		t.Fatalf("goModTidy = %v, want an error", err)
	}
}

// TestOfflineTransport checks the logo answer and the refusal of everything else. Requests go
// to the reserved .invalid domain, which never resolves, so nothing can leave the machine.
func TestOfflineTransport(t *testing.T) {
	t.Parallel()
	// Other tests install the offline transport concurrently, each under transportMu until it
	// restores it: read the default transport under that lock too, before and after, so a read
	// never sees another test's install.
	defaultTransport := func() http.RoundTripper {
		transportMu.Lock()
		defer transportMu.Unlock()
		return http.DefaultTransport
	}
	before := defaultTransport()
	restore := installOfflineTransport()
	resp, err := http.Get("https://logo.invalid/images/logo.png")
	if err != nil {
		restore()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	_, errOther := http.Get("https://logo.invalid/index.html")
	_, errPost := http.Post("https://logo.invalid/logo.png", "image/png", strings.NewReader("x"))
	restore()

	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, logoPNG) {
		t.Errorf("the logo request got status %d and %d bytes, want 200 and logo.png", resp.StatusCode, len(body))
	}
	if errOther == nil || !strings.Contains(errOther.Error(), "sdkgen runs offline") {
		t.Errorf("a non-logo GET = %v, want a refusal", errOther)
	}
	if errPost == nil || !strings.Contains(errPost.Error(), "refusing POST") {
		t.Errorf("a POST = %v, want a refusal", errPost)
	}
	if defaultTransport() != before {
		t.Errorf("the default transport was not restored")
	}
}
