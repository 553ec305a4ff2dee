// Package e2e drives the three services together against the real Kafka and Redis: the
// end-to-end tests, the load generator and the system benchmarks.
package e2e
