package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParsePulumiArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want pulumiCall
	}{
		{[]string{"up", "--yes"}, pulumiCall{op: "up"}},
		{[]string{"--cwd", "infra", "preview", "-s", "dev"}, pulumiCall{op: "preview", stack: "dev", cwd: "infra"}},
		{[]string{"-C=infra", "destroy", "--stack=organization/web/prod"}, pulumiCall{op: "destroy", stack: "organization/web/prod", cwd: "infra"}},
		{[]string{"--color", "never", "refresh"}, pulumiCall{op: "refresh"}},
		{[]string{"stack", "init", "dev"}, pulumiCall{op: "stack"}},
		{[]string{"up", "--", "--stack", "x"}, pulumiCall{op: "up"}},
	} {
		if got := parsePulumiArgs(tc.args); got != tc.want {
			t.Errorf("parsePulumiArgs(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

func TestReadEventLog(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "events.jsonl")
	os.WriteFile(p, []byte(`{"sequence":0,"timestamp":1,"preludeEvent":{"config":{}}}
{"sequence":1,"timestamp":2,"summaryEvent":{"resourceChanges":{"create":2},"isPreview":true,"result":"succeeded"}}
{"sequence":2,"timest`), 0o644)
	s, ran, err := readEventLog(p)
	if err != nil || !ran || s == nil || s.ResourceChanges["create"] != 2 || !s.IsPreview {
		t.Fatalf("readEventLog = %+v, %v, %v", s, ran, err)
	}
	if s, ran, err := readEventLog(filepath.Join(t.TempDir(), "none")); s != nil || ran || err != nil {
		t.Errorf("missing log = %+v, %v, %v; want nothing", s, ran, err)
	}
	if f := previewParams("organization", "web", "dev", s, 0, t.TempDir()); f.Filter != "preview_succeeded" {
		t.Errorf("preview filter %s", f.Filter)
	}
	if f := previewParams("organization", "web", "dev", s, 1, t.TempDir()); f.Filter != "preview_failed" {
		t.Errorf("failed preview filter %s", f.Filter)
	}
}

func TestPulumiWrapperErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fails([]string{"--pulumi-bin", "no-such-pulumi"}, "pulumi", "--pulumi-bin", "no-such-pulumi", "--", "preview")
	b.fails([]string{"requires at least 1 arg"}, "pulumi")
}
