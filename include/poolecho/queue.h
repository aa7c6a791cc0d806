/*
 * poolecho/queue.h -- a bounded FIFO guarded by one mutex. It copies
 * fixed-size items and knows nothing of what they mean; poolechod queues
 * accepted sockets in it. A push wakes the popper that went idle last.
 *
 * Errors are negative errno values. Closing the queue is how shutdown is
 * told: it wakes every waiter, pushes fail with -ESHUTDOWN, and pops keep
 * returning queued items until the queue is empty, then -ESHUTDOWN.
 *
 * Threads: every call but pe_queue_create and pe_queue_destroy may run on
 * any number of threads at once. Q is never NULL but for pe_queue_destroy.
 * A call that waits (push, pop, the wait_space calls, and try_push for a
 * woken popper) is a cancellation point: a thread cancelled there
 * (pthread_cancel(3)) pushes or pops nothing and leaves the queue usable.
 */
#ifndef POOLECHO_QUEUE_H
#define POOLECHO_QUEUE_H

#include <stddef.h>

#include <poolecho/visibility.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pe_queue pe_queue;

/* Make a queue of CAPACITY (>= 1) items of ITEM_SIZE (>= 1) bytes each.
 * -EINVAL for a zero size, a CAPACITY x ITEM_SIZE beyond SIZE_MAX or a NULL
 * OUT, -ENOMEM, or the negative errno of the mutex or condition variable
 * that could not be made (-EAGAIN, -ENOMEM). */
PE_API int pe_queue_create(pe_queue **out, size_t capacity, size_t item_size);

/* Free the queue. No call on it may still be running, not even one about to
 * return: a push or pop wakes a waiter after it releases the lock, so
 * join the threads that use the queue first. Items still queued are
 * dropped (drain them first with pe_queue_try_pop when they own resources).
 * NULL is allowed. */
PE_API void pe_queue_destroy(pe_queue *q);

/* Copy ITEM in, blocking while the queue is full. 0, or -ESHUTDOWN once closed. */
PE_API int pe_queue_push(pe_queue *q, const void *item);

/* Copy ITEM in without waiting for a pop that has not begun. 0, -EAGAIN
 * when full, -ESHUTDOWN once closed. A full queue with a popper already
 * woken to take an item is not full: it waits the moment that popper
 * takes to run, so that a burst is not turned away while poppers sit idle. */
PE_API int pe_queue_try_push(pe_queue *q, const void *item);

/* Copy the oldest item out, blocking while the queue is empty and open.
 * 0, or -ESHUTDOWN when the queue is closed and empty. */
PE_API int pe_queue_pop(pe_queue *q, void *item);

/* Copy the oldest item out without blocking: 0, -EAGAIN when empty and
 * open, -ESHUTDOWN when closed and empty. */
PE_API int pe_queue_try_pop(pe_queue *q, void *item);

/* Block until a push would not block: 0, or -ESHUTDOWN once closed.
 * A single producer calls this before accept(2), so that back-pressure
 * stays in the kernel's listen backlog instead of in a held socket. */
PE_API int pe_queue_wait_space(pe_queue *q);

/* pe_queue_wait_space for at most TIMEOUT_MS (< 0: no limit), measured on
 * CLOCK_MONOTONIC: 0, -ETIMEDOUT while still full, or -ESHUTDOWN once
 * closed (closed outranks full). The accept loop waits this way so that it
 * can log what falls due meanwhile. */
PE_API int pe_queue_wait_space_for(pe_queue *q, int timeout_ms);

/* Close the queue and wake every waiter. Idempotent. */
PE_API void pe_queue_close(pe_queue *q);

/* Snapshots, for stats and tests: the length and the closed state may have
 * changed by the time they return; capacity and item size never change. */
PE_API size_t pe_queue_length(pe_queue *q);
PE_API size_t pe_queue_capacity(const pe_queue *q);
PE_API size_t pe_queue_item_size(const pe_queue *q);
PE_API int pe_queue_is_closed(pe_queue *q);

#ifdef __cplusplus
}
#endif

#endif /* POOLECHO_QUEUE_H */
