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
// often a platform repeats itself. Fields (kept small: listpack entries of a few bytes each):
//
//	"h" + kind[0]      guard: occurred_at_ms*16 + rank*2 + terminal(0|1) of the latest applied event
//	                   of that kind (rank: schemas.StatusInfo.Rank, below 8; it breaks a tie of
//	                   occurred_at). "g" + kind[0] (occurred_at_ms*2 + terminal) is the guard of
//	                   an earlier version: a claim reads it as rank 0 and moves it to "h".
//	8 id bytes         dedup: 0|1 claimed (stale 0|1), not yet known to be emitted;
//	                          2|3 emitted and acknowledged by Kafka (stale 0|1)
//
// Claim (a Lua script, atomic per order) records the guard decision with the claim, and Confirm
// turns 0|1 into 2|3 after Kafka acknowledged the event. A claimed but unconfirmed event is NOT a
// duplicate: after a crash or a rebalance its replay is emitted again, with the stale flag decided
// the first time — unless the order guard has moved past it since (a newer event of its kind was
// applied): then the replay is marked stale, because its copy lands after that newer event. Two
// instances replay concurrently around a rebalance (kafka-go's Reader has no revocation hook: the
// old owner finishes its in-flight batches while the new one starts from the committed offset),
// and a copy emitted as not stale there became the order's latest non-stale state. A copy of an
// event_id is therefore the same record, or the same record marked stale. The whole hash expires
// TTL after its last claim (the dedup window).
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
	// Rank is the status's rank within its kind (schemas.StatusRank), 0..7; it decides a tie of
	// OccurredMS (0 never decides one).
	Rank int
}

// Result is the decision for one Event.
type Result struct {
	Decision Decision
	// Stale is the order guard's verdict: the event is older than the latest applied event of its
	// kind, or non-terminal after a terminal one. Stale events are still emitted, marked.
	Stale bool
}

// claimScript: KEYS[1] order hash; ARGV[1] ttl ms; then for each event of the order, in order,
// four: dedup field, guard field, guard value (occurred_ms*16 + rank*2 + terminal), the earlier
// version's guard field. Returns, for each event, the stored state 0..3 of a known event (an
// unconfirmed, not stale claim (0) is first decided again against the guard, and becomes stale
// (1) when the guard has moved past it), or 4+stale for a new one. Numbers stay below 2^53, exact
// in Lua's doubles.
//
// Deciding the events of one order in one call is the same as deciding them one after the other
// (the call is atomic; each event sees the ones before it): the hash is read once (HGETALL of a
// few small fields) and written once, which costs Redis far less than a call per event when
// a batch holds several events of an order (a backlog, a replay).
//
// Stale: older than the guard; or the same time and a lower rank, both ranked; or not terminal
// after a terminal one.
var claimScript = redis.NewScript(`
local k = KEYS[1]
local function isStale(gv, g)
  local ms, gms = math.floor(gv / 16), math.floor(g / 16)
  local r, gr = math.floor(gv / 2) % 8, math.floor(g / 2) % 8
  return ms < gms or (ms == gms and r > 0 and gr > 0 and r < gr) or (g % 2 == 1 and gv % 2 == 0)
end
local h = {}
local all = redis.call('HGETALL', k)
for i = 1, #all, 2 do h[all[i]] = all[i + 1] end
local set, del = {}, {}
local expire = false
local out = {}
for i = 2, #ARGV, 4 do
  local df, gf, gvs, lf = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local gv = tonumber(gvs)
  local d = h[df]
  if d == '0' then
    local g = h[gf]
    if g and isStale(gv, tonumber(g)) then
      h[df] = '1'
      set[#set + 1] = df
      set[#set + 1] = 1
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  elseif d then
    out[#out + 1] = tonumber(d)
  else
    local stale = 0
    local g = h[gf]
    local migrated = false
    if not g then
      local old = h[lf]
      if old then
        old = tonumber(old)
        g = math.floor(old / 2) * 16 + old % 2
        h[lf] = nil
        del[#del + 1] = lf
        migrated = true
      end
    end
    if g then
      g = tonumber(g)
      if isStale(gv, g) then stale = 1 end
    end
    if stale == 0 then
      h[gf] = gvs
      set[#set + 1] = gf
      set[#set + 1] = gvs
    elseif migrated then
      h[gf] = g
      set[#set + 1] = gf
      set[#set + 1] = g
    end
    h[df] = tostring(stale)
    set[#set + 1] = df
    set[#set + 1] = stale
    expire = true
    out[#out + 1] = 4 + stale
  end
end
if #del > 0 then redis.call('HDEL', k, unpack(del)) end
if #set > 0 then redis.call('HSET', k, unpack(set)) end
if expire then redis.call('PEXPIRE', k, ARGV[1]) end
return out
`)

