// Package plumbing is the process plumbing that the ingress, the normalizer and the dispatcher
// share: the one Kafka connection and its safe kafka-go constructors (kafkaio: TLS, SASL, RequireAll,
// replicated topics), the one Redis client (redisio: single node, Sentinel, Cluster, ACL, TLS), the
// configuration every service embeds (service), zap set-up and masking (logging), the ops server
// with /healthz, /readyz and /metrics (ops), typed environment configuration with secrets from
// files (envconfig), one retry policy (retry), and the gate that points integration tests at the
// real Kafka and Redis (testenv); the fault injection, call log and admin routes the partner
// sandboxes share (sandbox). One safe constructor
// beats three copies that can each forget RequireAll.
package plumbing
