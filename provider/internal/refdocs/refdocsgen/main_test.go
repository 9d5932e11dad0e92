package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/refdocs"
)

func TestRun(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	for name, body := range map[string]string{
		refdocs.SourceSchema:  `{"name":"p","description":"words"}`,
		refdocs.SourceOpenAPI: `{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{}}`,
		refdocs.SourcePage:    "##### A\n```json\n{\"a\": 1}\n```\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(nil); err == nil || !strings.Contains(err.Error(), "-from is required") {
		t.Errorf("run without -from: %v", err)
	}
	if err := run([]string{"-from", src}); err == nil || !strings.Contains(err.Error(), "make reference REFERENCE=") {
		t.Errorf("checking documents that disagree: %v, want an error naming `make reference`", err)
	}
	if err := run([]string{"-from", t.TempDir()}); err == nil || !strings.Contains(err.Error(), refdocs.SourceSchema) {
		t.Errorf("checking an empty directory: %v, want an error naming %s", err, refdocs.SourceSchema)
	}
	out := filepath.Join(t.TempDir(), "facts")
	if err := run([]string{"-from", src, "-write", "-out", out}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, refdocs.ProviderSchema))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "{\n  \"name\": \"p\"\n}\n" {
		t.Errorf("written schema facts:\n%s", b)
	}
	if err := run([]string{"-bogus"}); err == nil {
		t.Error("an unknown flag was accepted")
	}
}
