/*
 * Grove inboxes: mailboxes for threads that are not actors.
 *
 * main(), a test or an embedding application opens an inbox to get a
 * reference that actors can send to, then waits for messages with
 * gr_inbox_recv(). Thread safety: an inbox has one owner thread, which
 * alone may call gr_inbox_recv() and gr_inbox_close(); any thread may send
 * to gr_inbox_ref(). Inboxes must not be used from inside handlers.
 */
#ifndef GROVE_INBOX_H
#define GROVE_INBOX_H

#include <grove/actor.h>

/* An inbox owned by one non-actor thread; opaque. */
typedef struct gr_inbox gr_inbox;

/*
 * Opens an inbox in the system and stores it in *out. The calling thread
 * owns it and must close it with gr_inbox_close() before the system shuts
 * down (a shutdown waits for other threads to close theirs, and refuses
 * with GR_EBUSY while any stays open; see gr_system_shutdown()).
 * Returns GR_OK, GR_ENOMEM, GR_ELIMIT, GR_ESTOPPED or GR_EWRONGTHREAD.
 */
GR_API int gr_inbox_open(gr_system *sys, gr_inbox **out);

/* Returns the reference actors send to in order to reach this inbox. */
GR_API gr_ref gr_inbox_ref(const gr_inbox *inbox);

/*
 * Waits up to timeout (a gr_duration: GR_DURATION_ZERO does not wait;
 * GR_DURATION_INFINITE and GR_DURATION_DEFAULT wait for ever) for the next
 * message and stores it in *out. The caller owns the message and frees it
 * with gr_msg_free(). Returns GR_OK, GR_ETIMEDOUT, GR_EINVAL (a timeout
 * below GR_DURATION_DEFAULT), GR_EWRONGTHREAD (a thread other than the
 * owner, or a wait inside a callback) or
 * GR_ESTOPPED: the system is stopping (gr_system_stop(), SIGINT/SIGTERM
 * under gr_system_run(), or a shutdown began) and the inbox is empty. A
 * waiting owner is woken for it. Messages already queued are still
 * returned first; on GR_ESTOPPED, close the inbox so the shutdown can go
 * on.
 */
GR_API int gr_inbox_recv(gr_inbox *inbox, gr_msg **out, gr_duration timeout);

/* Frees a message returned by gr_inbox_recv(); NULL is ignored. */
GR_API void gr_msg_free(gr_msg *msg);

/*
 * Closes the inbox: its reference stops resolving, queued messages become
 * dead letters, and its memory is freed. NULL is ignored. Only the owner
 * may close it (another thread's close aborts the program with a message
 * that says so: it would free the inbox under the owner's feet).
 */
GR_API void gr_inbox_close(gr_inbox *inbox);

#endif
