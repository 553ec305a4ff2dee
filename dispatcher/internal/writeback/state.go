package writeback

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is the last distribution status Dangdang accepted for an order, the occurred_at of the
// event it came from, and Dangdang's answer to it (so that a replay can record the real answer).
type State struct {
	Status     int
	OccurredAt time.Time
	Code       string // orderOperCode of the acceptance; "" in states saved by older versions
	Message    string // orderOperation
}

// Store keeps the last state sent per order, so the transition rules hold across restarts and
// instances.
type Store interface {
	Load(ctx context.Context, shop string, ids []string) (map[string]State, error)
	// Save records states, each only if it is not older than the one stored (compare-and-set on
	// occurred_at): a stored state never moves backwards.
	Save(ctx context.Context, shop string, states map[string]State) error
}

// RedisStore keeps one small string key per order, "<prefix>dd:{<shop>:<order id>}" =
// "<status>:<occurred_at unix ms>:<orderOperCode>:<orderOperation>", expiring after TTL. The hash
// tag is the whole (shop, order) pair, so a shop's orders spread over a Redis Cluster and every
// command touches one key: a GET, or the compare-and-set script, pipelined. Keys of the previous
// format ("<prefix>dd:{<shop>}:<order id>" = "<status>:<ms>") are still read when the new key is
// missing, until they expire.
type RedisStore struct {
	C      redis.UniversalClient
	Prefix string
	TTL    time.Duration
}

func (s *RedisStore) key(shop, id string) string    { return s.Prefix + "dd:{" + shop + ":" + id + "}" }
func (s *RedisStore) oldKey(shop, id string) string { return s.Prefix + "dd:{" + shop + "}:" + id }

// Load returns the known states of ids.
func (s *RedisStore) Load(ctx context.Context, shop string, ids []string) (map[string]State, error) {
	out := make(map[string]State, len(ids))
	missing, err := s.get(ctx, ids, func(id string) string { return s.key(shop, id) }, out)
	if err != nil || len(missing) == 0 {
		return out, err
	}
	_, err = s.get(ctx, missing, func(id string) string { return s.oldKey(shop, id) }, out)
	return out, err
}

// get reads the keys of ids into out and returns the ids that have none.
func (s *RedisStore) get(ctx context.Context, ids []string, key func(string) string, out map[string]State) ([]string, error) {
	pipe := s.C.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Get(ctx, key(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("redis load dangdang state: %w", err)
	}
	var missing []string
	for i, c := range cmds {
		v, err := c.Result()
		if err == redis.Nil {
			missing = append(missing, ids[i])
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis load dangdang state: %w", err)
		}
		if st, ok := parseState(v); ok {
			out[ids[i]] = st
		} // unreadable: treat as unknown, Dangdang's own rules still apply
	}
	return missing, nil
}

func parseState(v string) (State, bool) {
	f := strings.SplitN(v, ":", 4)
	if len(f) < 2 {
		return State{}, false
	}
	status, err1 := strconv.Atoi(f[0])
	msec, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return State{}, false
	}
	st := State{Status: status, OccurredAt: time.UnixMilli(msec).UTC()}
	if len(f) == 4 {
		st.Code, st.Message = f[2], f[3]
	}
	return st, true
}

func formatState(st State) string {
	return strconv.Itoa(st.Status) + ":" + strconv.FormatInt(st.OccurredAt.UnixMilli(), 10) + ":" + st.Code + ":" + st.Message
}

// saveScript sets KEYS[1] to ARGV[1] (expiring in ARGV[3] ms) unless the stored state's
// occurred_at (the number after the first colon) is later than ARGV[2].
var saveScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ms = tonumber(string.match(cur, '^%-?%d+:(%-?%d+)'))
  if ms and ms > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`)

// Save records states with compare-and-set on occurred_at, one script call per key.
func (s *RedisStore) Save(ctx context.Context, shop string, states map[string]State) error {
	pipe := s.C.Pipeline()
	for id, st := range states {
		saveScript.Eval(ctx, pipe, []string{s.key(shop, id)}, formatState(st), st.OccurredAt.UnixMilli(), s.TTL.Milliseconds())
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

// Replayed reports whether next is the very transition whose acceptance last records (same
// status, same occurred_at to the millisecond, with Dangdang's answer): a replay after a crash
// between saving the state and recording the result. Its result is recorded again with the
// original answer instead of "skipped / already_sent", so the audit has no gap.
func Replayed(last State, known bool, next State) bool {
	return known && last.Code != "" && last.Status == next.Status && last.OccurredAt.UnixMilli() == next.OccurredAt.UnixMilli()
}
