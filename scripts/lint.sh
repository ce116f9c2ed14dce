#!/usr/bin/env bash
# Static checks, as CI runs them: every C file formatted by .clang-format,
# the layering of actor/, supervisor/ and transport/, and cppcheck with a
# curated set of checks, zero findings allowed.
#
# The set: cppcheck's warning, portability and performance checks, minus
#   incorrectStringBooleanError  GR_ASSERT(cond && "why") is our idiom
#   missingIncludeSystem         cppcheck does not need libc's headers
# A false positive is silenced where it occurs, with a comment saying why
# (/* cppcheck-suppress id */ on the line before).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in clang-format cppcheck; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "$tool" >/dev/null
    else
      echo "lint needs $tool: sudo apt-get install $tool" >&2
      exit 1
    fi
  fi
done

# The tracked C files; outside a git checkout, those under the source dirs.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h')
else
  mapfile -t files < <(find actor supervisor transport net observe dist tools \
    include tests bench \
    examples -name '*.[ch]' | sort)
fi
echo "lint: clang-format on ${#files[@]} files"
clang-format --dry-run --Werror "${files[@]}"

echo "lint: layering"
# actor/ never includes from the layers above it; they use actor/ only
# through its internal API header (docs/architecture.md).
if grep -n '#include "\(supervisor\|transport\|net\|observe\|dist\)/' actor/*.[ch]; then
  echo "lint: actor/ includes from a layer above it" >&2
  exit 1
fi
if grep -n '#include "actor/' supervisor/*.[ch] transport/*.[ch] net/*.[ch] \
  observe/*.[ch] dist/*.[ch] |
  grep -v '"actor/runtime.h"'; then
  echo "lint: supervisor/, transport/, net/, observe/ and dist/ include actor/runtime.h only" >&2
  exit 1
fi

echo "lint: cppcheck"
cppcheck -q --std=c11 --enable=warning,portability,performance \
  --inline-suppr --error-exitcode=1 -j "$(nproc)" \
  -I include -I . -D__linux__ -D_GNU_SOURCE -DGROVE_BUILDING \
  --suppress=missingIncludeSystem --suppress=incorrectStringBooleanError \
  actor supervisor transport net observe dist tools tests examples bench
echo "lint: clean"
