#!/bin/sh
# Runs the nodes example, kill -9s one node process from outside, and
# checks that the restart log and the poller show it restarted.
#   kill9.sh path/to/nodes
set -eu
prog=$1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$prog" --seconds 6 >"$log" 2>&1 &
main=$!
pid=""
for _ in $(seq 100); do
    pid=$(sed -n 's/^worker-1 is now pid \([0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$pid" ] && break
    sleep 0.05
done
[ -n "$pid" ] || { cat "$log"; echo "kill9: no pid for worker-1"; exit 1; }
echo "kill9: kill -9 $pid"
kill -9 "$pid"
wait "$main"
cat "$log"
grep -q 'child "worker-1" .*crashed: .*signal SIGKILL' "$log"
grep -q 'restarted child "worker-1"\|child "worker-1".*restarted' "$log"
[ "$(grep -c '^worker-1 is now pid' "$log")" -ge 2 ]
! kill -0 "$pid" 2>/dev/null
echo "kill9: worker-1 was restarted after kill -9"
