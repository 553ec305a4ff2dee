#!/usr/bin/env bash
# Runs one node of Debian's redis-server (7.x) as a local process on 127.0.0.1, saving nothing to
# disk: a plain node, a TLS + ACL node, a replica, a Redis Cluster node or a Sentinel. Installs
# redis-server with apt-get when missing. Each node keeps its config and log in its run dir, so it
# can be killed and restarted as the same node (a Sentinel or Cluster rewrites that config as the
# node's role changes; a restarted cluster node keeps its identity in nodes.conf).
#
#   deploy/local/redis.sh start [PORT]     write a fresh config (empty run dir) and start; waits until it answers
#   deploy/local/redis.sh stop [PORT]      SIGTERM (no save), wait until the process is gone
#   deploy/local/redis.sh kill9 [PORT]     kill -9 the node (a crash: its data is gone, its config stays)
#   deploy/local/redis.sh restart [PORT]   start the node again from its config; waits until it answers
#   deploy/local/redis.sh sigstop|sigcont [PORT]   freeze / resume the node
#   deploy/local/redis.sh cli [PORT] ARGS...       redis-cli against the node (TLS and ACL user included)
#   deploy/local/redis.sh install          install redis-server with apt-get unless it is there
#
# PORT defaults to REDIS_PORT (default 36379). Environment for start (saved in the node's config):
#   REDIS_RUN_DIR             default .run/redis-$PORT
#   REDIS_NODE_KIND           plain (default) | cluster (cluster-enabled, cluster-node-timeout 3000 ms,
#                             replicas always allowed to fail over) | sentinel (a Sentinel on PORT)
#   REDIS_NODE_BUS_PORT       for kind cluster: the cluster bus port (default PORT+10000)
#   REDIS_NODE_REPLICAOF      host:port: start as a replica of that primary
#   REDIS_NODE_TLS_DIR        a directory made by deploy/local/certs.sh: TLS only (port 0, tls-port
#                             PORT), server.crt/.key, clients' certificates checked against ca.crt when
#                             given but not required (tls-auth-clients optional)
#   REDIS_NODE_USERNAME, REDIS_NODE_PASSWORD   an ACL user with full rights (~* &* +@all); the
#                             default user is then switched off, so a client without them gets NOAUTH
#   REDIS_SENTINEL_MONITOR    for kind sentinel: "name host port quorum" of the primary to watch;
#                             down-after-milliseconds 3000, failover-timeout 5000 (well above
#                             Sentinel's 1 s ping period: see e2e/topo.SentinelDownAfter)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cmd=${1:-}
[ $# -gt 0 ] && shift
port=${REDIS_PORT:-36379}
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then port=$1; shift; fi
run=${REDIS_RUN_DIR:-$root/.run/redis-$port}

install() {
  command -v redis-server >/dev/null && return
  # testenv.sh starts nine nodes at once, and apt-get refuses to run beside another apt-get
  # ("Could not get lock"): the first start installs, the others wait for it and then find
  # redis-server there (TestRedisInstallConcurrent). The lock is held by this subshell only, so
  # the redis-server a start then runs does not inherit it.
  (
    flock 9
    command -v redis-server >/dev/null && exit 0
    echo "redis.sh: installing redis-server with apt-get" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    # Another apt (not ours) holding dpkg's lock is waited for too, up to 5 minutes.
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq redis-server >&2
  ) 9>"${TMPDIR:-/tmp}/orderpipe-redis-install.lock"
}

write_conf() {
  local kind=${REDIS_NODE_KIND:-plain} tls=${REDIS_NODE_TLS_DIR:-}
  # What cli needs to reach the node, kept apart from redis.conf (which Sentinel and Cluster rewrite).
  local bus=""
  [ "$kind" != cluster ] || bus=${REDIS_NODE_BUS_PORT:-$((port + 10000))}
  { echo "tls=$tls"; echo "user=${REDIS_NODE_USERNAME:-}"; echo "kind=$kind"; echo "bus=$bus"; } >"$run/node.env"
  if [ -n "${REDIS_NODE_PASSWORD:-}" ]; then
    (umask 077 && printf '%s' "$REDIS_NODE_PASSWORD" >"$run/password")
  fi
  {
    echo "bind 127.0.0.1"
    echo "daemonize yes"
    echo "dir $run"
    echo "pidfile $run/redis.pid"
    echo "logfile $run/redis.log"
    echo "protected-mode no"
    if [ "$kind" = sentinel ]; then
      local m
      read -r -a m <<<"${REDIS_SENTINEL_MONITOR:?redis.sh: kind sentinel needs REDIS_SENTINEL_MONITOR}"
      echo "port $port"
      echo "sentinel resolve-hostnames no"
      echo "sentinel monitor ${m[0]} ${m[1]} ${m[2]} ${m[3]}"
      echo "sentinel down-after-milliseconds ${m[0]} 3000"
      echo "sentinel failover-timeout ${m[0]} 5000"
      echo "sentinel parallel-syncs ${m[0]} 1"
      return
    fi
    echo "save \"\""
    echo "appendonly no"
    if [ -n "$tls" ]; then
      echo "port 0"
      echo "tls-port $port"
      echo "tls-cert-file $tls/server.crt"
      echo "tls-key-file $tls/server.key"
      echo "tls-ca-cert-file $tls/ca.crt"
      echo "tls-auth-clients optional"
    else
      echo "port $port"
    fi
    if [ -n "${REDIS_NODE_USERNAME:-}" ]; then
      echo "user default off"
      echo "user $REDIS_NODE_USERNAME on >${REDIS_NODE_PASSWORD:?redis.sh: REDIS_NODE_USERNAME needs REDIS_NODE_PASSWORD} ~* &* +@all"
    fi
    if [ -n "${REDIS_NODE_REPLICAOF:-}" ]; then echo "replicaof ${REDIS_NODE_REPLICAOF/:/ }"; fi
    if [ "$kind" = cluster ]; then
      echo "cluster-enabled yes"
      echo "cluster-config-file nodes.conf"
      echo "cluster-port ${REDIS_NODE_BUS_PORT:-$((port + 10000))}"
      echo "cluster-node-timeout 3000"
      echo "cluster-replica-validity-factor 0"
    fi
  } >"$run/redis.conf"
  chmod 600 "$run/redis.conf" # it may hold the ACL user's password
}

cli() {
  local tls="" user="" args=(-h 127.0.0.1 -p "$port")
  # shellcheck disable=SC1091
  [ -f "$run/node.env" ] && { tls=$(sed -n 's/^tls=//p' "$run/node.env"); user=$(sed -n 's/^user=//p' "$run/node.env"); }
  [ -n "$tls" ] && args+=(--tls --cacert "$tls/ca.crt")
  if [ -n "$user" ]; then
    REDISCLI_AUTH=$(cat "$run/password") redis-cli "${args[@]}" --user "$user" --no-auth-warning "$@"
  else
    redis-cli "${args[@]}" "$@"
  fi
}

describe() {
  local d
  d="$(sed -n 's/^kind=//p' "$run/node.env") node"
  [ -n "$(sed -n 's/^tls=//p' "$run/node.env")" ] && d="$d, TLS only"
  [ -n "$(sed -n 's/^user=//p' "$run/node.env")" ] && d="$d, ACL user"
  echo "$d"
}

# free_port waits (until the deadline in $1, SECONDS) until the node's port (and a cluster node's
# bus port) can be bound (as redis binds it, with SO_REUSEADDR): another process's outgoing
# connection, or its TIME_WAIT, can hold one.
free_port() {
  local i=0 bus
  bus=$(sed -n 's/^bus=//p' "$run/node.env")
  while [ "$SECONDS" -lt "$1" ]; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    bindable "$port" $bus && return
    [ "$i" = 1 ] && echo "redis.sh: 127.0.0.1:$port is held by another connection; waiting" >&2
    sleep 0.2
  done
}

# bindable PORT...: deploy/local/ports.sh
# shellcheck source=ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

inuse() { local n; n=$(grep -c "Address already in use" "$run/redis.log" 2>/dev/null || true); echo "${n:-0}"; }

# launch starts the node from its config and waits until it answers. The test ports lie in
# Linux's ephemeral range, so another process's outgoing connection (or its TIME_WAIT, up to
# 60 s) can hold the port: a bind that fails with "Address already in use" is tried again for
# up to 90 s.
launch() {
  local seen sentinel=""
  [ "$(sed -n 's/^kind=//p' "$run/node.env")" = sentinel ] && sentinel=--sentinel
  local deadline=$((SECONDS + 90))
  while :; do
    seen=$(inuse)
    free_port "$deadline"
    redis-server "$run/redis.conf" $sentinel
    for _ in $(seq 1 100); do
      if [ "$(cli ping 2>/dev/null)" = PONG ]; then
        echo "redis.sh: $(redis-server --version | cut -d' ' -f1-3) $(describe) on 127.0.0.1:$port" >&2
        return
      fi
      [ "$(inuse)" -gt "$seen" ] && break
      sleep 0.1
    done
    [ "$(inuse)" -gt "$seen" ] && [ "$SECONDS" -lt "$deadline" ] || break
    [ "$seen" = 0 ] && echo "redis.sh: 127.0.0.1:$port is held by another connection; trying again" >&2
    sleep 1
  done
  echo "redis.sh: redis on 127.0.0.1:$port did not answer; log:" >&2
  tail -20 "$run/redis.log" >&2
  exit 1
}

start() {
  install
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "redis.sh: something already listens on 127.0.0.1:$port" >&2; exit 1
  fi
  rm -rf "$run" && mkdir -p "$run"
  write_conf
  launch
}

restart() {
  [ -f "$run/redis.conf" ] || { echo "redis.sh: no node was started in $run" >&2; exit 1; }
  launch
}

# pid prints the node's pid when its pidfile names a live redis process.
pid() {
  local p
  p=$(cat "$run/redis.pid" 2>/dev/null) || return 1
  case "$(ps -p "$p" -o comm= 2>/dev/null)" in redis-*) echo "$p" ;; *) return 1 ;; esac
}

stop() { # stop SIGNAL
  local p
  p=$(pid) || { rm -f "$run/redis.pid"; return 0; }
  kill -CONT "$p" 2>/dev/null || true
  kill "-$1" "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$p" 2>/dev/null || true
  rm -f "$run/redis.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop TERM ;;
  kill9) stop KILL ;;
  restart) restart ;;
  sigstop) kill -STOP "$(pid)" ;;
  sigcont) kill -CONT "$(pid)" ;;
  cli) cli "$@" ;;
  install) install ;;
  *) echo "usage: $0 start|stop|kill9|restart|sigstop|sigcont|cli|install [PORT] [ARGS...]" >&2; exit 2 ;;
esac
