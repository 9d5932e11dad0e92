package watch

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes watchers' states to Prometheus, read at scrape time:
// <namespace>_watch_up{backend} (1 while polls succeed), _watch_lag_seconds{backend} (since
// the last successful poll started: nothing Pulumi wrote after it has been seen yet) and
// _watch_events_total{backend}.
type Collector struct {
	watchers []*Watcher
	up       *prometheus.Desc
	lag      *prometheus.Desc
	events   *prometheus.Desc
}

// NewCollector returns a collector of ws, its metric names prefixed by namespace.
func NewCollector(namespace string, ws ...*Watcher) *Collector {
	label := []string{"backend"}
	return &Collector{
		watchers: ws,
		up: prometheus.NewDesc(namespace+"_watch_up",
			"1 while the backend watcher's polls succeed, 0 while they fail.", label, nil),
		lag: prometheus.NewDesc(namespace+"_watch_lag_seconds",
			"Seconds since the backend watcher's last successful poll started: changes after it are not seen yet.", label, nil),
		events: prometheus.NewDesc(namespace+"_watch_events_total",
			"Events the backend watcher stored.", label, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.lag
	ch <- c.events
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, w := range c.watchers {
		s := w.Status()
		up := 0.0
		if s.State == StateWatching {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, s.Backend)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, s.LagSeconds, s.Backend)
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(s.Events), s.Backend)
	}
}
