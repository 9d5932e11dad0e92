package retention

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	runsDesc = prometheus.NewDesc("pulumi_webhooks_retention_runs_total",
		"Runs of the history pruner, by result (ok or failed).", []string{"result"}, nil)
	deletedDesc = prometheus.NewDesc("pulumi_webhooks_retention_deleted_total",
		"Rows the history pruner deleted, by kind.", []string{"kind"}, nil)
	lastRunDesc = prometheus.NewDesc("pulumi_webhooks_retention_last_run_timestamp_seconds",
		"When the history pruner last ran (unix seconds); 0 before its first run.", nil, nil)
)

// Collector returns a Prometheus collector of the pruner's state: runs, rows deleted and when
// it last ran. Its label values are fixed, so its series never grow.
func (p *Pruner) Collector() prometheus.Collector { return collector{p} }

type collector struct{ p *Pruner }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runsDesc
	ch <- deletedDesc
	ch <- lastRunDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	t, last := c.p.Totals(), c.p.Last()
	ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.CounterValue, float64(t.Runs-t.Failures), "ok")
	ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.CounterValue, float64(t.Failures), "failed")
	for _, k := range []struct {
		kind string
		n    int
	}{
		{"events", t.Deleted.Events}, {"deliveries", t.Deleted.Deliveries}, {"attempts", t.Deleted.Attempts},
		{"bodies", t.Deleted.Bodies}, {"deployment_requests", t.Deleted.DeploymentRequests},
		{"idempotency_keys", t.Deleted.IdempotencyKeys}, {"deployments", t.Deleted.Deployments},
	} {
		ch <- prometheus.MustNewConstMetric(deletedDesc, prometheus.CounterValue, float64(k.n), k.kind)
	}
	at := 0.0
	if !last.At.IsZero() {
		at = float64(last.At.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(lastRunDesc, prometheus.GaugeValue, at)
}
