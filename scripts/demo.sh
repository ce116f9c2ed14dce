#!/usr/bin/env bash
# Installs what is missing, builds, and runs the flagship demos: a
# supervision tree that heals itself (examples/tree), then a tree of OS
# processes where a node is killed with kill -9 and restarted
# (examples/nodes).
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what the demos run, and what the README points to next (the echo,
# chat and job queue examples, and the grove tool): the tests and
# benchmarks can wait.
GROVE_BUILD_TARGETS="tree nodes echo chat jobq grove_tool" scripts/setup.sh build
build/examples/tree
echo
echo "== nodes: kill -9 a node process and watch it come back"
exec sh examples/nodes/kill9.sh build/examples/nodes
