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
	st := c.r.Status()
	ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, float64(st.Running))
	ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(st.Workers))
	ch <- prometheus.MustNewConstMetric(finishedDesc, prometheus.CounterValue, float64(st.Succeeded), store.DeploymentSucceeded)
	ch <- prometheus.MustNewConstMetric(finishedDesc, prometheus.CounterValue, float64(st.Failed), store.DeploymentFailed)
}

// Status is the runner's state, as /readyz shows it.
type Status struct {
	// Workers is how many deployments it may run at once, Running how many it runs now.
	Workers int `json:"workers"`
	Running int `json:"running"`
	// Succeeded and Failed count the deployments it finished since it started.
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// Status returns the runner's state now.
func (r *Runner) Status() Status {
	r.counts.mu.Lock()
	defer r.counts.mu.Unlock()
	return Status{Workers: cap(r.slots), Running: len(r.slots), Succeeded: r.counts.succeeded, Failed: r.counts.failed}
}
