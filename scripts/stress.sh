#!/usr/bin/env bash
# Hunts intermittent test failures: builds, then runs every CTest test (or
# the ones named) RUNS times each with the machine kept busy, and prints how
# many runs of each failed. A test that fails once in N runs is a bug.
#
#   scripts/stress.sh [-n RUNS] [-l BURNERS] [-j JOBS] [-o LOG_DIR] [TEST...]
#
#   -n RUNS     runs of each test (default 30)
#   -l BURNERS  busy-looping processes kept running beside the tests
#               (default: one per CPU; 0 for none)
#   -j JOBS     tests run at once (default 1)
#   -o LOG_DIR  where the output of failed runs is kept
#               (default: a new directory under /tmp)
#
# Environment: GROVE_SANITIZER (address,undefined | thread) builds and runs
# in build-<sanitizer>, as scripts/test.sh does; GROVE_TEST_SCALE as there.
# Exits 1 if any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=30
burners=$(nproc)
jobs=1
log_dir=
while getopts "n:l:j:o:" opt; do
  case $opt in
  n) runs=$OPTARG ;;
  l) burners=$OPTARG ;;
  j) jobs=$OPTARG ;;
  o) log_dir=$OPTARG ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

build_dir=build
if [[ -n ${GROVE_SANITIZER:-} ]]; then
  build_dir=build-${GROVE_SANITIZER//,/-}
fi
scripts/setup.sh "$build_dir" >/dev/null
. scripts/sanitizer_env.sh
build_dir=$(cd "$build_dir" && pwd)
log_dir=${log_dir:-$(mktemp -d /tmp/grove-stress-XXXXXX)}
mkdir -p "$log_dir"
# Failed runs are counted by their logs, so an earlier run's would count.
if compgen -G "$log_dir/*.log" >/dev/null; then
  echo "stress: $log_dir holds logs of an earlier run; name another" >&2
  exit 2
fi

tests=("$@")
if ((${#tests[@]} == 0)); then
  mapfile -t tests < <(ctest --test-dir "$build_dir" -N |
    sed -n 's/^ *Test *#[0-9]*: *//p')
fi

# The load: processes that spin until this script ends.
burner_pids=()
stop_burners() {
  if ((${#burner_pids[@]})); then
    kill "${burner_pids[@]}" 2>/dev/null || true
  fi
}
trap stop_burners EXIT
for ((i = 0; i < burners; i++)); do
  sh -c 'while :; do :; done' &
  burner_pids+=($!)
done

# One run of one test through CTest (its registered command, environment
# and time limit); the output is kept only when it failed.
run_one() {
  local test=$1 n=$2 log=$log_dir/$1.$2.log
  if ctest --test-dir "$build_dir" -R "^${test}\$" --output-on-failure \
    --timeout 900 >"$log" 2>&1; then
    rm -f "$log"
  else
    echo "FAIL $test run $n: $log"
  fi
}
export -f run_one
export build_dir log_dir

echo "stress: ${#tests[@]} tests x $runs runs, $burners burners," \
  "${GROVE_SANITIZER:-no sanitizer}; failed runs' output in $log_dir"
start=$(date +%s)
failed=0
printf '%-28s %5s %7s %6s\n' test runs failed secs
for test in "${tests[@]}"; do
  t0=$(date +%s)
  seq 1 "$runs" | xargs -P "$jobs" -I{} bash -c 'run_one "$0" {}' "$test" >/dev/null
  f=$(find "$log_dir" -name "$test.*.log" | wc -l)
  printf '%-28s %5d %7d %6d\n' "$test" "$runs" "$f" $(($(date +%s) - t0))
  failed=$((failed + f))
done
echo "stress: $failed failed runs in $(($(date +%s) - start)) s"
((failed == 0))
