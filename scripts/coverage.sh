#!/usr/bin/env bash
# Builds Grove as a shared library with gcov instrumentation, runs every
# test against it, and prints the library's line coverage per directory
# and in total (gcov alone, no other tool). CI runs it: it is both the
# shared-library build whose tests must pass and the coverage summary.
#
#   scripts/coverage.sh [BUILD_DIR]     (default: build-coverage)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build-coverage}
scripts/setup.sh "$build_dir" -DBUILD_SHARED_LIBS=ON -DGROVE_COVERAGE=ON \
  -DGROVE_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
find "$build_dir" -name '*.gcda' -delete
(cd "$build_dir" && ctest --output-on-failure --timeout 600 -j "$(nproc)")

# gcov -n reports each source file's "Lines executed: P% of N" without
# writing .gcov files; sum executed and total lines per directory.
root=$(pwd)
objects=$build_dir/CMakeFiles/grove_objects.dir
echo "== line coverage of the library (every test, shared build)"
for dir in actor supervisor transport net observe dist; do
  (cd "$objects/$dir" && gcov -n ./*.gcda 2>/dev/null)
done | awk -v root="$root/" '
  /^File / { f = $2; gsub(/\047/, "", f); sub(root, "", f) }
  /^Lines executed:/ && f ~ /^(actor|supervisor|transport|net|observe|dist)\// {
    if (seen[f]++) next             # a header seen from several objects
    split($2, p, ":"); n = $4 + 0; hit = (p[2] + 0) * n / 100
    d = f; sub(/\/.*/, "", d)
    dh[d] += hit; dn[d] += n; th += hit; tn += n
  }
  END {
    for (d in dn) printf "  %-10s %5.1f%% of %5d lines\n", d, 100 * dh[d] / dn[d], dn[d]
    printf "  %-10s %5.1f%% of %5d lines\n", "total", 100 * th / tn, tn
  }'
