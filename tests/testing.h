/*
 * A minimal test harness: each test executable lists its cases in a table
 * and calls test_main(). A failed CHECK reports file, line and condition and
 * ends that case; the run ends with "N passed, N failed" (CTest reads the
 * exit status). Pass case names as arguments to run only those. Every case
 * runs in a process of its own, under a time limit (see test_main).
 */
#ifndef GROVE_TESTING_H
#define GROVE_TESTING_H

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* How long one case may run before it is killed and failed; the
 * environment's GROVE_TEST_CASE_TIMEOUT (seconds) overrides it. */
#define TEST_CASE_TIMEOUT_S 120

/* Runs one case in this process; returns 0 when it passed. */
static inline int test_run_here(const struct test_case *c)
{
    test_failed_ = 0;
    c->fn();
    return test_failed_;
}

/* Waits up to limit_s for the case process pid; returns its wait status,
 * or -1 when it ran out of time (then it and every process it started, its
 * process group, are killed and reaped). */
static inline int test_wait_case(pid_t pid, double limit_s)
{
    int status = 0;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    double end = test_now() + limit_s;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            break;
        double left = end - test_now();
        if (left <= 0) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            status = -1;
            break;
        }
        /* The pidfd turns readable when the case process ends; without one
         * (kernels before 5.3), poll its status every 10 ms. */
        int ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
        if (pidfd >= 0) {
            struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
            (void)poll(&pfd, 1, ms);
        } else {
            (void)poll(NULL, 0, ms < 10 ? ms : 10);
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    /* Whatever the case left behind (a node it did not stop) goes too. */
    kill(-pid, SIGKILL);
    return status;
}

/* Runs one case in a child process of its own, in its own process group,
 * as libuv's runner does: a failed or hung case cannot leave its system
 * running into the next one, and a crash fails only that case. Returns 0
 * when it passed, printing why it did not otherwise. */
static inline int test_run_isolated(const struct test_case *c, double limit_s)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return test_run_here(c);
    }
    if (pid == 0) {
        setpgid(0, 0);
        int failed = test_run_here(c);
        fflush(stdout);
        fflush(stderr);
        /* A passing case ends normally (leak checkers run at exit); a
         * failed one may have left threads running, so it leaves at once. */
        if (failed)
            _exit(1);
        exit(0);
    }
    setpgid(pid, pid); /* Both sides: whichever runs first. */
    int status = test_wait_case(pid, limit_s);
    if (status == -1) {
        fprintf(stderr, "  %s: still running after %g s; killed\n", c->name,
                limit_s);
        return 1;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "  %s: killed by signal %d (%s)\n", c->name,
                WTERMSIG(status), strsignal(WTERMSIG(status)));
        return 1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/*
 * Runs the cases (all, or those named in argv) and returns the exit code.
 * Each case runs in its own process (test_run_isolated); with
 * GROVE_TEST_IN_PROCESS=1 in the environment they run one after another in
 * this one, which is easier under a debugger. A name that matches no case
 * fails the run, so a typo cannot pass as "0 failed".
 */
static inline int test_main(const struct test_case *cases, size_t n, int argc,
                            char **argv)
{
    const char *in_process = getenv("GROVE_TEST_IN_PROCESS");
    const char *limit_env = getenv("GROVE_TEST_CASE_TIMEOUT");
    double limit_s = limit_env != NULL && atof(limit_env) > 0
                         ? atof(limit_env)
                         : TEST_CASE_TIMEOUT_S;
    int passed = 0, failed = 0;
    for (int k = 1; k < argc; k++) {
        int known = 0;
        for (size_t i = 0; i < n; i++)
            known |= strcmp(argv[k], cases[i].name) == 0;
        if (!known) {
            fprintf(stderr, "no case named %s\n", argv[k]);
            failed++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (argc > 1) {
            int wanted = 0;
            for (int k = 1; k < argc; k++)
                wanted |= strcmp(argv[k], cases[i].name) == 0;
            if (!wanted)
                continue;
        }
        double t0 = test_now();
        int bad = in_process != NULL && in_process[0] == '1'
                      ? test_run_here(&cases[i])
                      : test_run_isolated(&cases[i], limit_s);
        fprintf(stderr, "%s %s (%.3f s)\n", bad ? "FAIL" : "ok  ",
                cases[i].name, test_now() - t0);
        if (bad)
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
