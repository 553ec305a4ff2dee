// Command dispatcher fans unified status events out to downstream topics by a routing table and
// writes delivery results back to Dangdang in full batches (≤100 orders per call, per shop),
// committing an event's offset only once its outcome is final and recorded at every destination.
// See README.md for the guarantees, the routing table, the shops and the configuration.
package main
