#!/usr/bin/env bash
# Runs a Redis Cluster as local processes on 127.0.0.1 (plain TCP, no auth): three primaries on
# PORT..PORT+2, each with one replica on PORT+3..PORT+5 (cluster bus ports PORT+6..PORT+11, node
# port + 6, rather than Redis's default +10000, which lands in other programs' ports), made with
# `redis-cli --cluster create --cluster-replicas 1`. Each node is a deploy/local/redis.sh node
# (kind cluster: cluster-node-timeout 3000 ms, a replica always allowed to fail over) with its run
# dir at .run/redis-<its port>, so one node can be killed and restarted with
# `deploy/local/redis.sh kill9|restart|sigstop|sigcont <port>` (it rejoins with its nodes.conf).
#
#   deploy/local/redis-cluster.sh start [PORT]      start all six and create the cluster; waits for cluster_state:ok
#   deploy/local/redis-cluster.sh stop [PORT]       stop all six
#   deploy/local/redis-cluster.sh primaries [PORT]  print the current primaries (host:port, one a line)
#
# PORT defaults to REDIS_CLUSTER_PORT (default 36486).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=${2:-${REDIS_CLUSTER_PORT:-36486}}
node() { env -u REDIS_RUN_DIR "$here/redis.sh" "$@"; }

start() {
  local i pids=() addrs=()
  for i in 0 1 2 3 4 5; do
    REDIS_NODE_KIND=cluster REDIS_NODE_BUS_PORT=$((port + 6 + i)) node start $((port + i)) &
    pids+=($!)
    addrs+=("127.0.0.1:$((port + i))")
  done
  # Every start is waited for, failed or not: exiting at the first failure left the later ones
  # running, and a node that came up after the caller's cleanup had stopped the cluster stayed.
  local failed=0
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  [ "$failed" = 0 ] || exit 1
  # With every node on one host, redis-cli makes the first three primaries.
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$here/../../.run/redis-$port/create.log" 2>&1 || {
    echo "redis-cluster.sh: cluster create failed:" >&2; cat "$here/../../.run/redis-$port/create.log" >&2; exit 1; }
  for _ in $(seq 1 300); do
    if ready; then
      echo "redis-cluster.sh: primaries 127.0.0.1:$port-:$((port + 2)), replicas :$((port + 3))-:$((port + 5)), cluster_state:ok" >&2
      return
    fi
    sleep 0.1
  done
  echo "redis-cluster.sh: the cluster did not become ok:" >&2
  node cli "$port" cluster nodes >&2 || true
  exit 1
}

# ready: every node says cluster_state:ok and sees three primaries each with a replica.
ready() {
  local i
  for i in 0 1 2 3 4 5; do
    node cli $((port + i)) cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    [ "$(node cli $((port + i)) cluster nodes 2>/dev/null | awk '$3 ~ /slave/ && $8 == "connected"' | wc -l)" = 3 ] || return 1
  done
}

stop() {
  local i
  for i in 0 1 2 3 4 5; do node stop $((port + i)) & done
  wait
}

primaries() {
  local i
  for i in 0 1 2 3 4 5; do
    if node cli $((port + i)) cluster nodes 2>/dev/null | awk '$3 ~ /master/ && $3 !~ /fail/ {split($2, a, "@"); print a[1]}' | sort; then return; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  primaries) primaries ;;
  *) echo "usage: $0 start|stop|primaries [PORT]" >&2; exit 2 ;;
esac
