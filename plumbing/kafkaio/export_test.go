package kafkaio

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// TransportOf returns the Transport a Producer or FetchReader made for itself.
func TransportOf(v any) *kafka.Transport {
	switch v := v.(type) {
	case *Producer:
		return v.transport
	case *FetchReader:
		return v.transport
	}
	return nil
}

// LingerOf returns the Linger a Producer runs with.
func LingerOf(p *Producer) time.Duration { return p.cfg.Linger }

// BrokersIn is brokersIn.
var BrokersIn = brokersIn
