/*
 * GR_ASSERT: checks for programmer errors (violated preconditions, broken
 * invariants). Bad bytes from a peer, OOM and syscall failures are errors
 * returned or logged, never asserts. Always on, also in release builds.
 */
#ifndef GROVE_ACTOR_ASSERT_H
#define GROVE_ACTOR_ASSERT_H

/* Reports the failed condition with its location, then aborts. */
_Noreturn void gr__assert_fail(const char *cond, const char *file, int line);

/* Aborts with a message naming cond when cond is false. */
#define GR_ASSERT(cond)                                                        \
    ((cond) ? (void)0 : gr__assert_fail(#cond, __FILE__, __LINE__))

#endif
