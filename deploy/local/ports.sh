# shellcheck shell=bash
# Sourced by kafka.sh and redis.sh: port helpers shared by the local test infrastructure.

# bindable PORT...: whether every port can be bound on 127.0.0.1 now (true when python3 is missing).
# It binds as the servers do (SO_REUSEADDR), so a TIME_WAIT does not count as held.
bindable() {
  command -v python3 >/dev/null || return 0
  python3 -c '
import socket, sys
for p in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(p)))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
' "$@"
}
