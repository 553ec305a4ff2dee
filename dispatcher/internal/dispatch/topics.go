package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/retry"
)

// ErrTopics is returned by CheckTopics when topics the dispatcher reads or writes are missing or
// denied: the service must not start, or it would retry their writes for ever.
var ErrTopics = errors.New("topics not usable")

// CheckTopics asks the cluster for the metadata of topics. While no broker answers it waits with
// backoff (readiness "kafka" false meanwhile); once one does, any topic that does not exist or is
// not authorized is an error naming every such topic. It returns ctx's error if ctx ends first.
func CheckTopics(ctx context.Context, client *kafka.Client, topics []string, ready *ops.Readiness, log *zap.Logger) error {
	sort.Strings(topics)
	var bad []string
	err := retry.Do(ctx, retry.Policy{Min: 200 * time.Millisecond, Max: 10 * time.Second}, func(ctx context.Context) error {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		md, err := client.Metadata(mctx, &kafka.MetadataRequest{Topics: topics})
		if err != nil {
			return fmt.Errorf("kafka metadata: %w", err)
		}
		bad = bad[:0]
		seen := map[string]bool{}
		for _, t := range md.Topics {
			seen[t.Name] = true
			if t.Error != nil {
				bad = append(bad, fmt.Sprintf("%s (%v)", t.Name, t.Error))
			}
		}
		for _, t := range topics {
			if !seen[t] {
				bad = append(bad, t+" (not in the cluster's answer)")
			}
		}
		return nil
	}, func(err error, _ time.Duration) {
		ready.Set("kafka", err)
		log.Warn("topic check failed, retrying", zap.Error(err))
	})
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%w: %s", ErrTopics, strings.Join(bad, ", "))
	}
	return nil
}
