#!/usr/bin/env bash
# Installs what is missing, builds, and runs the flagship demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/examples/tree
