package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/retry"
)

// write writes msgs in order until all were acknowledged. After a partial failure
// (kafka.WriteErrors) it re-sends, in order, every record of a key from that key's first failed
// record on, including the ones after it that succeeded: re-sending only the failed ones could
// land an older event of an order after a newer one, and a key is a partition. A writer that
// reports one error for the call (the service's kafkaio.Producer, which returns only once every
// record has an outcome) gets all of msgs again, in order. The duplicates this makes have the
// same event_id and bytes, as at-least-once allows.
func (cs *Consumer) write(ctx context.Context, w Writer, what string, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	left := msgs
	return cs.retry(ctx, CheckKafka, what, func(ctx context.Context) error {
		err := w.WriteMessages(ctx, left...)
		var we kafka.WriteErrors
		if errors.As(err, &we) && len(we) == len(left) {
			left = resendFromFirstFailure(left, we)
		}
		return err
	})
}

// resendFromFirstFailure returns, in order, the records of msgs whose key had a failure at or
// before them.
func resendFromFirstFailure(msgs []kafka.Message, errs kafka.WriteErrors) []kafka.Message {
	failedKey := map[string]bool{}
	var rest []kafka.Message
	for i, m := range msgs {
		if errs[i] != nil {
			failedKey[string(m.Key)] = true
		}
		if failedKey[string(m.Key)] {
			rest = append(rest, m)
		}
	}
	return rest
}

// commit commits the batch's offsets, with at most CommitAttempts attempts: an offset left
// uncommitted only causes a replay, which dedup absorbs.
func (cs *Consumer) commit(ctx context.Context, batch []kafka.Message) (bool, error) {
	c := &cs.c
	b := cs.policy.New()
	var err error
	for attempt := 1; ; attempt++ {
		if err = c.Reader.CommitMessages(ctx, batch...); err == nil {
			cs.progress.succeeded("commit")
			cs.c.Ready.Set(CheckLoop, cs.progress.err())
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		cs.failed(CheckKafka, "commit", err)
		if attempt == c.CommitAttempts {
			break
		}
		if serr := retry.Sleep(ctx, b.Next()); serr != nil {
			return false, serr
		}
	}
	c.Log.Warn("commit failed, the batch will be replayed and deduplicated", zap.Int("records", len(batch)), zap.Error(err))
	return false, nil
}

// retry runs op with the retry policy until it succeeds or ctx ends, reporting each failure.
func (cs *Consumer) retry(ctx context.Context, dep, action string, op func(context.Context) error) error {
	err := retry.Do(ctx, cs.policy, op, func(err error, wait time.Duration) {
		cs.failed(dep, action, err)
		cs.c.Log.Warn("dependency failed, backing off", zap.String("dependency", dep), zap.String("action", action),
			zap.Duration("delay", wait), zap.Error(err))
	})
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	cs.progress.succeeded(action)
	cs.c.Ready.Set(CheckLoop, cs.progress.err())
	return nil
}

// failed reports a failed call of the loop: metrics and readiness.
func (cs *Consumer) failed(dep, action string, err error) {
	cs.c.Metrics.Retries.WithLabelValues(dep).Inc()
	cs.progress.failed(action, fmt.Errorf("%s: %w", dep, err))
	cs.c.Ready.Set(CheckLoop, cs.progress.err())
}