// confirmScript: KEYS[1] order hash; ARGV the dedup fields of its events. Turns each claim (0|1)
// into emitted (2|3); never creates a field or a key.
var confirmScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], unpack(ARGV))
local set = {}
for i = 1, #ARGV do
  if v[i] == '0' or v[i] == '1' then
    set[#set + 1] = ARGV[i]
    set[#set + 1] = tonumber(v[i]) + 2
  end
end
if #set > 0 then redis.call('HSET', KEYS[1], unpack(set)) end
return #set / 2
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

// dedupField is the first 8 bytes of the event id (a UUID), binary; within one order's few
// events a 64-bit prefix does not collide, and 8 bytes never equal a 2-byte guard field.
func dedupField(eventID string) string {
	h := strings.ReplaceAll(eventID, "-", "")
	if len(h) >= 16 {
		var b [8]byte
		if _, err := hex.Decode(b[:], []byte(h[:16])); err == nil {
			return string(b[:])
		}
	}
	return "e" + eventID
}

func guardField(kind string) string {
	if kind == "" {
		return "h?"
	}
	return "h" + kind[:1]
}

// legacyGuardField is guardField of the version before ranks (value occurred_ms*2 + terminal).
func legacyGuardField(kind string) string {
	if kind == "" {
		return "g?"
	}
	return "g" + kind[:1]
}

// guardValue encodes occurred_ms, rank and terminal for claimScript.
func guardValue(e Event) int64 {
	gv := e.OccurredMS*16 + int64(min(max(e.Rank, 0), 7))*2
	if e.Terminal {
		gv++
	}
	return gv
}

// Claim decides for every event, in order, in one pipelined round trip. Events of one order
// are decided in the order given, each seeing the ones before it.
func (s *Store) Claim(ctx context.Context, evs []Event) ([]Result, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	groups := groupByKey(evs)
	run := func(useSha bool) ([]redis.Cmder, error) {
		pipe := s.rdb.Pipeline()
		for _, g := range groups {
			args := make([]any, 0, 1+4*len(g.idx))
			args = append(args, s.ttlMS)
			for _, i := range g.idx {
				e := evs[i]
				args = append(args, dedupField(e.EventID), guardField(e.Kind), strconv.FormatInt(guardValue(e), 10), legacyGuardField(e.Kind))
			}
			keys := []string{s.OrderKey(g.key)}
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
	for gi, c := range cmds {
		vs, err := c.(*redis.Cmd).Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("redis claim: unexpected reply: %w", err)
		}
		g := groups[gi]
		if len(vs) != len(g.idx) {
			return nil, fmt.Errorf("redis claim: %d replies for %d events", len(vs), len(g.idx))
		}
		for j, v := range vs {
			r := Result{Stale: v%2 == 1}
			switch v / 2 {
			case 0:
				r.Decision = Replay
			case 1:
				r.Decision = Duplicate
			case 2:
				r.Decision = Fresh
			default:
				return nil, fmt.Errorf("redis claim: unexpected reply %d", v)
			}
			out[g.idx[j]] = r
		}
	}
	return out, nil
}

// group is the events of one order key: their indices in the batch, in order.
type group struct {
	key string
	idx []int
}

// groupByKey groups evs by order key, the groups in order of first appearance.
func groupByKey(evs []Event) []group {
	at := make(map[string]int, len(evs))
	groups := make([]group, 0, len(evs))
	for i, e := range evs {
		gi, ok := at[e.Key]
		if !ok {
			gi = len(groups)
			at[e.Key] = gi
			groups = append(groups, group{key: e.Key})
		}
		groups[gi].idx = append(groups[gi].idx, i)
	}
	return groups
}

// Confirm marks the events as emitted, in one pipelined round trip. Call it only after Kafka
// acknowledged them.
func (s *Store) Confirm(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	groups := groupByKey(evs)
	run := func(useSha bool) error {
		pipe := s.rdb.Pipeline()
		for _, g := range groups {
			args := make([]any, len(g.idx))
			for j, i := range g.idx {
				args[j] = dedupField(evs[i].EventID)
			}
			keys := []string{s.OrderKey(g.key)}
			if useSha {
				confirmScript.EvalSha(ctx, pipe, keys, args...)
			} else {
				confirmScript.Eval(ctx, pipe, keys, args...)
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
