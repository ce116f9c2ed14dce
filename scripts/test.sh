#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through CTest, as
# many at once as there are CPUs (scripts/stress.sh shows they hold up
# under that load).
#
# Environment: GROVE_SANITIZER=address,undefined | thread builds and tests
# in build-<sanitizer> instead of build. GROVE_TEST_SCALE divides the size of
# the stress tests (sanitizer runs use it to stay within CI's time).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build
if [[ -n ${GROVE_SANITIZER:-} ]]; then
  build_dir=build-${GROVE_SANITIZER//,/-}
fi
scripts/setup.sh "$build_dir"
. scripts/sanitizer_env.sh
cd "$build_dir"
exec ctest --output-on-failure --timeout 600 -j "$(nproc)"
