#!/usr/bin/env bash
# Runs Debian's redis-server as a local process on a non-default 127.0.0.1 port, saving nothing to
# disk. Installs it with apt-get when missing.
#
#   deploy/local/redis.sh start|stop
#
# Environment: REDIS_PORT (default 36379), REDIS_RUN_DIR (default .run/redis-$REDIS_PORT).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
port=${REDIS_PORT:-36379}
run=${REDIS_RUN_DIR:-$root/.run/redis-$port}

install() {
  command -v redis-server >/dev/null && return
  echo "redis.sh: installing redis-server with apt-get" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >&2
}

start() {
  install
  mkdir -p "$run"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
    --dir "$run" --pidfile "$run/redis.pid" --logfile "$run/redis.log" --protected-mode yes
  for _ in $(seq 1 100); do
    if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then
      echo "redis.sh: $(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$port" >&2
      return
    fi
    sleep 0.1
  done
  echo "redis.sh: redis did not answer; log:" >&2
  tail -20 "$run/redis.log" >&2
  exit 1
}

stop() {
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$run/redis.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
