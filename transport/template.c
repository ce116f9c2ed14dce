/*
 * The fork server, template side (see forkserver.h): a process started as
 * a template waits on its control socket and, for each FORK, clones a node
 * process that is its parent's child (CLONE_PARENT). The clone returns
 * from gr__template_serve() into gr_node_main()'s node path; the template
 * itself never returns from it.
 *
 * Why clone and not fork(): a fork()ed node would be the template's child,
 * and only a process's parent can read its exit status, which the parent
 * needs to report exits ("killed by SIGKILL") as today. The clone is made
 * as glibc's fork() makes its child (CLONE_CHILD_SETTID and _CLEARTID at
 * the thread id glibc keeps, so pthread_self()'s tid is the node's own;
 * the robust-mutex list registered again), minus what fork() does for
 * threads that hold locks across it: a template is single-threaded, which
 * it checks before it serves. pthread_atfork handlers do not run.
 */
#define _GNU_SOURCE /* CLONE_*, syscall(), PR_*, MSG_CMSG_CLOEXEC. */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "actor/runtime.h"
#include "transport/forkserver.h"

/* clone3()'s argument, version 0 (linux/sched.h's struct clone_args,
 * which cannot be included beside sched.h). */
struct clone3_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
        stack_size, tls;
};

/* What a node cloned from the template needs of the template's setup. */
typedef struct template_state {
    int ctl;
    pid_t *tid_addr;   /* Where glibc keeps this thread's id. */
    void *robust_head; /* glibc's robust-mutex list head... */
    size_t robust_len; /* ...and its size, for set_robust_list. */
    char comm[16];     /* The program's name, for the nodes. */
} template_state;

/* How many threads this process has (from /proc), or -1. */
static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    int n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Sends one control message; false when the parent is gone. */
static bool send_msg(int ctl, uint32_t kind, uint32_t seq, int32_t value)
{
    gr__tpl_msg m = {
        .magic = GR__TPL_MAGIC, .kind = kind, .seq = seq, .value = value};
    ssize_t n;
    while ((n = send(ctl, &m, sizeof m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)sizeof m;
}

/* Checks that this process can serve and gathers what its clones need;
 * returns 0 or a GR__TPL_* reason. */
static int setup(template_state *s)
{
    if (count_threads() != 1)
        return GR__TPL_THREADS;
    /* glibc registered it with set_tid_address at start: its thread
     * descriptor's tid field, which fork() has the kernel fill in. */
    if (prctl(PR_GET_TID_ADDRESS, &s->tid_addr, 0, 0, 0) != 0 ||
        s->tid_addr == NULL || *s->tid_addr != gettid())
        return GR__TPL_NO_TID;
    if (syscall(SYS_get_robust_list, 0, &s->robust_head, &s->robust_len) != 0 ||
        prctl(PR_GET_NAME, s->comm, 0, 0, 0) != 0)
        return GR__TPL_SETUP;
    return 0;
}

/* Clones a node process, the parent's child; returns as fork() does. */
static pid_t clone_node(const template_state *s)
{
    const uint64_t flags =
        CLONE_PARENT | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    long pid = -1;
    errno = ENOSYS;
    /* No exit signal of its own: with CLONE_PARENT the child takes the
     * template's, SIGCHLD (clone3 refuses any other with CLONE_PARENT). */
#ifdef SYS_clone3
    struct clone3_args a = {.flags = flags,
                            .child_tid = (uint64_t)(uintptr_t)s->tid_addr};
    pid = syscall(SYS_clone3, &a, sizeof a);
#endif
#if defined(__x86_64__)
    /* Older kernels, and seccomp filters that refuse clone3 with ENOSYS
     * so that callers fall back (as glibc does): x86-64's argument order
     * (flags, stack, parent_tid, child_tid, tls). */
    if (pid < 0 && errno == ENOSYS)
        pid = syscall(SYS_clone, flags, 0, NULL, s->tid_addr, 0);
#endif
    return (pid_t)pid;
}

/* In a node just cloned: what glibc's fork() child does for a process
 * that was single-threaded, then the parent learns the pid and the
 * template's socket is closed. */
static void become_node(const template_state *s, uint32_t seq)
{
    /* The kernel gives a new process no robust list; glibc's fork()
     * registers the (empty: no lock is held) list again. */
    (void)syscall(SYS_set_robust_list, s->robust_head, s->robust_len);
    /* Its own name before the parent knows it: once started, a node
     * never shows as the template. */
    (void)prctl(PR_SET_NAME, s->comm, 0, 0, 0);
    if (!send_msg(s->ctl, GR__TPL_FORKED, seq, (int32_t)getpid()))
        _exit(1); /* The parent is gone: so is this node's reason to be. */
    close(s->ctl);
}

/* Reads one FORK request: its seq and the descriptor it carries. Returns
 * 1, 0 at EOF (the parent is gone), or -1 for a message that is not a
 * FORK with one descriptor (any descriptors it carried are closed). */
static int read_request(int ctl, uint32_t *seq, int *fd)
{
    gr__tpl_msg m;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } cbuf;
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cbuf.buf,
                        .msg_controllen = sizeof cbuf.buf};
    ssize_t n;
    while ((n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n <= 0)
        return n == 0 ? 0 : -2;
    int nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL;
         c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++, nfds++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (nfds == 0)
                *fd = got;
            else
                close(got);
        }
    }
    *seq = m.seq;
    bool ok = n == (ssize_t)sizeof m && m.magic == GR__TPL_MAGIC &&
              m.kind == GR__TPL_FORK && nfds == 1 &&
              !(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC));
    if (!ok && nfds > 0)
        close(*fd);
    return ok ? 1 : -1;
}

int gr__template_serve(int ctl, int *link_fd, const char **why)
{
    template_state s = {.ctl = ctl};
    int refused = setup(&s);
    if (refused != 0) {
        (void)send_msg(ctl, GR__TPL_REFUSED, 0, refused);
        *why = "cannot serve as a template";
        return GR_EINVAL;
    }
    /* As a node does: Ctrl-C reaches the whole process group, and the
     * root stops its nodes in order; the template stays for that. */
    signal(SIGINT, SIG_IGN);
    /* Nothing main() buffered may be written again by every node. */
    fflush(NULL);
    /* What every node would find out alike, found out once here. */
    gr__stack_probe();
    (void)prctl(PR_SET_NAME, GR__TEMPLATE_COMM, 0, 0, 0);
    if (!send_msg(ctl, GR__TPL_READY, 0, (int32_t)getpid()))
        _exit(1); /* The parent is gone already. */
    for (;;) {
        uint32_t seq = 0;
        int fd = -1;
        int got = read_request(ctl, &seq, &fd);
        if (got == 0)
            _exit(0); /* The parent closed the socket, or died: no orphan. */
        if (got == -2)
            _exit(1);
        if (got < 0) {
            (void)send_msg(ctl, GR__TPL_FAILED, seq, EBADMSG);
            continue;
        }
        pid_t pid = clone_node(&s);
        if (pid == 0) {
            become_node(&s, seq);
            *link_fd = fd;
            return GR_OK;
        }
        int err = errno;
        close(fd);
        if (pid < 0)
            (void)send_msg(ctl, GR__TPL_FAILED, seq, err);
    }
}
