# Sourced by scripts/test.sh and scripts/stress.sh: the sanitizers' options
# for every test run (a value already in the environment wins). Reports
# fail the run: ASan checks leaks and aborts, UBSan halts on the first
# finding (its default is to print and go on), TSan halts on a race.
: "${ASAN_OPTIONS:=detect_leaks=1:abort_on_error=1}"
: "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
: "${TSAN_OPTIONS:=halt_on_error=1:second_deadlock_stack=1}"
export ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS
