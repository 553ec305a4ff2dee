#!/usr/bin/env bash
# Runs every module's tests (what `make test` runs inside deploy/local/testenv.sh) and adds up
# the results:
#
#   GOTESTSUM=gotest.tools/gotestsum@vX deploy/local/test-modules.sh "e2e" "schemas plumbing ingress ..." go test-flags...
#
# (make test-modules passes the Makefile's GOTESTSUM, the one place its version is written.)
#
# The first argument's modules (the end-to-end suite: processes, faults and waits, mostly idle
# CPU) run in the background while the second's run one after another; on 2 cores this takes the
# wall time from the sum of both to about the longer of the two. Every module runs even when an
# earlier one failed, so one failure never hides another. gotestsum prints a line per package,
# every skipped test with its reason (under CI=true an integration test without Kafka or Redis
# fails instead) and a DONE line per module; background modules' output is printed whole when
# they end, and the last line adds everything up.
set -uo pipefail
background=$1 foreground=$2 go=$3
shift 3
root=$(cd "$(dirname "$0")/../.." && pwd)
# gotestsum: the binary make test-prepare installed into .run/bin, or built here by go run.
gotestsum=("$go" run "${GOTESTSUM:?the gotestsum module@version (make test-modules sets it)}")
[ -x "$root/.run/bin/gotestsum" ] && gotestsum=("$root/.run/bin/gotestsum")
out="$root/.run/test-modules"
rm -rf "$out" && mkdir -p "$out"
declare -A pids
for m in $background; do
  (cd "$root/$m" && "${gotestsum[@]}" --format pkgname --format-hide-empty-pkg --jsonfile "$out/$m.json" -- "$@" ./... >"$out/$m.log" 2>&1; echo $? >"$out/$m.rc") &
  pids[$m]=$!
  echo "== $m (in the background; its output follows when it ends)"
done
failed=""
for m in $foreground; do
  echo "== $m"
  (cd "$root/$m" && "${gotestsum[@]}" --format pkgname --format-hide-empty-pkg --jsonfile "$out/$m.json" -- "$@" ./...) 2>&1 | tee "$out/$m.log"
  [ "${PIPESTATUS[0]}" = 0 ] || failed="$failed $m"
done
for m in $background; do
  wait "${pids[$m]}"
  echo "== $m"
  cat "$out/$m.log"
  [ "$(cat "$out/$m.rc" 2>/dev/null)" = 0 ] || failed="$failed $m"
done
cat "$out"/*.log > "$root/.run/test-summary.log"
awk '/^DONE [0-9]+ tests?/ { n += $2; for (i = 3; i < NF; i++) {
  if ($(i+1) ~ /^skipped/) s += $i; if ($(i+1) ~ /^failures?/) f += $i; if ($(i+1) ~ /^errors?/) e += $i } }
  END { if (e) printf "build errors: %d (counted as failed)\n", e; printf "tests: %d passed, %d failed, %d skipped\n", n - s - f, f + e, s }' "$root/.run/test-summary.log"
if [ -n "$failed" ]; then echo "FAILED modules:$failed"; exit 1; fi
