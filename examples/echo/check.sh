#!/usr/bin/env bash
# The echo example end to end with a real client (bash's /dev/tcp): lines
# come back, "crash" ends only that client's session (the log says so, the
# next client is served), an over-long line is refused, and SIGTERM stops
# the server cleanly.
set -euo pipefail
echo_bin=$1
out=$(mktemp)
"$echo_bin" 127.0.0.1:0 >"$out" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -f "$out"' EXIT
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^echo: listening on port \([0-9]*\)$/\1/p' "$out")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { cat "$out"; echo "no port"; exit 1; }

exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello\nworld\r\n' >&3
read -r -t 5 a <&3
read -r -t 5 b <&3
[[ $a == hello && $b == world ]] || { echo "echo: got '$a' '$b'"; exit 1; }
printf 'crash\n' >&3
if read -r -t 5 c <&3; then echo "session survived a crash: '$c'"; exit 1; fi
exec 3<&-

exec 4<>"/dev/tcp/127.0.0.1/$port"
printf 'again\n' >&4
read -r -t 5 d <&4
[[ $d == again ]] || { echo "after the crash: got '$d'"; exit 1; }
head -c 2000 /dev/zero | tr '\0' x >&4
printf '\n' >&4
read -r -t 5 e <&4
[[ $e == "ERR line too long" ]] || { echo "long line: got '$e'"; exit 1; }
exec 4<&-

grep -q 'crashed: .*asked to crash by the client' "$out" ||
  { cat "$out"; echo "the crash was not logged"; exit 1; }
kill -TERM $pid
wait $pid
echo "echo: served, survived a crash, refused a long line, stopped cleanly"
