package orderstate

import (
	"context"
	"maps"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

func newStore(t *testing.T) (*Store, redis.UniversalClient) {
	t.Helper()
	addr := testenv.Redis(t)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}})
	t.Cleanup(func() { rdb.Close() })
	return New(rdb, testenv.Name(t, "op")+":", time.Hour), rdb
}

type step struct {
	give    Event
	confirm bool // confirm after the claim
	want    Result
}

func ev(id, kind string, at int64, terminal bool) Event {
	return Event{Key: "dianwoda:A1", EventID: id, Kind: kind, OccurredMS: at, Terminal: terminal}
}

func ranked(e Event, rank int) Event { e.Rank = rank; return e }

const (
	id1 = "10000000-0000-5000-8000-000000000001"
	id2 = "20000000-0000-5000-8000-000000000002"
	id3 = "30000000-0000-5000-8000-000000000003"
	id4 = "40000000-0000-5000-8000-000000000004"
)

func TestClaimSequences(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"duplicate after confirm", []step{
			{ev(id1, "delivery", 10, false), true, Result{Fresh, false}},
			{ev(id1, "delivery", 10, false), false, Result{Duplicate, false}},
		}},
		{"unconfirmed claim is replayed, not dropped", []step{
			{ev(id1, "delivery", 10, false), false, Result{Fresh, false}},
			{ev(id1, "delivery", 10, false), true, Result{Replay, false}},
			{ev(id1, "delivery", 10, false), false, Result{Duplicate, false}},
		}},
		{"older occurred_at is stale", []step{
			{ev(id1, "delivery", 20, false), true, Result{Fresh, false}},
			{ev(id2, "delivery", 10, false), true, Result{Fresh, true}},
		}},
		{"same occurred_at passes", []step{
			{ev(id1, "refund", 20, false), true, Result{Fresh, false}},
			{ev(id2, "refund", 20, false), true, Result{Fresh, false}},
		}},
		{"non-terminal after terminal is stale, even if newer", []step{
			{ev(id1, "delivery", 20, true), true, Result{Fresh, false}},
			{ev(id2, "delivery", 30, false), true, Result{Fresh, true}},
		}},
		{"terminal after terminal, newer, passes", []step{
			{ev(id1, "delivery", 20, true), true, Result{Fresh, false}},
			{ev(id2, "delivery", 30, true), true, Result{Fresh, false}},
		}},
		{"rider_switch: back to awaiting_rider with a newer time passes", []step{
			{ev(id1, "delivery", 10, false), true, Result{Fresh, false}},
			{ev(id2, "delivery", 20, false), true, Result{Fresh, false}},
			{ev(id3, "delivery", 30, false), true, Result{Fresh, false}},
		}},
		{"a stale event does not move the guard", []step{
			{ev(id1, "delivery", 30, false), true, Result{Fresh, false}},
			{ev(id2, "delivery", 10, false), true, Result{Fresh, true}},
			{ev(id3, "delivery", 20, false), true, Result{Fresh, true}},
		}},
		{"kinds are guarded apart", []step{
			{ev(id1, "delivery", 30, true), true, Result{Fresh, false}},
			{ev(id2, "order", 10, false), true, Result{Fresh, false}},
			{ev(id3, "refund", 5, false), true, Result{Fresh, false}},
		}},
		{"tie: a lower rank is stale, an equal or higher one passes", []step{
			{ranked(ev(id1, "order", 20, false), 2), true, Result{Fresh, false}},
			{ranked(ev(id2, "order", 20, false), 1), true, Result{Fresh, true}},
			{ranked(ev(id3, "order", 20, false), 2), true, Result{Fresh, false}},
			{ranked(ev(id4, "order", 20, true), 3), true, Result{Fresh, false}},
		}},
		{"tie: rank 0 (unknown) never decides", []step{
			{ranked(ev(id1, "refund", 20, false), 2), true, Result{Fresh, false}},
			{ranked(ev(id2, "refund", 20, false), 0), true, Result{Fresh, false}},
			{ranked(ev(id3, "refund", 20, false), 1), true, Result{Fresh, false}},
		}},
		{"a newer time wins over rank (rider_switch)", []step{
			{ranked(ev(id1, "delivery", 20, false), 3), true, Result{Fresh, false}},
			{ranked(ev(id2, "delivery", 21, false), 1), true, Result{Fresh, false}},
		}},
		// Two instances around a rebalance: the old owner claimed and wrote id1, then claimed,
		// wrote and confirmed id2 (newer); the new owner replays id1 from the committed offset
		// before the old owner confirmed it. Emitted again as not stale, that copy would land
		// after id2 and be the order's latest non-stale event: a wrong final state (make chaos,
		// broker and consumer rolling restarts).
		{"an unconfirmed replay the guard has moved past since is stale", []step{
			{ev(id1, "delivery", 10, false), false, Result{Fresh, false}},
			{ev(id2, "delivery", 20, false), true, Result{Fresh, false}},
			{ev(id1, "delivery", 10, false), false, Result{Replay, true}},
			{ev(id1, "delivery", 10, false), true, Result{Replay, true}},
			{ev(id1, "delivery", 10, false), false, Result{Duplicate, true}},
		}},
		{"replay keeps the stale flag decided first, though the guard moved", []step{
			{ev(id1, "delivery", 30, false), true, Result{Fresh, false}},
			{ev(id2, "delivery", 20, false), false, Result{Fresh, true}},
			{ev(id3, "delivery", 10, false), true, Result{Fresh, true}},
			{ev(id2, "delivery", 20, false), true, Result{Replay, true}},
			{ev(id4, "delivery", 40, false), false, Result{Fresh, false}},
			{ev(id4, "delivery", 40, false), false, Result{Replay, false}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			ctx := context.Background()
			for i, st := range tt.steps {
				got, err := s.Claim(ctx, []Event{st.give})
				if err != nil {
					t.Fatal(err)
				}
				if got[0] != st.want {
					t.Fatalf("step %d: got %+v, want %+v", i, got[0], st.want)
				}
				if st.confirm {
					if err := s.Confirm(ctx, []Event{st.give}); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// TestClaimBatchIsOrderedAndOneRoundTrip: a pipelined batch decides in order (later events see
// earlier ones) in one round trip, even when the script cache was flushed.
func TestClaimBatchIsOrderedAndOneRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	batch := []Event{ev(id1, "delivery", 30, false), ev(id2, "delivery", 10, false), ev(id1, "delivery", 30, false), ev(id3, "delivery", 40, true)}
	got, err := s.Claim(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []Result{{Fresh, false}, {Fresh, true}, {Replay, false}, {Fresh, false}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := s.RoundTrips(); n > 2 { // 1, or 2 when the script had to be loaded first
		t.Errorf("%d round trips for one batch", n)
	}
}

func TestKeyHasHashTagAndTTL(t *testing.T) {
	s, rdb := newStore(t)
	ctx := context.Background()
	e := Event{Key: "eleme:100027500485933656", EventID: id1, Kind: "order", OccurredMS: 1, Terminal: false}
	if _, err := s.Claim(ctx, []Event{e}); err != nil {
		t.Fatal(err)
	}
	key := s.OrderKey(e.Key)
	if want := "{eleme:100027500485933656}"; key[len(key)-len(want):] != want {
		t.Fatalf("key %q does not end in the hash tag %q", key, want)
	}
	ttl, err := rdb.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > time.Hour {
		t.Fatalf("ttl %v, %v; want within (0, 1h]", ttl, err)
	}
	// Confirm never creates a key for an event that was not claimed.
	other := Event{Key: "eleme:never", EventID: id2, Kind: "order"}
	if err := s.Confirm(ctx, []Event{other}); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, s.OrderKey(other.Key)).Result(); n != 0 {
		t.Fatal("confirm created a key")
	}
}

// A guard written by the version before ranks ("g" + kind, occurred_ms*2 + terminal) is read as
// rank 0 and moved to the new field, so orders in flight during a deploy keep their guard.
func TestLegacyGuardIsMigrated(t *testing.T) {
	s, rdb := newStore(t)
	ctx := context.Background()
	key := s.OrderKey("dianwoda:A1")
	if err := rdb.HSet(ctx, key, "gd", 30*2+1).Err(); err != nil { // terminal at 30
		t.Fatal(err)
	}
	got, err := s.Claim(ctx, []Event{ranked(ev(id1, "delivery", 40, false), 2), ranked(ev(id2, "delivery", 20, true), 5)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{Fresh, true}); got[0] != want || got[1] != want {
		t.Fatalf("claims after a legacy terminal guard at 30: %+v, want both stale", got)
	}
	if n, _ := rdb.HExists(ctx, key, "gd").Result(); n {
		t.Error("legacy guard field left behind")
	}
	if v, _ := rdb.HGet(ctx, key, "hd").Int64(); v != 30*16+1 {
		t.Errorf("migrated guard %d, want %d", v, 30*16+1)
	}
}

// refClaimScript and refConfirmScript decide one event per call: the scripts as they were before
// events were grouped by order, the reference the grouped scripts are held to.
var refClaimScript = redis.NewScript(`
local k = KEYS[1]
local gv = tonumber(ARGV[3])
local function isStale(g)
  local ms, gms = math.floor(gv / 16), math.floor(g / 16)
  local r, gr = math.floor(gv / 2) % 8, math.floor(g / 2) % 8
  return ms < gms or (ms == gms and r > 0 and gr > 0 and r < gr) or (g % 2 == 1 and gv % 2 == 0)
end
local d = redis.call('HGET', k, ARGV[1])
if d == '0' then
  local g = redis.call('HGET', k, ARGV[2])
  if g and isStale(tonumber(g)) then
    redis.call('HSET', k, ARGV[1], 1)
    return 1
  end
  return 0
end
if d then return tonumber(d) end
local stale = 0
local g = redis.call('HGET', k, ARGV[2])
local migrated = false
if not g then
  local old = redis.call('HGET', k, ARGV[5])
  if old then
    old = tonumber(old)
    g = math.floor(old / 2) * 16 + old % 2
    redis.call('HDEL', k, ARGV[5])
    migrated = true
  end
end
if g then
  g = tonumber(g)
  if isStale(g) then stale = 1 end
end
if stale == 0 then
  redis.call('HSET', k, ARGV[2], ARGV[3])
elseif migrated then
  redis.call('HSET', k, ARGV[2], g)
end
redis.call('HSET', k, ARGV[1], stale)
redis.call('PEXPIRE', k, ARGV[4])
return 4 + stale
`)

var refConfirmScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v == '0' or v == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], tonumber(v) + 2)
  return 1
end
return 0
`)

// refClaim decides one event with refClaimScript.
func refClaim(ctx context.Context, s *Store, e Event) (Result, error) {
	v, err := refClaimScript.Run(ctx, s.rdb, []string{s.OrderKey(e.Key)}, dedupField(e.EventID), guardField(e.Kind),
		strconv.FormatInt(guardValue(e), 10), s.ttlMS, legacyGuardField(e.Kind)).Int64()
	if err != nil {
		return Result{}, err
	}
	return Result{Decision: [...]Decision{Replay, Duplicate, Fresh}[v/2], Stale: v%2 == 1}, nil
}

// Deciding a batch in one call per order is the same as deciding its events one at a time with
// the per-event scripts: the same results and the same state left in Redis, over random mixes of
// orders, kinds, times, ranks, terminals, repeats, confirms and legacy guards.
func TestGroupedClaimsEqualOneAtATime(t *testing.T) {
	grouped, rdb := newStore(t)
	single := New(rdb, grouped.prefix+"single:", time.Hour)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(7, 11))
	ids := []string{id1, id2, id3, id4, "50000000-0000-5000-8000-000000000005", "60000000-0000-5000-8000-000000000006"}
	keys := []string{"dianwoda:A1", "dianwoda:A2", "eleme:1"}
	kinds := []string{"delivery", "order", "refund"}
	for _, s := range []*Store{grouped, single} { // a legacy guard on one order
		if err := rdb.HSet(ctx, s.OrderKey("dianwoda:A2"), "gd", 25*2+1).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 30; round++ {
		batch := make([]Event, 1+rnd.IntN(12))
		for i := range batch {
			batch[i] = Event{Key: keys[rnd.IntN(len(keys))], EventID: ids[rnd.IntN(len(ids))], Kind: kinds[rnd.IntN(len(kinds))],
				OccurredMS: int64(10 * rnd.IntN(6)), Terminal: rnd.IntN(4) == 0, Rank: rnd.IntN(4)}
		}
		got, err := grouped.Claim(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range batch {
			want, err := refClaim(ctx, single, e)
			if err != nil {
				t.Fatal(err)
			}
			if got[i] != want {
				t.Fatalf("round %d event %d %+v: grouped %+v, one at a time %+v", round, i, e, got[i], want)
			}
		}
		var confirm []Event
		for _, e := range batch {
			if rnd.IntN(2) == 0 {
				confirm = append(confirm, e)
			}
		}
		if err := grouped.Confirm(ctx, confirm); err != nil {
			t.Fatal(err)
		}
		for _, e := range confirm {
			if err := refConfirmScript.Run(ctx, rdb, []string{single.OrderKey(e.Key)}, dedupField(e.EventID)).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range keys {
			g, _ := rdb.HGetAll(ctx, grouped.OrderKey(k)).Result()
			s, _ := rdb.HGetAll(ctx, single.OrderKey(k)).Result()
			if !maps.Equal(g, s) {
				t.Fatalf("round %d: %s holds %q grouped, %q one at a time", round, k, g, s)
			}
		}
	}
}
