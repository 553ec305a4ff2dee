// Package plumbing is the process plumbing that the ingress, the normalizer and the dispatcher
// share: safe kafka-go constructors (kafkaio), zap set-up and masking (logging), the ops server
// with /healthz, /readyz and /metrics (ops), typed environment configuration (envconfig), and the
// gate that points integration tests at the real Kafka and Redis (testenv). One safe constructor
// beats three copies that can each forget RequireAll.
package plumbing
