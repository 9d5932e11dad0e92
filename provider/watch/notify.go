package watch

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// notifyDebounce lets a burst of writes (an entry, its checkpoint copy, the backup) end
// before the poll it triggers.
const notifyDebounce = 50 * time.Millisecond

// notifyDir calls kick soon after anything changes under dir/.pulumi (stacks, history,
// locks), watching new folders as they appear. It returns a function that stops it.
func notifyDir(ctx context.Context, dir string, kick func(), log *slog.Logger) (func(), error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, strings.TrimSuffix(bookkeepingDir, "/"))
	// The state directory itself, to see .pulumi appear in a fresh backend.
	if err := fw.Add(dir); err != nil {
		fw.Close()
		return nil, err
	}
	addTree := func(top string) {
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // gone already, or unreadable: polling still covers it
			}
			if d.IsDir() {
				if err := fw.Add(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					log.Debug("cannot watch folder; polling covers it", "dir", p, "error", err)
				}
			}
			return nil
		})
	}
	addTree(root)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer fw.Close()
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) {
					if st, err := os.Stat(ev.Name); err == nil && st.IsDir() && inside(root, ev.Name) {
						addTree(ev.Name)
					}
				}
				if !inside(root, ev.Name) {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(notifyDebounce)
				} else {
					timer.Reset(notifyDebounce)
				}
				fire = timer.C
			case <-fire:
				fire = nil
				kick()
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				// An overflow loses events: poll now to catch up.
				log.Debug("filesystem notification error; polling", "error", err)
				kick()
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}

// inside reports whether p is root or below it.
func inside(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}
