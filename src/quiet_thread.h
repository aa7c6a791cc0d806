/*
 * quiet_thread.h -- threads of the library's own take no process signals:
 * those go to the embedding program's threads. Only a fault's signals stay
 * open, so that a crash still reaches its handler or a sanitizer's report.
 */
#ifndef POOLECHO_QUIET_THREAD_H
#define POOLECHO_QUIET_THREAD_H

#include <pthread.h>
#include <signal.h>

/* Block every signal but a fault's in the calling thread, keeping its old
 * mask in OLD: threads it creates meanwhile inherit that mask. Undo with
 * pthread_sigmask(SIG_SETMASK, OLD, NULL). */
void pe_quiet_signals(sigset_t *old);

#endif /* POOLECHO_QUIET_THREAD_H */
