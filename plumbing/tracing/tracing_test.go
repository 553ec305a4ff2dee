package tracing

import (
	"context"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// With exporting off, the trace context still crosses a Kafka hop unchanged.
func TestPropagatesThroughKafkaHeadersWithExportOff(t *testing.T) {
	tr, err := New(context.Background(), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	in := kafka.Message{Headers: []kafka.Header{{Key: "traceparent", Value: []byte(parent)}}}
	ctx := tr.FromMessage(context.Background(), in)
	sc := trace.SpanContextFromContext(ctx)
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() {
		t.Fatalf("extracted %v", sc)
	}
	var out []kafka.Header
	tr.ToHeaders(ctx, &out)
	if got := (HeaderCarrier{Headers: &out}).Get("traceparent"); got != parent {
		t.Errorf("traceparent out = %q, want %q", got, parent)
	}
}

// With an exporter, a span started from the incoming context is a child of the same trace, and
// its id replaces the parent's in the outgoing headers.
func TestSpanContinuesTheTrace(t *testing.T) {
	tr, err := New(context.Background(), "test", "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	in := kafka.Message{Headers: []kafka.Header{{Key: "traceparent", Value: []byte(parent)}}}
	ctx, span := tr.Tracer.Start(tr.FromMessage(context.Background(), in), "hop")
	out := []kafka.Header{{Key: "traceparent", Value: []byte("stale")}}
	tr.ToHeaders(ctx, &out)
	span.End()
	got := (HeaderCarrier{Headers: &out}).Get("traceparent")
	if len(out) != 1 || got[:35] != parent[:35] || got == parent {
		t.Errorf("traceparent out = %q (headers %d): want same trace id, new span id", got, len(out))
	}
}

func TestUnknownExporterIsAnError(t *testing.T) {
	if _, err := New(context.Background(), "test", "zipkin"); err == nil {
		t.Error("want an error for an unknown exporter")
	}
}
