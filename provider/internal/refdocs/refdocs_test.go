package refdocs

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	pathpkg "path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func TestFactsAreJSON(t *testing.T) {
	t.Parallel()
	for _, name := range Names() {
		b, err := Read(name)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Errorf("%s is not JSON", name)
		}
	}
	if _, err := Read("missing.json"); err == nil || !strings.Contains(err.Error(), "make reference") {
		t.Errorf("reading a missing fact file: %v, want an error naming `make reference`", err)
	}
}

func TestPayloadExamples(t *testing.T) {
	t.Parallel()
	ex, err := PayloadExamples()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Stack Creation", "Stack Update", "Stack Preview", "Deployment"} {
		var v map[string]any
		if err := json.Unmarshal(ex[name], &v); err != nil {
			t.Errorf("example %q does not parse: %v", name, err)
		}
		if _, ok := v["organization"]; !ok {
			t.Errorf("example %q has no organization", name)
		}
	}
}

// TestFactsCarryNoProse: the checked-in facts keep names, types and shapes, never the
// documents' sentences. The one description left is the status text OpenAPI requires on each
// response.
func TestFactsCarryNoProse(t *testing.T) {
	t.Parallel()
	for _, name := range Names() {
		b, err := Read(name)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, x := range v {
					s, isString := x.(string)
					parent, last := pathpkg.Split(path)
					statusText := strings.HasSuffix(parent, "/responses/") && s == http.StatusText(atoi(last))
					if isString && (k == "description" || k == "summary") && !statusText {
						t.Errorf("%s: %s/%s is prose: %q", name, path, k, s)
					}
					walk(path+"/"+k, x)
				}
			case []any:
				for _, x := range v {
					walk(path+"/[]", x)
				}
			}
		}
		walk("", v)
	}
}

func TestDecodeExamplesErrors(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{`[1]`: "cannot unmarshal", `{}`: "no examples", `{`: "unexpected end"} {
		if _, err := decodeExamples([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeExamples(%s) = %v, want an error containing %q", in, err, want)
		}
	}
}

// writeSources lays out a small set of reference documents in a new directory.
func writeSources(t *testing.T, page string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		SourceSchema: `{"name":"p","config":{"variables":{"apiUrl":{"type":"string","description":"Where it goes.","default":"x"}}},` +
			`"types":{"p:index:T":{"type":"object","properties":{"description":{"type":"string","description":"A property named description."},"z":{"type":"integer"},"a":{"type":"boolean"}}}}}`,
		SourceOpenAPI: `{"openapi":"3.0.3","info":{"title":"A title that is prose","version":"1"},` +
			`"paths":{"/x":{"get":{"summary":"Gets x.","description":"Long words.","operationId":"GetX","responses":{"200":{"description":"Fine."},"499":{"description":"Odd."}}}}}}`,
		SourcePage: page,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const testPage = "# Page\n\nSome prose.\n\n##### First\n\n```json\n{\"b\": 1, \"a\": {\"y\": \"<u&v>\", \"x\": [true, null, 1.50]}}\n```\n\n" +
	"```json\n{\"ignored\": \"no heading\"}\n```\n\n##### Second\n\n```json\n{\"only\": \"one\"}\n```\n"

func TestGenerate(t *testing.T) {
	t.Parallel()
	facts, err := Generate(writeSources(t, testPage))
	if err != nil {
		t.Fatal(err)
	}
	compact := func(b []byte) string {
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return buf.String()
	}
	want := map[string]string{
		ProviderSchema: `{"name":"p","config":{"variables":{"apiUrl":{"type":"string","default":"x"}}},` +
			`"types":{"p:index:T":{"type":"object","properties":{"description":{"type":"string"},"z":{"type":"integer"},"a":{"type":"boolean"}}}}}`,
		OpenAPI: `{"openapi":"3.0.3","info":{"title":"` + openAPITitle + `","version":"1"},` +
			`"paths":{"/x":{"get":{"operationId":"GetX","responses":{"200":{"description":"OK"},"499":{"description":"Response"}}}}}}`,
		Payloads: `{"First":{"b":1,"a":{"y":"<u&v>","x":[true,null,1.50]}},"Second":{"only":"one"}}`,
	}
	for name, w := range want {
		got := facts[name]
		if compact(got) != w {
			t.Errorf("%s:\ngot  %s\nwant %s", name, compact(got), w)
		}
		if !bytes.HasSuffix(got, []byte("}\n")) || !bytes.Contains(got, []byte("\n  \"")) {
			t.Errorf("%s is not indented JSON with a final newline:\n%s", name, got)
		}
	}
	if len(facts) != len(Names()) {
		t.Errorf("Generate returned %d files, want %d", len(facts), len(Names()))
	}
}

func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		page, want string
		remove     string
	}{
		"no examples":    {page: "# nothing\n", want: "no JSON example"},
		"open fence":     {page: "##### A\n```json\n{}\n", want: `under "A" has no closing fence`},
		"bad example":    {page: "##### A\n```json\n{\"a\": }\n```\n", want: `under "A" is not JSON`},
		"trailing data":  {page: "##### A\n```json\n{} {}\n```\n", want: "data after the JSON value"},
		"missing schema": {page: testPage, remove: SourceSchema, want: SourceSchema},
		"missing api":    {page: testPage, remove: SourceOpenAPI, want: SourceOpenAPI},
		"missing page":   {page: testPage, remove: SourcePage, want: SourcePage},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := writeSources(t, tc.page)
			if tc.remove != "" {
				if err := os.Remove(filepath.Join(dir, tc.remove)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Generate(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Generate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("bad schema", func(t *testing.T) {
		t.Parallel()
		dir := writeSources(t, testPage)
		if err := os.WriteFile(filepath.Join(dir, SourceSchema), []byte(`{"a":`), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Generate(dir); err == nil || !strings.Contains(err.Error(), SourceSchema) {
			t.Fatalf("Generate: %v, want an error naming %s", err, SourceSchema)
		}
	})
}

// TestCheck: documents that say something else than the checked-in facts are reported file by
// file (the agreement with Pulumi's real documents is checked by `make check-reference`).
func TestCheck(t *testing.T) {
	t.Parallel()
	stale, err := Check(writeSources(t, testPage))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(stale, ",") != strings.Join(Names(), ",") {
		t.Errorf("Check reported %v stale, want all of %v", stale, Names())
	}
	if _, err := Check(t.TempDir()); err == nil {
		t.Error("Check of an empty directory succeeded")
	}
}
