package deploy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

var (
	runningDesc = prometheus.NewDesc("pulumi_webhooks_deployments_running",
		"Deployments this process is running now.", nil, nil)
	workersDesc = prometheus.NewDesc("pulumi_webhooks_deployment_workers",
		"Deployments this process may run at once (--deployment-workers).", nil, nil)
	finishedDesc = prometheus.NewDesc("pulumi_webhooks_deployments_finished_total",
		"Deployments this process finished, by status (succeeded or failed), those of dead runners included.", []string{"status"}, nil)
)

// counts are the runner's totals since it started.
type counts struct {
	mu        sync.Mutex
	succeeded int
	failed    int
}

func (c *counts) add(status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if status == store.DeploymentSucceeded {
		c.succeeded++
	} else {
		c.failed++
	}
}

// Collector returns a Prometheus collector of the runner's state: deployments running, the
// workers, and deployments finished by status. Its label values are fixed.
func (r *Runner) Collector() prometheus.Collector { return runnerCollector{r} }

type runnerCollector struct{ r *Runner }

func (c runnerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runningDesc
	ch <- workersDesc
	ch <- finishedDesc
}

func (c runnerCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.counts.mu.Lock()
	ok, bad := c.r.counts.succeeded, c.r.counts.failed
	c.r.counts.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, float64(len(c.r.slots)))
	ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(cap(c.r.slots)))
	ch <- prometheus.MustNewConstMetric(finishedDesc, prometheus.CounterValue, float64(ok), store.DeploymentSucceeded)
	ch <- prometheus.MustNewConstMetric(finishedDesc, prometheus.CounterValue, float64(bad), store.DeploymentFailed)
}
