package replay

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/retry"
)

// TestListOffsetsRetriesTemporaryErrors: a listing of offsets that Kafka answers with a
// temporary error (Not Leader For Partition: a topic just created or a leader moving, which
// failed TestReplayRawByTimeRangeAndOrder once in make test) or that fails on the network is
// asked again; any other Kafka error ends the replay at once.
func TestListOffsetsRetriesTemporaryErrors(t *testing.T) {
	for _, tc := range []struct {
		err   error
		again bool
	}{
		{kafka.NotLeaderForPartition, true},
		{kafka.LeaderNotAvailable, true},
		{kafka.RequestTimedOut, true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{kafka.TopicAuthorizationFailed, false},
		{kafka.UnknownTopicOrPartition, true}, // kafka-go counts it temporary: a topic being created
		{kafka.InvalidTopic, false},
	} {
		err := unlessTemporary(fmt.Errorf("list offsets of t/0: %w", tc.err))
		var perm *retry.PermanentError
		if got := !errors.As(err, &perm); got != tc.again {
			t.Errorf("%v: asked again %v, want %v", tc.err, got, tc.again)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: the error lost its cause: %v", tc.err, err)
		}
	}
}
