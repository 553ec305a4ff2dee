// Package tracing carries W3C trace context (traceparent, tracestate) from the ingress's HTTP
// request through the Kafka headers of every hop to the dispatcher's Dangdang call, with
// OpenTelemetry. Exporting spans is off by default: with OTEL_TRACES_EXPORTER unset or "none" the
// context is still propagated (a traceparent sent by a platform or a gateway reaches the end), but
// no span is recorded or sent. "otlp" exports over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT and the
// other standard OTEL_* variables apply); "stdout" writes spans to standard error for debugging.
package tracing

import (
	"context"
	"fmt"
	"os"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is one service's tracer and propagator. It is injected, never global.
type Tracing struct {
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// New builds the tracing of service from exporter ("", "none", "otlp" or "stdout").
func New(ctx context.Context, service, exporter string) (*Tracing, error) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	var exp sdktrace.SpanExporter
	var err error
	switch exporter {
	case "", "none":
		return &Tracing{Tracer: noop.NewTracerProvider().Tracer(service), Propagator: prop, shutdown: func(context.Context) error { return nil }}, nil
	case "otlp":
		exp, err = otlptracehttp.New(ctx)
	case "stdout":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stderr))
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: want none, otlp or stdout", exporter)
	}
	if err != nil {
		return nil, fmt.Errorf("trace exporter %s: %w", exporter, err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	return &Tracing{Tracer: tp.Tracer("github.com/orderpipe/pipeline/" + service), Propagator: prop, shutdown: tp.Shutdown}, nil
}

// Shutdown flushes pending spans.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }

// FromMessage returns ctx with the trace context carried in m's headers.
func (t *Tracing) FromMessage(ctx context.Context, m kafka.Message) context.Context {
	return t.Propagator.Extract(ctx, HeaderCarrier{Headers: &m.Headers})
}

// ToHeaders writes ctx's trace context into headers (replacing any traceparent there).
func (t *Tracing) ToHeaders(ctx context.Context, headers *[]kafka.Header) {
	t.Propagator.Inject(ctx, HeaderCarrier{Headers: headers})
}

// HeaderCarrier adapts Kafka record headers to OpenTelemetry's TextMapCarrier.
type HeaderCarrier struct{ Headers *[]kafka.Header }

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	for _, h := range *c.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces key's value, or adds it.
func (c HeaderCarrier) Set(key, value string) {
	for i, h := range *c.Headers {
		if h.Key == key {
			(*c.Headers)[i].Value = []byte(value)
			return
		}
	}
	*c.Headers = append(*c.Headers, kafka.Header{Key: key, Value: []byte(value)})
}

// Keys lists the header keys.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(*c.Headers))
	for _, h := range *c.Headers {
		keys = append(keys, h.Key)
	}
	return keys
}
