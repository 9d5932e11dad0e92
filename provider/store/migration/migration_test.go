package migration

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadRefusesBadNames(t *testing.T) {
	for name, c := range map[string]struct {
		fsys fstest.MapFS
		want string
	}{
		"no direction": {fstest.MapFS{"migrations/001_init.sql": {Data: []byte("x")}}, "name it NNN_name.up.sql"},
		"no number":    {fstest.MapFS{"migrations/init.up.sql": {Data: []byte("x")}}, "name it NNN_name.up.sql"},
		"not sql":      {fstest.MapFS{"migrations/001_init.up.txt": {Data: []byte("x")}}, "name it NNN_name.up.sql"},
		"down only":    {fstest.MapFS{"migrations/001_init.down.sql": {Data: []byte("x")}}, "migration 001_init has no .up.sql file"},
		"empty":        {fstest.MapFS{"migrations": {Mode: 0o755 | 1<<31}}, "no migrations found"},
		"no directory": {fstest.MapFS{}, "migrations"},
	} {
		if ms, err := Load(c.fsys); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Load = %v, %v; want an error with %q", name, ms, err, c.want)
		}
	}
}

func TestLoadOrdersAndPairs(t *testing.T) {
	ms, err := Load(fstest.MapFS{
		"migrations/010_ten.up.sql":    {Data: []byte("up10")},
		"migrations/002_two.up.sql":    {Data: []byte("up2")},
		"migrations/002_two.down.sql":  {Data: []byte("down2")},
		"migrations/001_init.up.sql":   {Data: []byte("up1")},
		"migrations/001_init.down.sql": {Data: []byte("down1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Migration{{1, "init", "up1", "down1"}, {2, "two", "up2", "down2"}, {10, "ten", "up10", ""}}
	if !slices.Equal(ms, want) {
		t.Fatalf("Load = %+v, want %+v", ms, want)
	}
	if got := ms[2].String(); got != "010_ten" {
		t.Fatalf("String() = %q", got)
	}
}

func TestPending(t *testing.T) {
	ms := []Migration{{Version: 1}, {Version: 2}, {Version: 3}}
	versions := func(ms []Migration) []int {
		var out []int
		for _, m := range ms {
			out = append(out, m.Version)
		}
		return out
	}
	if p, newer := Pending(ms, nil); newer != 0 || !slices.Equal(versions(p), []int{1, 2, 3}) {
		t.Fatalf("fresh database: %v, %d", versions(p), newer)
	}
	if p, newer := Pending(ms, []int{2, 1}); newer != 0 || !slices.Equal(versions(p), []int{3}) {
		t.Fatalf("at 2: %v, %d", versions(p), newer)
	}
	if p, newer := Pending(ms, []int{1, 3}); newer != 0 || !slices.Equal(versions(p), []int{2}) {
		t.Fatalf("a gap: %v, %d", versions(p), newer)
	}
	if p, newer := Pending(ms, []int{1, 2, 3}); newer != 0 || len(p) != 0 {
		t.Fatalf("up to date: %v, %d", versions(p), newer)
	}
	if p, newer := Pending(ms, []int{1, 2, 3, 4}); newer != 4 || p != nil {
		t.Fatalf("newer database: %v, %d; want none and 4", versions(p), newer)
	}
}
