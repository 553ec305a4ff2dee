package writeback

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the write-back (names in the dispatcher README).
type Metrics struct {
	Calls         *prometheus.CounterVec // shop, outcome
	OrdersPerCall prometheus.Histogram
	Flushes       *prometheus.CounterVec // reason: size, window, shutdown, probe
	Retries       *prometheus.CounterVec // shop, reason (orders re-sent)
	Paused        *prometheus.GaugeVec   // shop
	Delay         prometheus.Histogram
	Results       *prometheus.CounterVec // outcome
	Skipped       *prometheus.CounterVec // reason
	Rejected      *prometheus.CounterVec // code
	DeadLettered  prometheus.Counter
	Parked        *prometheus.CounterVec // shop
}

// NewMetrics registers the write-back metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_dangdang_calls_total",
			Help: "Dangdang distristatus.update calls by shop and outcome (ok, partial, rate_limited, expired, http_5xx, http_error, system_error, malformed, timeout, network)."}, []string{"shop", "outcome"}),
		OrdersPerCall: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dispatcher_dangdang_orders_per_call",
			Help: "Orders carried by one Dangdang call.", Buckets: []float64{1, 5, 10, 25, 50, 75, 90, 95, 99, 100}}),
		Flushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_dangdang_flushes_total",
			Help: "Batches started, by reason (size, window, shutdown, probe)."}, []string{"reason"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_dangdang_retries_total",
			Help: "Orders sent again after a transient failure, by shop and reason."}, []string{"shop", "reason"}),
		Paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dispatcher_dangdang_shop_paused",
			Help: "1 while the shop is paused by error 176 (subscription expired); alert on it."}, []string{"shop"}),
		Delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dispatcher_dangdang_delay_seconds",
			Help: "From the event's occurred_at to Dangdang's acceptance.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
		Results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_dangdang_results_total",
			Help: "Per-order outcomes recorded in dangdang.results.v1."}, []string{"outcome"}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_dangdang_skipped_total",
			Help: "Orders not sent, by reason (stale, already_sent, older_than_sent, failed_to_delivered, delivered_to_failed_not_allowed)."}, []string{"reason"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_dangdang_rejected_total",
			Help: "Orders Dangdang refused for good, by orderOperCode."}, []string{"code"}),
		DeadLettered: prometheus.NewCounter(prometheus.CounterOpts{Name: "dispatcher_dangdang_dead_lettered_total",
			Help: "Orders that exhausted their attempts and went to the DLQ (dlq_reason dangdang_retries_exhausted)."}),
		Parked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_dangdang_parked_total",
			Help: "Orders parked in the DLQ (dlq_reason dangdang_parked) after waiting past the bound; replay them once the shop is back."}, []string{"shop"}),
	}
	reg.MustRegister(m.Calls, m.OrdersPerCall, m.Flushes, m.Retries, m.Paused, m.Delay, m.Results, m.Skipped, m.Rejected, m.DeadLettered, m.Parked)
	return m
}
