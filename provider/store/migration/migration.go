// Package migration is the one home of how store backends find and order their schema
// migrations: numbered files migrations/NNN_name.up.sql and NNN_name.down.sql in an embedded
// file system, and which of them a database still needs. Each backend runs the SQL itself, in
// its own transaction and under its own lock, and records them in schema_migrations.
package migration

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migration is one numbered schema change: Up applies it, Down (maybe empty) reverts it.
type Migration struct {
	Version  int
	Name     string
	Up, Down string
}

// String names the migration as its files do, e.g. 001_init.
func (m Migration) String() string { return fmt.Sprintf("%03d_%s", m.Version, m.Name) }

// Load reads the migrations in fsys's migrations directory, in version order. A file named
// otherwise, a version without an .up.sql file, or no migrations at all is an error.
func Load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		name := e.Name()
		base, dir, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), ".")
		num, label, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || (dir != "up" && dir != "down") || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration file %s: name it NNN_name.up.sql or NNN_name.down.sql", name)
		}
		body, err := fs.ReadFile(fsys, "migrations/"+name)
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &Migration{Version: v, Name: label}
			byVersion[v] = m
		}
		if dir == "up" {
			m.Up = string(body)
		} else {
			m.Down = string(body)
		}
	}
	var out []Migration
	for _, m := range byVersion {
		if m.Up == "" {
			return nil, fmt.Errorf("migration %s has no .up.sql file", m)
		}
		out = append(out, *m)
	}
	if len(out) == 0 {
		return nil, errors.New("no migrations found")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Pending returns the migrations of ms (in version order, as Load returns them) whose versions
// applied does not hold, in order. newer is the highest applied version when it is above every
// version ms knows (a database a newer build migrated), else 0.
func Pending(ms []Migration, applied []int) (pending []Migration, newer int) {
	done := map[int]bool{}
	maxApplied := 0
	for _, v := range applied {
		done[v] = true
		maxApplied = max(maxApplied, v)
	}
	if len(ms) > 0 && maxApplied > ms[len(ms)-1].Version {
		return nil, maxApplied
	}
	for _, m := range ms {
		if !done[m.Version] {
			pending = append(pending, m)
		}
	}
	return pending, 0
}
