package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// that several servers (tests) do not share state.
type metrics struct {
	reg             *prometheus.Registry
	requests        *prometheus.CounterVec
	promptTokens    prometheus.Counter
	generatedTokens prometheus.Counter
	cancelled       prometheus.Counter
	tokensPerSecond prometheus.Gauge
	batchRows       prometheus.Histogram
}

// newMetrics registers the metrics; queueDepth, active and kvUsed are read
// when scraped.
func newMetrics(queueDepth, active func() float64, kvUsed func() float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llamago_requests_total", Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llamago_prompt_tokens_total", Help: "Prompt tokens of the generation requests admitted.",
		}),
		generatedTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llamago_generated_tokens_total", Help: "Tokens generated.",
		}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llamago_cancelled_requests_total", Help: "Generations ended because the client went away.",
		}),
		tokensPerSecond: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llamago_tokens_per_second", Help: "Tokens generated per second by the last decode step, all sequences together.",
		}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llamago_batch_rows", Help: "Rows per forward pass.", Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
	}
	m.reg.MustRegister(m.requests, m.promptTokens, m.generatedTokens, m.cancelled, m.tokensPerSecond, m.batchRows,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "llamago_queue_depth", Help: "Requests waiting for a slot."}, queueDepth),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "llamago_active_sequences", Help: "Sequences holding a KV cache slot."}, active),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "llamago_kv_cache_usage_ratio", Help: "Fraction of the KV cache positions in use."}, kvUsed),
	)
	return m
}

// stepDone records one forward pass of rows rows that sampled generated
// tokens in d.
func (m *metrics) stepDone(rows, generated int, d time.Duration) {
	m.batchRows.Observe(float64(rows))
	if generated > 0 && d > 0 {
		m.tokensPerSecond.Set(float64(generated) / d.Seconds())
	}
}
