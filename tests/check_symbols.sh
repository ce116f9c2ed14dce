#!/bin/sh
# Checks the library's symbols:
# - no global symbol outside Grove's namespaces (gr_ public, gr__ internal),
#   which a user's own function of that name would clash with;
# - for a shared library, every function declared GR_API in the public
#   headers is exported (a definition that does not see its declaration
#   is hidden).
# With --exports-only, only the second check (instrumented builds, whose
# runtimes add symbols of their own).
#   tests/check_symbols.sh LIBRARY INCLUDE_DIR [--exports-only]
set -eu
lib=$1
include=$2
only=${3:-}
bad=
[ "$only" = --exports-only ] || bad=$(nm -g --defined-only "$lib" | awk 'NF == 3 && $2 ~ /[BDGRSTVW]/ {print $3}' |
  grep -v -E '^(gr_|gr__|_init$|_fini$|_edata$|_end$|__bss_start$)' | sort -u || true)
if [ -n "$bad" ]; then
  echo "global symbols outside gr_/gr__ in $lib:"
  echo "$bad"
  exit 1
fi
[ "$only" = --exports-only ] || echo "every global symbol in $lib is gr_ or gr__"
case $lib in
*.so*)
  declared=$(cat "$include"/grove/*.h | tr '\n' ' ' |
    grep -o 'GR_API [^;{(]*(' | sed -E 's/.*[ *]([A-Za-z_0-9]+)\($/\1/' |
    grep -v '^__' | sort -u)
  exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort -u)
  missing=$(printf '%s\n' "$declared" | grep -v -x -F "$exported" || true)
  if [ -n "$missing" ]; then
    echo "declared GR_API but not exported by $lib:"
    echo "$missing"
    exit 1
  fi
  echo "every GR_API function is exported by $lib"
  ;;
esac
