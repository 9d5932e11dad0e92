package console

import (
	"fmt"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// The chart covers ChartHours hours in one-hour bars, drawn as inline SVG (no script).
const ChartHours = 24

// Geometry of the chart's SVG viewBox: the plot area and the whole.
const (
	chartWidth  = 480.0
	chartHeight = 150.0
	plotLeft    = 8.0
	plotRight   = 440.0
	plotTop     = 10.0
	plotBottom  = 120.0
)

type bucket struct {
	Start      time.Time
	OK, Failed int
	AvgMs      int64
	// Geometry of the bar: x and width, then the success and failure parts.
	X, W               float64
	OKY, OKH, FY, FH   float64
	HasLatency         bool
	LatencyX, LatencyY float64
}

// chart is successes, failures and mean latency per hour over the last ChartHours hours.
type chart struct {
	Buckets    []bucket
	OK, Failed int
	MaxCount   int
	MaxMs      int64
	// Latency is the polyline of the mean latencies.
	Latency          string
	Width, Height    float64
	PlotRight        float64
	PlotBottom       float64
	LabelY, AxisMidY float64
}

// newChart counts attempts (any order) into hourly buckets ending at now.
func newChart(attempts []*store.Attempt, now time.Time) chart {
	c := chart{Width: chartWidth, Height: chartHeight, PlotRight: plotRight, PlotBottom: plotBottom, LabelY: plotBottom + 18}
	end := now.Truncate(time.Hour).Add(time.Hour)
	start := end.Add(-ChartHours * time.Hour)
	c.Buckets = make([]bucket, ChartHours)
	sums := make([]time.Duration, ChartHours)
	for i := range c.Buckets {
		c.Buckets[i].Start = start.Add(time.Duration(i) * time.Hour)
	}
	for _, a := range attempts {
		if a.StartedAt.Before(start) || !a.StartedAt.Before(end) {
			continue
		}
		i := int(a.StartedAt.Sub(start) / time.Hour)
		if a.Succeeded() {
			c.Buckets[i].OK++
			c.OK++
		} else {
			c.Buckets[i].Failed++
			c.Failed++
		}
		sums[i] += a.Duration
	}
	for i := range c.Buckets {
		b := &c.Buckets[i]
		if n := b.OK + b.Failed; n > 0 {
			b.AvgMs = (sums[i] / time.Duration(n)).Milliseconds()
			b.HasLatency = true
			c.MaxCount = max(c.MaxCount, n)
			c.MaxMs = max(c.MaxMs, b.AvgMs)
		}
	}
	slot := (plotRight - plotLeft) / ChartHours
	var pts []string
	for i := range c.Buckets {
		b := &c.Buckets[i]
		b.X, b.W = plotLeft+float64(i)*slot+1, slot-2
		if c.MaxCount > 0 {
			scale := (plotBottom - plotTop) / float64(c.MaxCount)
			b.OKH = float64(b.OK) * scale
			b.OKY = plotBottom - b.OKH
			b.FH = float64(b.Failed) * scale
			b.FY = b.OKY - b.FH
		}
		if b.HasLatency {
			b.LatencyX = b.X + b.W/2
			b.LatencyY = plotBottom
			if c.MaxMs > 0 {
				b.LatencyY = plotBottom - float64(b.AvgMs)/float64(c.MaxMs)*(plotBottom-plotTop)
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", b.LatencyX, b.LatencyY))
		}
	}
	c.Latency = strings.Join(pts, " ")
	return c
}
