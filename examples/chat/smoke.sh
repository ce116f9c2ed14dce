#!/usr/bin/env bash
# The chat server driven with nc, as its README shows: bob waits in a room,
# alice joins, posts, sends bob a private message and quits; bob sees it
# all; SIGTERM tells bob and stops the server with status 0.
set -euo pipefail
chat=$1
dir=$(mktemp -d)
# Made here: the background job's redirections may open them only later.
: >"$dir/out"
: >"$dir/err"
"$chat" --listen 127.0.0.1:0 >"$dir/out" 2>"$dir/err" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

# Waits (5 s at most) until file has a line equal to the text.
wait_for() {
  for _ in $(seq 50); do
    grep -qxF "$2" "$1" && return 0
    sleep 0.1
  done
  echo "smoke: no line '$2' in $1:"; cat "$1"; cat "$dir/err"; exit 1
}

for _ in $(seq 50); do
  port=$(sed -n 's/^listening on .* (port \([0-9]*\))$/\1/p' "$dir/out")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { cat "$dir/out" "$dir/err"; echo "smoke: no port"; exit 1; }

mkfifo "$dir/bob.in"
timeout 20 nc 127.0.0.1 "$port" <"$dir/bob.in" >"$dir/bob.out" &
exec 5>"$dir/bob.in"
printf 'NICK bob\nJOIN #lobby\n' >&5
wait_for "$dir/bob.out" "OK JOIN #lobby"

printf 'NICK alice\nJOIN #lobby\nMSG #lobby hello bob\nPRIV bob see you\nQUIT bye\n' |
  timeout 10 nc 127.0.0.1 "$port" >"$dir/alice.out"
for line in "OK NICK alice" "OK JOIN #lobby" "OK MSG #lobby" "OK QUIT"; do
  wait_for "$dir/alice.out" "$line"
done
for line in "JOIN #lobby alice" "MSG #lobby alice hello bob" \
  "PRIV alice see you" "QUIT alice bye"; do
  wait_for "$dir/bob.out" "$line"
done

kill -TERM $pid
status=0
wait $pid || status=$?
[[ $status == 0 ]] || { cat "$dir/err"; echo "smoke: exit status $status"; exit 1; }
wait_for "$dir/bob.out" "NOTICE server shutting down"
exec 5>&-
echo "smoke: two nc clients chatted; SIGTERM told bob and exited 0"
