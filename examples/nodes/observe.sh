#!/bin/sh
# Watches the nodes example from outside with the grove tool, as
# docs/observer.md shows: the tree reaches into each node process, a
# kill -9 of one shows up in `grove events -f` and the tree shows the new
# process, and top lists the counters that run in the node processes.
#   observe.sh path/to/nodes path/to/grove
# Every wait is a bounded poll.
set -eu
prog=$1
grove=$2
dir=$(mktemp -d)
chmod 700 "$dir"
export XDG_RUNTIME_DIR=$dir # Its own control directory: no other system.
log=$dir/log
events=$dir/events
main=""
follower=""
cleanup() {
    [ -n "$follower" ] && kill "$follower" 2>/dev/null || true
    [ -n "$main" ] && kill "$main" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "observe: $*"
    echo "--- the example's log"
    cat "$log"
    exit 1
}
# Polls (up to 5 s) until the command's output matches the pattern.
until_matches() {
    pattern=$1
    shift
    for _ in $(seq 100); do
        if "$@" 2>&1 | grep -q "$pattern"; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}
GROVE_CONTROL=1 "$prog" --seconds 20 >"$log" 2>&1 &
main=$!
sys=nodes.$main
until_matches "counter <.*@worker-2>, the node's root" "$grove" tree "$sys" ||
    fail "the tree never showed the counters inside the node processes"
tree=$("$grove" tree "$sys")
echo "$tree"
old=$(echo "$tree" | sed -n 's/.*process worker-1 pid \([0-9]*\).*/\1/p')
[ -n "$old" ] || fail "no pid for worker-1 in the tree"
"$grove" events "$sys" -f >"$events" 2>&1 &
follower=$!
until_matches "following the events" cat "$events" ||
    fail "grove events -f never said it follows"
kill -9 "$old"
until_matches 'child "worker-1" restarted' cat "$events" ||
    fail "no restart in grove events -f: $(cat "$events")"
cat "$events"
until_matches "process worker-1 pid [0-9]*, restarted 1 time" \
    "$grove" tree "$sys" || fail "the tree never showed the restart"
new=$("$grove" tree "$sys" | sed -n 's/.*process worker-1 pid \([0-9]*\).*/\1/p')
[ -n "$new" ] && [ "$new" != "$old" ] || fail "worker-1 pid $old -> '$new'"
top=$("$grove" top "$sys" --once)
echo "$top"
echo "$top" | grep -q "@worker-1> *counter" || fail "top has no counter"
echo "observe: the tree, events and top saw inside the node processes"
