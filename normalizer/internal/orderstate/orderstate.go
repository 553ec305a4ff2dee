// Package orderstate keeps, per order, the dedup marks of its events and the order guard's state
// in Redis, and decides for a batch of events at once whether each one is new, a replay of an
// event that may not have been emitted, or a duplicate, and whether it is stale.
//
// One Redis hash per order holds everything, under the key
//
//	<prefix>{<platform>:<order_id>}
//
// so that the one script touching it runs on one Cluster slot (the braces are the hash tag), and
// so that the memory an order costs is one key plus a few bytes per distinct transition, however
// often a platform repeats itself. Fields:
//
//	"g" + kind[0]        guard: "<occurred_at ms>,<terminal 0|1>" of the latest applied event of that kind
//	"e" + 8 id bytes     dedup: "p<stale>" claimed, not yet known to be emitted;
//	                            "d<stale>" emitted and acknowledged by Kafka
//
// Claim (a Lua script, atomic per order) records the guard decision with the claim, and Confirm
// flips "p" to "d" after Kafka acknowledged the event. A claimed but unconfirmed event is NOT a
// duplicate: after a crash its replay is emitted again, with the stale flag decided the first
// time, so one event_id never stands for two different records. The whole hash expires TTL after
// its last claim (the dedup window).
package orderstate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Decision says what to do with a claimed event.
type Decision int

const (
	// Fresh: first sight of the event; emit it.
	Fresh Decision = iota + 1
	// Replay: claimed before but never confirmed (a crash or a failed write); emit it again with
	// the stale flag decided then.
	Replay
	// Duplicate: already emitted and acknowledged; drop it.
	Duplicate
)

func (d Decision) String() string {
	switch d {
	case Fresh:
		return "fresh"
	case Replay:
		return "replay"
	case Duplicate:
		return "duplicate"
	}
	return "invalid"
}

// Event is what the store needs to know of one unified event.
type Event struct {
	// Key is the record key "platform:order_id".
	Key        string
	EventID    string
	Kind       string
	OccurredMS int64
	Terminal   bool
}

// Result is the decision for one Event.
type Result struct {
	Decision Decision
	// Stale is the order guard's verdict: the event is older than the latest applied event of its
	// kind, or non-terminal after a terminal one. Stale events are still emitted, marked.
	Stale bool
}

// claimScript: KEYS[1] order hash; ARGV: dedup field, guard field, occurred ms, terminal (0|1),
// ttl ms. Returns "d0|d1" (duplicate), "p0|p1" (claimed earlier, unconfirmed) or "n0|n1" (new).
var claimScript = redis.NewScript(`
local k = KEYS[1]
local d = redis.call('HGET', k, ARGV[1])
if d then return d end
local at = tonumber(ARGV[3])
local term = ARGV[4]
local stale = '0'
local g = redis.call('HGET', k, ARGV[2])
if g then
  local sep = string.find(g, ',', 1, true)
  local last = tonumber(string.sub(g, 1, sep - 1))
  if at < last or (string.sub(g, sep + 1) == '1' and term == '0') then stale = '1' end
end
if stale == '0' then redis.call('HSET', k, ARGV[2], ARGV[3] .. ',' .. term) end
redis.call('HSET', k, ARGV[1], 'p' .. stale)
redis.call('PEXPIRE', k, ARGV[5])
return 'n' .. stale
`)

// confirmScript: KEYS[1] order hash; ARGV[1] dedup field. Flips a claim to done; never creates.
var confirmScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, 1) == 'p' then
  redis.call('HSET', KEYS[1], ARGV[1], 'd' .. string.sub(v, 2))
  return 1
end
return 0
`)

// Store decides and remembers, in Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	ttlMS  string
	trips  atomic.Int64
}

// New returns a Store keeping keys under prefix for ttl (the dedup window).
func New(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Store {
	return &Store{rdb: rdb, prefix: prefix, ttlMS: strconv.FormatInt(ttl.Milliseconds(), 10)}
}

// RoundTrips returns how many Redis round trips the store has made.
func (s *Store) RoundTrips() int64 { return s.trips.Load() }

// OrderKey is the Redis key of an order's state.
func (s *Store) OrderKey(recordKey string) string { return s.prefix + "{" + recordKey + "}" }

// dedupField is "e" plus the first 8 bytes of the event id (a UUID); within one order's few
// events a 64-bit prefix does not collide.
func dedupField(eventID string) string {
	h := strings.ReplaceAll(eventID, "-", "")
	if len(h) >= 16 {
		var b [8]byte
		if _, err := hex.Decode(b[:], []byte(h[:16])); err == nil {
			return "e" + string(b[:])
		}
	}
	return "e" + eventID
}

func guardField(kind string) string {
	if kind == "" {
		return "g?"
	}
	return "g" + kind[:1]
}

// Claim decides for every event, in order, in one pipelined round trip. Events of one order
// are decided in the order given, each seeing the ones before it.
func (s *Store) Claim(ctx context.Context, evs []Event) ([]Result, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	run := func(useSha bool) ([]redis.Cmder, error) {
		pipe := s.rdb.Pipeline()
		for _, e := range evs {
			term := "0"
			if e.Terminal {
				term = "1"
			}
			keys := []string{s.OrderKey(e.Key)}
			args := []any{dedupField(e.EventID), guardField(e.Kind), strconv.FormatInt(e.OccurredMS, 10), term, s.ttlMS}
			if useSha {
				claimScript.EvalSha(ctx, pipe, keys, args...)
			} else {
				claimScript.Eval(ctx, pipe, keys, args...)
			}
		}
		s.trips.Add(1)
		return pipe.Exec(ctx)
	}
	cmds, err := run(true)
	if err != nil && isNoScript(err) {
		cmds, err = run(false) // EVAL loads the script into the script cache as a side effect
	}
	if err != nil {
		return nil, fmt.Errorf("redis claim: %w", err)
	}
	out := make([]Result, len(evs))
	for i, c := range cmds {
		v, err := c.(*redis.Cmd).Text()
		if err != nil || len(v) != 2 {
			return nil, fmt.Errorf("redis claim: unexpected reply %q: %v", v, err)
		}
		r := Result{Stale: v[1] == '1'}
		switch v[0] {
		case 'n':
			r.Decision = Fresh
		case 'p':
			r.Decision = Replay
		case 'd':
			r.Decision = Duplicate
		default:
			return nil, fmt.Errorf("redis claim: unexpected reply %q", v)
		}
		out[i] = r
	}
	return out, nil
}

// Confirm marks the events as emitted, in one pipelined round trip. Call it only after Kafka
// acknowledged them.
func (s *Store) Confirm(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	run := func(useSha bool) error {
		pipe := s.rdb.Pipeline()
		for _, e := range evs {
			keys := []string{s.OrderKey(e.Key)}
			if useSha {
				confirmScript.EvalSha(ctx, pipe, keys, dedupField(e.EventID))
			} else {
				confirmScript.Eval(ctx, pipe, keys, dedupField(e.EventID))
			}
		}
		s.trips.Add(1)
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run(true)
	if err != nil && isNoScript(err) {
		err = run(false)
	}
	if err != nil {
		return fmt.Errorf("redis confirm: %w", err)
	}
	return nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

func isNoScript(err error) bool {
	var re redis.Error
	if errors.As(err, &re) {
		return strings.HasPrefix(re.Error(), "NOSCRIPT")
	}
	return strings.Contains(err.Error(), "NOSCRIPT")
}
