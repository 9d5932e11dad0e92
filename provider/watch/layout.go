package watch

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Where Pulumi's DIY backend keeps things inside the bucket (pkg/backend/diy).
const (
	bookkeepingDir = ".pulumi/"
	metaPath       = ".pulumi/meta.yaml"
	stacksDir      = ".pulumi/stacks/"
	historyDir     = ".pulumi/history/"
	locksDir       = ".pulumi/locks/"
)

// checkpointExts are the endings of a stack's checkpoint; .bak copies and tag files end
// otherwise and are not checkpoints.
var checkpointExts = []string{".json", ".json.gz", ".json.zst"}

// historyExts are the endings of a history entry; the checkpoint copies beside them end in
// .checkpoint.json*.
var historyExts = []string{".history.json", ".history.json.gz", ".history.json.zst"}

// StackRef names a stack in a backend. Project is "" in the legacy layout, where the path
// does not say it.
type StackRef struct {
	Project string
	Name    string
}

// Key is "project/stack", or the bare stack name in the legacy layout.
func (r StackRef) Key() string {
	if r.Project == "" {
		return r.Name
	}
	return r.Project + "/" + r.Name
}

// CheckpointBase is the checkpoint's path without its extension.
func (r StackRef) CheckpointBase() string { return stacksDir + r.Key() }

// HistoryDir is the folder of the stack's history, with a trailing slash.
func (r StackRef) HistoryDir() string { return historyDir + r.Key() + "/" }

// HistoryPrefix is what every history file name of the stack starts with:
// <dir>/<stack>-, followed by the timestamp.
func (r StackRef) HistoryPrefix() string { return r.HistoryDir() + r.Name + "-" }

// ParseCheckpointKey recognizes a stack checkpoint in a listing of .pulumi/stacks/. version is
// the layout (1: <project>/<stack>.json, 0: <stack>.json, -1: either).
func ParseCheckpointKey(key string, version int) (StackRef, bool) {
	rest, ok := strings.CutPrefix(key, stacksDir)
	if !ok {
		return StackRef{}, false
	}
	var base string
	for _, ext := range checkpointExts {
		if b, ok := strings.CutSuffix(rest, ext); ok {
			base = b
			break
		}
	}
	if base == "" {
		return StackRef{}, false
	}
	parts := strings.Split(base, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, " \t\r\n") {
			return StackRef{}, false
		}
	}
	switch {
	case len(parts) == 2 && version != 0:
		return StackRef{Project: parts[0], Name: parts[1]}, true
	case len(parts) == 1 && version != 1:
		return StackRef{Name: parts[0]}, true
	}
	return StackRef{}, false
}

// ParseHistoryKey returns the timestamp in the name of stack's history entry key, or false
// when key is not a history entry of stack (a checkpoint copy, a .bak, another stack's).
func ParseHistoryKey(key, stack string) (int64, bool) {
	name := path.Base(key)
	var base string
	for _, ext := range historyExts {
		if b, ok := strings.CutSuffix(name, ext); ok {
			base = b
			break
		}
	}
	digits, ok := strings.CutPrefix(base, stack+"-")
	if !ok || digits == "" || strings.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// windowPrefixesMax bounds the listings one history window takes.
const windowPrefixesMax = 4

// WindowPrefixes returns decimal prefixes of timestamps that together cover [lo, hi]: listing
// "<stack>-"+prefix for each finds every entry stamped in the window, and few others. The
// prefixes are the fewest aligned blocks of one size (a power of ten nanoseconds) that cover
// the window in at most windowPrefixesMax listings. lo <= 0, or a window whose ends differ in
// digit count, gives [""]: list everything.
func WindowPrefixes(lo, hi int64) []string {
	if lo <= 0 || hi < lo {
		return []string{""}
	}
	ls, hs := strconv.FormatInt(lo, 10), strconv.FormatInt(hi, 10)
	if len(ls) != len(hs) {
		return []string{""}
	}
	block := int64(1)
	for k := 0; k < len(ls); k++ {
		first, last := lo/block, hi/block
		if last-first+1 <= windowPrefixesMax {
			out := make([]string, 0, last-first+1)
			for d := first; d <= last; d++ {
				out = append(out, fmt.Sprint(d))
			}
			return out
		}
		block *= 10
	}
	return []string{""}
}

// ParseLockKey returns the stack a lock file belongs to: .pulumi/locks/<org>/<project>/<stack>/<id>.json
// in the project layout, .pulumi/locks/<stack>/<id>.json in the legacy one.
func ParseLockKey(key string) (StackRef, bool) {
	rest, ok := strings.CutPrefix(key, locksDir)
	if !ok || !strings.HasSuffix(rest, ".json") {
		return StackRef{}, false
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 4:
		return StackRef{Project: parts[1], Name: parts[2]}, parts[1] != "" && parts[2] != ""
	case 2:
		return StackRef{Name: parts[0]}, parts[0] != ""
	}
	return StackRef{}, false
}
