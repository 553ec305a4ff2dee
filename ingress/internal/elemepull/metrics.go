package elemepull

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the poller's Prometheus series; the app label is bounded by configuration.
type Metrics struct {
	pulled        *prometheus.CounterVec
	confirmed     *prometheus.CounterVec
	apiFailures   *prometheus.CounterVec
	kafkaFailures *prometheus.CounterVec
	unreadable    *prometheus.CounterVec
	rounds        *prometheus.CounterVec
	lastSuccess   *prometheus.GaugeVec
	leader        *prometheus.GaugeVec
}

// NewMetrics registers the poller's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		pulled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elemepull_messages_pulled_total",
			Help: "Failed pushes pulled from Eleme and written to the raw topic (acknowledged by Kafka), by app."}, []string{"app"}),
		confirmed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elemepull_messages_confirmed_total",
			Help: "Pulled messages confirmed to Eleme (after their write), by app."}, []string{"app"}),
		apiFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elemepull_api_failures_total",
			Help: "Failed OpenAPI calls, by app, action (getPushFailMsg, confirmPullMsg) and code (Eleme's error code, timeout, http_5xx, http_4xx, network, bad_result, not_confirmed)."}, []string{"app", "action", "code"}),
		kafkaFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elemepull_kafka_write_failures_total",
			Help: "Pages whose write to the raw topic failed (nothing of them was confirmed), by app."}, []string{"app"}),
		unreadable: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elemepull_unreadable_messages_total",
			Help: "Pulled messages that could not be rebuilt into a push body; left unconfirmed at Eleme, by app."}, []string{"app"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elemepull_rounds_total",
			Help: "Poll rounds, by app and outcome (ok, api_error, kafka_error, confirm_error, unreadable)."}, []string{"app", "outcome"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elemepull_last_success_timestamp_seconds",
			Help: "Unix time of the app's last successful round (every held message written and confirmed); 0 before the first."}, []string{"app"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elemepull_leader",
			Help: "1 while this instance holds the app's lease and polls it, else 0."}, []string{"app"}),
	}
	reg.MustRegister(m.pulled, m.confirmed, m.apiFailures, m.kafkaFailures, m.unreadable, m.rounds, m.lastSuccess, m.leader)
	return m
}

func (m *Metrics) init(app string) {
	m.pulled.WithLabelValues(app)
	m.confirmed.WithLabelValues(app)
	m.kafkaFailures.WithLabelValues(app)
	m.unreadable.WithLabelValues(app)
	m.lastSuccess.WithLabelValues(app)
	m.leader.WithLabelValues(app)
}
