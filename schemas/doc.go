// Package schemas holds the wire contracts of the order-status pipeline: the raw callback
// envelope on callbacks.raw.v1, the unified status event on orders.status.v1 and the topics
// derived from it, the dead-letter headers, and the vocabulary (platforms, kinds, statuses).
//
// It imports nothing but the standard library so that downstream teams can depend on it alone.
// The Go types, the JSON Schemas beside them and the golden examples under testdata/ agree; a
// test proves it. New optional fields may be added within v1; anything else is a v2 topic.
package schemas
