package consumer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the normalizer's Prometheus metrics. Labels are bounded: platform is dianwoda,
// eleme or unknown; kind and reason come from fixed vocabularies. The consumer group's lag is
// exported from the broker's side by kafkaio.Lag (main), not from here.
type Metrics struct {
	Consumed     *prometheus.CounterVec
	Emitted      *prometheus.CounterVec
	Deduplicated *prometheus.CounterVec
	Guarded      *prometheus.CounterVec
	DeadLettered *prometheus.CounterVec
	Skipped      *prometheus.CounterVec
	Retries      *prometheus.CounterVec
	Committed    prometheus.Counter
	Latency      prometheus.Histogram
	BatchSize    prometheus.Histogram
	RedisTrips   prometheus.Counter
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "normalizer_records_consumed_total",
			Help: "Raw callback records fetched from the input topic."}, []string{"platform"}),
		Emitted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "normalizer_events_emitted_total",
			Help: "Unified events acknowledged by Kafka on the status topic (stale ones included)."}, []string{"platform", "kind"}),
		Deduplicated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "normalizer_events_deduplicated_total",
			Help: "Events dropped because the same event_id was already emitted."}, []string{"platform"}),
		Guarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "normalizer_events_guarded_total",
			Help: "Events the order guard refused as current state, emitted with stale=true."}, []string{"platform", "kind"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "normalizer_records_dead_lettered_total",
			Help: "Records written to the dead-letter topic, by reason."}, []string{"platform", "reason"}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "normalizer_records_skipped_total",
			Help: "Valid records that carry no order event (shop, auth and other messages)."}, []string{"platform", "reason"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "normalizer_dependency_retries_total",
			Help: "Backoff retries after a Kafka or Redis failure."}, []string{"dependency"}),
		Committed: prometheus.NewCounter(prometheus.CounterOpts{Name: "normalizer_records_committed_total",
			Help: "Records whose offsets were committed after their outputs were acknowledged."}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "normalizer_processing_seconds",
			Help:    "Per record: from fetch to its output acknowledged and its offset committed.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "normalizer_batch_records",
			Help: "Records per processed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		RedisTrips: prometheus.NewCounter(prometheus.CounterOpts{Name: "normalizer_redis_roundtrips_total",
			Help: "Redis round trips (one pipeline each) made by the consumer loop."}),
	}
	reg.MustRegister(m.Consumed, m.Emitted, m.Deduplicated, m.Guarded, m.DeadLettered, m.Skipped, m.Retries, m.Committed,
		m.Latency, m.BatchSize, m.RedisTrips)
	return m
}
