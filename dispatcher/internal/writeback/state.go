package writeback

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is the last distribution status Dangdang accepted for an order, and the occurred_at of
// the event it came from.
type State struct {
	Status     int
	OccurredAt time.Time
}

// Store keeps the last state sent per order, so the transition rules hold across restarts.
type Store interface {
	Load(ctx context.Context, shop string, ids []string) (map[string]State, error)
	Save(ctx context.Context, shop string, states map[string]State) error
}

// RedisStore keeps one small string key per order: "<prefix>dd:{<shop>}:<order id>" =
// "<status>:<occurred_at unix ms>", expiring after TTL. Keys are read and written with pipelines
// of single-key commands, so they work unchanged on Redis Cluster.
type RedisStore struct {
	C      redis.UniversalClient
	Prefix string
	TTL    time.Duration
}

func (s *RedisStore) key(shop, id string) string { return s.Prefix + "dd:{" + shop + "}:" + id }

// Load returns the known states of ids.
func (s *RedisStore) Load(ctx context.Context, shop string, ids []string) (map[string]State, error) {
	pipe := s.C.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Get(ctx, s.key(shop, id))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("redis load dangdang state: %w", err)
	}
	out := make(map[string]State, len(ids))
	for i, c := range cmds {
		v, err := c.Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis load dangdang state: %w", err)
		}
		st, ms, ok := strings.Cut(v, ":")
		status, err1 := strconv.Atoi(st)
		msec, err2 := strconv.ParseInt(ms, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			continue // unreadable: treat as unknown, Dangdang's own rules still apply
		}
		out[ids[i]] = State{Status: status, OccurredAt: time.UnixMilli(msec).UTC()}
	}
	return out, nil
}

// Save records states.
func (s *RedisStore) Save(ctx context.Context, shop string, states map[string]State) error {
	pipe := s.C.Pipeline()
	for id, st := range states {
		pipe.Set(ctx, s.key(shop, id), strconv.Itoa(st.Status)+":"+strconv.FormatInt(st.OccurredAt.UnixMilli(), 10), s.TTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis save dangdang state: %w", err)
	}
	return nil
}

// Skip reasons recorded in dangdang.results.v1.
const (
	SkipStale                  = "stale"
	SkipAlreadySent            = "already_sent"
	SkipOlderThanSent          = "older_than_sent"
	SkipFailedToDelivered      = "failed_to_delivered"
	SkipDeliveredToFailedNotOK = "delivered_to_failed_not_allowed"
)

// Decide returns why next must not be sent given the last state sent, or "" to send it.
// failed → delivered is never sent; delivered → failed only where the shop allows it.
func Decide(last State, known bool, next State, allowSuccessToFailure bool) string {
	switch {
	case !known:
		return ""
	case next.Status == last.Status:
		return SkipAlreadySent
	case next.OccurredAt.Before(last.OccurredAt):
		return SkipOlderThanSent
	case last.Status == 2 && next.Status == 1:
		return SkipFailedToDelivered
	case last.Status == 1 && next.Status == 2 && !allowSuccessToFailure:
		return SkipDeliveredToFailedNotOK
	}
	return ""
}
