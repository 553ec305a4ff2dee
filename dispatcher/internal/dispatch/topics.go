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

// newTopicGrace is how long a topic that the cluster does not know (yet) is asked about again
// before it counts as missing. A topic the service has just created can look unknown for a
// moment: kafka-go's Transport answers metadata requests from its view of the cluster, refreshed
// every MetadataTTL (1 s), and a probe that asked before the topic existed keeps that answer
// until then; on a cluster of several brokers one learns of a new topic shortly after another.
var newTopicGrace = 10 * time.Second

// CheckTopics asks the cluster for the metadata of topics. While no broker answers it waits with
// backoff (readiness "kafka" false meanwhile); once one does, any topic that does not exist or is
// not authorized is an error naming every such topic. A topic that does not exist is asked about
// again for newTopicGrace first (it may have just been created); one that is denied counts at
// once. It returns ctx's error if ctx ends first.
func CheckTopics(ctx context.Context, client *kafka.Client, topics []string, ready *ops.Readiness, log *zap.Logger) error {
	sort.Strings(topics)
	deadline := time.Now().Add(newTopicGrace)
	waits := retry.Policy{Min: 100 * time.Millisecond, Max: time.Second}.New()
	for {
		bad, unknownOnly, err := checkTopicsOnce(ctx, client, topics, ready, log)
		if err != nil {
			return err
		}
		if len(bad) == 0 {
			return nil
		}
		wait := waits.Next()
		if !unknownOnly || time.Now().Add(wait).After(deadline) {
			sort.Strings(bad)
			return fmt.Errorf("%w: %s", ErrTopics, strings.Join(bad, ", "))
		}
		log.Info("topics not known to the cluster yet, asking again", zap.Strings("topics", bad), zap.Duration("in", wait))
		if err := retry.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// checkTopicsOnce is one metadata answer: the topics that are not usable, whether every one of
// them is only unknown (not denied), or ctx's error.
func checkTopicsOnce(ctx context.Context, client *kafka.Client, topics []string, ready *ops.Readiness, log *zap.Logger) (bad []string, unknownOnly bool, _ error) {
	unknownOnly = true
	err := retry.Do(ctx, retry.Policy{Min: 200 * time.Millisecond, Max: 10 * time.Second}, func(ctx context.Context) error {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		md, err := client.Metadata(mctx, &kafka.MetadataRequest{Topics: topics})
		if err != nil {
			return fmt.Errorf("kafka metadata: %w", err)
		}
		bad, unknownOnly = bad[:0], true
		seen := map[string]bool{}
		for _, t := range md.Topics {
			seen[t.Name] = true
			if t.Error != nil {
				bad = append(bad, fmt.Sprintf("%s (%v)", t.Name, t.Error))
				if !errors.Is(t.Error, kafka.UnknownTopicOrPartition) && !errors.Is(t.Error, kafka.LeaderNotAvailable) {
					unknownOnly = false
				}
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
	return bad, unknownOnly, err
}
