package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch"
)

// watchOpts are serve's backend watcher flags.
type watchOpts struct {
	urls     []string
	org      string
	interval time.Duration
}

func (w *watchOpts) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVar(&w.urls, "watch", nil, "fire events from a self-managed Pulumi backend: the URL `pulumi login` takes (file://, s3://, gs://, azblob://, postgres://); repeat for several")
	f.StringVar(&w.org, "watch-org", watch.OrgDefault, "organization of the watched backends' events")
	f.DurationVar(&w.interval, "watch-interval", watch.IntervalDefault, "how often watched backends are polled (file:// backends are also notified of changes)")
	for _, name := range []string{"watch", "watch-org", "watch-interval"} {
		withEnv(f, name, EnvPrefix+strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
}

// open opens a watcher per URL; any backend that cannot be read is an error naming it.
func (w *watchOpts) open(ctx context.Context, e *engine.Engine, st store.Store, log *slog.Logger) ([]*watch.Watcher, error) {
	if len(w.urls) == 0 {
		return nil, nil
	}
	if w.interval <= 0 {
		return nil, fmt.Errorf("--watch-interval %s: give a positive duration such as 5s", w.interval)
	}
	cursors, ok := st.(store.WatchCursors)
	if !ok {
		return nil, errors.New("--watch: this store cannot keep watch cursors")
	}
	var ws []*watch.Watcher
	for _, u := range w.urls {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		wt, err := watch.Open(ctx, watch.Config{
			URL: u, Org: w.org, Interval: w.interval, Emitter: e, Cursors: cursors, Logger: log.With("component", "watch"),
		})
		if err != nil {
			closeWatchers(ws)
			return nil, fmt.Errorf("--watch: %w", err)
		}
		ws = append(ws, wt)
	}
	return ws, nil
}

func closeWatchers(ws []*watch.Watcher) {
	for _, w := range ws {
		_ = w.Stop()
	}
}

// readyDetails reports the watchers in /readyz.
func readyDetails(ws []*watch.Watcher) func() map[string]any {
	if len(ws) == 0 {
		return nil
	}
	return func() map[string]any {
		st := make([]watch.Status, 0, len(ws))
		for _, w := range ws {
			st = append(st, w.Status())
		}
		return map[string]any{"watchers": st}
	}
}

// registerWatchMetrics adds the watchers' lag and state to /metrics.
func registerWatchMetrics(m *server.Metrics, ws []*watch.Watcher) {
	if len(ws) > 0 {
		m.Registry().MustRegister(watch.NewCollector(server.MetricsNamespace, ws...))
	}
}
