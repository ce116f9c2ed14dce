#!/bin/sh
# Fails if the library defines a global symbol outside Grove's namespaces
# (gr_ public, gr__ internal): a user's own function of that name would
# clash with it when linking the static library.
#   tests/check_symbols.sh LIBRARY
set -eu
bad=$(nm -g --defined-only "$1" | awk 'NF == 3 && $2 ~ /[BDGRSTVW]/ {print $3}' |
  grep -v -E '^(gr_|gr__|_init$|_fini$|_edata$|_end$|__bss_start$)' | sort -u || true)
if [ -n "$bad" ]; then
  echo "global symbols outside gr_/gr__ in $1:"
  echo "$bad"
  exit 1
fi
echo "every global symbol in $1 is gr_ or gr__"
