/*
 * A minimal test harness: each test executable lists its cases in a table
 * and calls test_main(). A failed CHECK reports file, line and condition and
 * ends that case; the run ends with "N passed, N failed" (CTest reads the
 * exit status). Pass case names as arguments to run only those.
 */
#ifndef GROVE_TESTING_H
#define GROVE_TESTING_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One test case. */
struct test_case {
    const char *name;
    void (*fn)(void);
};

/* Set by a failed check; read and reset by test_main(). */
static int test_failed_;

/* Ends the current case if cond is false. */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            test_failed_ = 1;                                                  \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Ends the current case unless a == b (integers), printing both. */
#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_) {                                                        \
            fprintf(stderr,                                                    \
                    "  %s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n",        \
                    __FILE__, __LINE__, #a, #b, a_, b_);                       \
            test_failed_ = 1;                                                  \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Seconds on the monotonic clock, for time limits inside tests. */
static inline double test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the cases (all, or those named in argv) and returns the exit code. */
static inline int test_main(const struct test_case *cases, size_t n, int argc,
                            char **argv)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1) {
            int wanted = 0;
            for (int k = 1; k < argc; k++)
                wanted |= strcmp(argv[k], cases[i].name) == 0;
            if (!wanted)
                continue;
        }
        test_failed_ = 0;
        double t0 = test_now();
        cases[i].fn();
        fprintf(stderr, "%s %s (%.3f s)\n", test_failed_ ? "FAIL" : "ok  ",
                cases[i].name, test_now() - t0);
        if (test_failed_)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* Declares the case table and main() for a test file. */
#define TEST_MAIN(...)                                                         \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        static const struct test_case cases_[] = {__VA_ARGS__};                \
        return test_main(cases_, sizeof cases_ / sizeof cases_[0], argc,       \
                         argv);                                                \
    }

/* A table entry for the case function fn. */
#define TEST_CASE(fn)                                                          \
    {                                                                          \
#fn, fn                                                                \
    }

#endif
