#!/usr/bin/env bash
# Runs a Redis Sentinel group as local processes on 127.0.0.1 (plain TCP, no auth): a primary on
# PORT, one replica on PORT+1, and three Sentinels on PORT+2..PORT+4 (quorum 2,
# down-after-milliseconds 3000, failover-timeout 5000) that watch the primary under the name
# REDIS_MASTER_NAME (default orderpipe). Each node is a deploy/local/redis.sh node with its run
# dir at .run/redis-<its port>, so one node can be killed and restarted with
# `deploy/local/redis.sh kill9|restart|sigstop|sigcont <port>` (a restarted old primary is turned
# into a replica by the Sentinels).
#
#   deploy/local/redis-sentinel.sh start [PORT]    start all five; waits until the replica is in sync
#                                                  and every Sentinel knows the replica and the others
#   deploy/local/redis-sentinel.sh stop [PORT]     stop all five
#   deploy/local/redis-sentinel.sh master [PORT]   print the primary's address as the Sentinels see it
#
# PORT defaults to REDIS_SENTINEL_PORT (default 36481).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=${2:-${REDIS_SENTINEL_PORT:-36481}}
name=${REDIS_MASTER_NAME:-orderpipe}
node() { env -u REDIS_RUN_DIR "$here/redis.sh" "$@"; }

start() {
  REDIS_NODE_KIND=plain node start "$port"
  REDIS_NODE_KIND=plain REDIS_NODE_REPLICAOF="127.0.0.1:$port" node start $((port + 1))
  local s pids=()
  for s in 2 3 4; do
    REDIS_NODE_KIND=sentinel REDIS_SENTINEL_MONITOR="$name 127.0.0.1 $port 2" node start $((port + s)) &
    pids+=($!)
  done
  # Every start is waited for, failed or not (see redis-cluster.sh).
  local failed=0
  for s in "${pids[@]}"; do wait "$s" || failed=1; done
  [ "$failed" = 0 ] || exit 1
  for _ in $(seq 1 200); do
    if ready; then
      echo "redis-sentinel.sh: primary 127.0.0.1:$port, replica :$((port + 1)), sentinels :$((port + 2))-:$((port + 4)) ($name, quorum 2)" >&2
      return
    fi
    sleep 0.1
  done
  echo "redis-sentinel.sh: the group did not settle:" >&2
  node cli $((port + 1)) info replication | grep -E 'master_link_status' >&2 || true
  node cli $((port + 2)) sentinel master "$name" >&2 || true
  exit 1
}

ready() {
  node cli $((port + 1)) info replication 2>/dev/null | grep -q 'master_link_status:up' || return 1
  local s info
  for s in 2 3 4; do
    info=$(node cli $((port + s)) sentinel master "$name" 2>/dev/null | paste - - | tr '\t' ' ')
    grep -q '^num-slaves 1$' <<<"$info" || return 1
    grep -q '^num-other-sentinels 2$' <<<"$info" || return 1
  done
}

stop() {
  local i
  for i in 2 3 4 0 1; do node stop $((port + i)) & done
  wait
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  master) node cli $((port + 2)) sentinel get-master-addr-by-name "$name" | paste -sd: ;;
  *) echo "usage: $0 start|stop|master [PORT]" >&2; exit 2 ;;
esac
