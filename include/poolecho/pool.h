/*
 * poolecho/pool.h -- a fixed pool of worker threads fed by a pe_queue.
 *
 * Each worker pops an item and hands it to the handler, again and again,
 * until the queue is closed and empty; then it returns. The pool knows
 * nothing of what the items are: poolechod's handler echoes a socket.
 */
#ifndef POOLECHO_POOL_H
#define POOLECHO_POOL_H

#include <stddef.h>

#include <poolecho/queue.h>
#include <poolecho/visibility.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pe_pool pe_pool;

/* Called on worker WORKER (0 .. size-1) for every item it pops. ITEM points
 * to a copy owned by the worker for the duration of the call, aligned for
 * any type (as malloc(3)'s memory is), so it may be read in place. */
typedef void pe_pool_handler(void *ctx, unsigned worker, void *item);

struct pe_pool_config {
	unsigned workers;        /* >= 1 */
	size_t stack_size;       /* bytes per worker stack, raised to PTHREAD_STACK_MIN, and
	                          * the program's static TLS added, which glibc takes from
	                          * it; 0 = the system default */
	int batch_scheduling;    /* Linux: run workers as SCHED_BATCH (no wake-up preemption)
	                          * when they would run as SCHED_OTHER. A plain SCHED_OTHER
	                          * caller of pe_pool_start runs as SCHED_BATCH while it
	                          * creates them (they inherit it), then SCHED_OTHER again;
	                          * a caller with another policy (SCHED_IDLE, SCHED_FIFO) is
	                          * left alone, and so are its workers, which inherit it. */
	pe_queue *queue;         /* items come from here; the pool does not own it */
	pe_pool_handler *handler;
	void *ctx;               /* passed to the handler */
};

/* Start every worker. Workers run with every signal blocked but those of a
 * fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS), whatever the
 * caller's mask: a process-directed signal goes to one of the application's
 * own threads, SIGPIPE raised in a worker is never delivered, and a crash
 * in a handler still reaches the program's crash handler.
 * 0, -EINVAL (a NULL argument, no workers, queue or handler, or a stack size
 * the system rejects) or -ENOMEM, or the error of pthread_create(3) as a
 * negative errno (-EAGAIN when the system refuses a thread, as glibc's does
 * for a stack too large to map). If workers had started when a thread was
 * refused, they are stopped again, which closes the queue, and joined
 * before this returns: items already queued are handled by them first,
 * never dropped. On any other failure the queue is left as it was. */
PE_API int pe_pool_start(pe_pool **out, const struct pe_pool_config *cfg);

/* Wait for every worker to return; they return once the queue is closed and
 * drained, and each handler call has returned: nothing is cancelled, so a
 * handler blocked in a call nothing wakes holds this up for good (wake it
 * first). Then free the pool. NULL is allowed. Not from a handler: a
 * worker cannot wait for itself (a handler stops the pool by closing the
 * queue, and another thread joins it). Nor in a child of fork(2): the
 * workers are the parent's. */
PE_API void pe_pool_join(pe_pool *pool);

/* The number of workers, cfg->workers: fixed, so from any thread. */
PE_API unsigned pe_pool_size(const pe_pool *pool);

#ifdef __cplusplus
}
#endif

#endif /* POOLECHO_POOL_H */
