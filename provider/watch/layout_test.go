package watch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseCheckpointKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key     string
		version int
		want    StackRef
		ok      bool
	}{
		{".pulumi/stacks/web/dev.json", 1, StackRef{"web", "dev"}, true},
		{".pulumi/stacks/web/dev.json.gz", 1, StackRef{"web", "dev"}, true},
		{".pulumi/stacks/web/dev.json.zst", -1, StackRef{"web", "dev"}, true},
		{".pulumi/stacks/web/dev.json.bak", 1, StackRef{}, false},
		{".pulumi/stacks/web/dev.json.gz.bak", 1, StackRef{}, false},
		{".pulumi/stacks/web/dev.json.attrs", 1, StackRef{}, false},
		{".pulumi/stacks/web/dev.pulumi-tags", 1, StackRef{}, false},
		{".pulumi/stacks/dev.json", 0, StackRef{Name: "dev"}, true},
		{".pulumi/stacks/dev.json", -1, StackRef{Name: "dev"}, true},
		{".pulumi/stacks/dev.json", 1, StackRef{}, false},     // legacy file in a project layout
		{".pulumi/stacks/web/dev.json", 0, StackRef{}, false}, // project file in a legacy layout
		{".pulumi/stacks/a/b/c.json", 1, StackRef{}, false},   // too deep
		{".pulumi/history/web/dev/dev-1.history.json", 1, StackRef{}, false},
		{".pulumi/stacks/web/.json", 1, StackRef{}, false},
	} {
		got, ok := ParseCheckpointKey(tc.key, tc.version)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseCheckpointKey(%q, %d) = %+v, %v; want %+v, %v", tc.key, tc.version, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseHistoryKey(t *testing.T) {
	t.Parallel()
	const n = 1795795098525798495
	for _, tc := range []struct {
		key, stack string
		ok         bool
	}{
		{fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history.json", n), "dev", true},
		{fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history.json.gz", n), "dev", true},
		{fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history.json.zst", n), "dev", true},
		{fmt.Sprintf(".pulumi/history/dev/dev-%d.history.json", n), "dev", true}, // legacy
		{fmt.Sprintf(".pulumi/history/web/dev/dev-%d.checkpoint.json", n), "dev", false},
		{fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history.json.bak", n), "dev", false},
		{fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history.json.attrs", n), "dev", false},
		{fmt.Sprintf(".pulumi/history/web/my-dev/my-dev-%d.history.json", n), "my-dev", true},
		{fmt.Sprintf(".pulumi/history/web/my-dev/my-dev-%d.history.json", n), "dev", false},
		{".pulumi/history/web/dev/dev-12ab.history.json", "dev", false},
		{".pulumi/history/web/dev/dev-.history.json", "dev", false},
		{".pulumi/history/web/dev/dev-99999999999999999999999.history.json", "dev", false}, // overflows
	} {
		got, ok := ParseHistoryKey(tc.key, tc.stack)
		if ok != tc.ok || (ok && got != n) {
			t.Errorf("ParseHistoryKey(%q, %q) = %d, %v; want ok %v", tc.key, tc.stack, got, ok, tc.ok)
		}
	}
}

func TestStackRefPaths(t *testing.T) {
	t.Parallel()
	r := StackRef{Project: "web", Name: "dev"}
	if r.HistoryPrefix() != ".pulumi/history/web/dev/dev-" || r.CheckpointBase() != ".pulumi/stacks/web/dev" || r.Key() != "web/dev" {
		t.Errorf("project paths: %q %q %q", r.HistoryPrefix(), r.CheckpointBase(), r.Key())
	}
	l := StackRef{Name: "dev"}
	if l.HistoryPrefix() != ".pulumi/history/dev/dev-" || l.Key() != "dev" {
		t.Errorf("legacy paths: %q %q", l.HistoryPrefix(), l.Key())
	}
	if refOf("web/dev") != r || refOf("dev") != l {
		t.Errorf("refOf does not invert Key")
	}
}

// Every timestamp in the window matches one of the prefixes, and the listings stay few.
func TestWindowPrefixesCoverTheWindow(t *testing.T) {
	t.Parallel()
	const base = int64(1795795098525798495)
	for _, span := range []int64{0, 1, 999, 5e9, 6e11, 3.6e12, 86400e9, 30 * 86400e9} {
		lo, hi := base, base+span
		ps := WindowPrefixes(lo, hi)
		if len(ps) == 0 || len(ps) > windowPrefixesMax {
			t.Fatalf("span %d: %d prefixes %v", span, len(ps), ps)
		}
		for _, n := range []int64{lo, (lo + hi) / 2, hi} {
			s := strconv.FormatInt(n, 10)
			if !slices.ContainsFunc(ps, func(p string) bool { return strings.HasPrefix(s, p) }) {
				t.Errorf("span %d: %d matches none of %v", span, n, ps)
			}
		}
		// Outside the window, at most one block's worth beyond it.
		if span == 6e11 && slices.Contains(ps, "") {
			t.Errorf("a ten-minute window lists everything: %v", ps)
		}
	}
	for _, tc := range []struct{ lo, hi int64 }{{0, base}, {-1, base}, {base, base - 1}, {999, base}} {
		if ps := WindowPrefixes(tc.lo, tc.hi); !slices.Equal(ps, []string{""}) {
			t.Errorf("WindowPrefixes(%d, %d) = %v, want everything", tc.lo, tc.hi, ps)
		}
	}
}

func TestParseLockKey(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]StackRef{
		".pulumi/locks/organization/web/dev/3f1c.json": {Project: "web", Name: "dev"},
		".pulumi/locks/dev/3f1c.json":                  {Name: "dev"},
		".pulumi/locks/organization/web/dev/3f1c.txt":  {},
		".pulumi/locks/a/b/3f1c.json":                  {},
		".pulumi/stacks/web/dev.json":                  {},
	} {
		got, ok := ParseLockKey(key)
		if got != want || ok != (want != StackRef{}) {
			t.Errorf("ParseLockKey(%q) = %+v, %v; want %+v", key, got, ok, want)
		}
	}
}
