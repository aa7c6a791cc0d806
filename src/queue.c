/*
 * queue.c -- the bounded FIFO between the accept loop and the workers: a
 * ring of fixed-size items, one mutex, and a condition variable for each
 * side. Signals go out only when someone waits, so the common hand-off to
 * an already-running worker costs a lock and a memcpy, no futex wake; and
 * they go out after the unlock, so no hand-off holds the lock across one.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <poolecho/queue.h>

#include "monotonic.h"

struct pe_queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;  /* poppers wait here */
	pthread_cond_t not_full;   /* pushers and wait_space wait here */
	size_t capacity, item_size;
	size_t head, length;       /* oldest item at head */
	unsigned waiting_pop, waiting_push;
	unsigned pops_due;         /* poppers signalled for an item, not yet awake */
	int closed;
	unsigned char *items;
};

int pe_queue_create(pe_queue **out, size_t capacity, size_t item_size)
{
	pe_queue *q;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (capacity == 0 || item_size == 0 || capacity > SIZE_MAX / item_size)
		return -EINVAL;
	q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	q->items = malloc(capacity * item_size);
	if (!q->items) {
		free(q);
		return -ENOMEM;
	}
	q->capacity = capacity;
	q->item_size = item_size;
	/* POSIX lets each of these fail (EAGAIN, ENOMEM); only what was made
	 * is destroyed. */
	if ((rc = pthread_mutex_init(&q->lock, NULL)) != 0)
		goto no_lock;
	if ((rc = pthread_cond_init(&q->not_empty, NULL)) != 0)
		goto no_not_empty;
	if ((rc = pe_cond_init_monotonic(&q->not_full)) != 0)
		goto no_not_full;
	*out = q;
	return 0;
no_not_full:
	pthread_cond_destroy(&q->not_empty);
no_not_empty:
	pthread_mutex_destroy(&q->lock);
no_lock:
	free(q->items);
	free(q);
	return -rc;
}

void pe_queue_destroy(pe_queue *q)
{
	if (!q)
		return;
	pthread_cond_destroy(&q->not_full);
	pthread_cond_destroy(&q->not_empty);
	pthread_mutex_destroy(&q->lock);
	free(q->items);
	free(q);
}

/* Both run with the lock held, and return the condition variable to signal
 * once it is released (NULL: nobody waits). */
static pthread_cond_t *put_locked(pe_queue *q, const void *item)
{
	size_t tail = (q->head + q->length) % q->capacity;

	memcpy(q->items + tail * q->item_size, item, q->item_size);
	q->length++;
	/* A popper already signalled takes an item when it wakes: signal one
	 * that is not, if any. */
	if (q->waiting_pop <= q->pops_due)
		return NULL;
	q->pops_due++;
	return &q->not_empty;
}

static pthread_cond_t *take_locked(pe_queue *q, void *item)
{
	memcpy(item, q->items + q->head * q->item_size, q->item_size);
	q->head = (q->head + 1) % q->capacity;
	q->length--;
	return q->waiting_push ? &q->not_full : NULL;
}

/* Signal after the unlock: a signal is a system call, and a waiter woken
 * while the lock is still held would only block again on the mutex.
 * A waiter counted under the lock is already inside its wait, so it
 * cannot miss the signal; one woken for an item another thread took
 * first finds the queue empty and waits again. */
static void unlock_then_signal(pe_queue *q, pthread_cond_t *waiter)
{
	pthread_mutex_unlock(&q->lock);
	if (waiter)
		pthread_cond_signal(waiter);
}

/* A waiting call's thread was cancelled (pthread_cancel(3)): a condition
 * wait is a cancellation point, and returns there with the lock held.
 * Undo what the wait counted and let go of the lock, or every later call
 * on the queue would block on it for good. The cancelled wait may have
 * taken the wake-up meant for an item or a free slot: pass it on. */
static void pop_cancelled(void *arg)
{
	pe_queue *q = arg;
	pthread_cond_t *waiter = NULL;

	q->waiting_pop--;
	if (q->pops_due > 0)
		q->pops_due--;
	if (q->length > 0 && q->waiting_pop > q->pops_due) {
		q->pops_due++;
		waiter = &q->not_empty;
	}
	unlock_then_signal(q, waiter);
}

static void push_cancelled(void *arg)
{
	pe_queue *q = arg;

	q->waiting_push--;
	unlock_then_signal(q, q->waiting_push && q->length < q->capacity ? &q->not_full : NULL);
}

/* Wait on COND with Q's lock held, until DEADLINE on CLOCK_MONOTONIC
 * (NULL: no limit), CANCELLED undoing the wait if the thread is cancelled
 * in it; *RC gets what the wait returned. (Through a pointer: a local
 * set between pthread_cleanup_push, a setjmp in glibc's C, and its pop
 * draws gcc's -Wclobbered, although a cancelled thread never reads it.) */
static void wait_cancellable(pe_queue *q, pthread_cond_t *cond, void (*cancelled)(void *),
                             const struct timespec *deadline, int *rc)
{
	pthread_cleanup_push(cancelled, q);
	*rc = deadline ? pthread_cond_timedwait(cond, &q->lock, deadline)
	               : pthread_cond_wait(cond, &q->lock);
	pthread_cleanup_pop(0);
}

/* Wait on Q's not_full until DEADLINE on CLOCK_MONOTONIC (NULL: no limit);
 * the lock is held. Whether it timed out. */
static int wait_not_full_once(pe_queue *q, const struct timespec *deadline)
{
	int rc;

	q->waiting_push++;
	wait_cancellable(q, &q->not_full, push_cancelled, deadline, &rc);
	q->waiting_push--;
	return deadline && rc != 0;
}

/* Wait while full and open, until DEADLINE on CLOCK_MONOTONIC (NULL: no
 * limit); the lock is held. 0, -ETIMEDOUT or -ESHUTDOWN. */
static int wait_not_full_locked(pe_queue *q, const struct timespec *deadline)
{
	int timed_out = 0;

	while (!q->closed && q->length == q->capacity && !timed_out)
		timed_out = wait_not_full_once(q, deadline);
	if (q->closed)
		return -ESHUTDOWN;
	return q->length == q->capacity ? -ETIMEDOUT : 0;
}

int pe_queue_push(pe_queue *q, const void *item)
{
	pthread_cond_t *waiter = NULL;
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = wait_not_full_locked(q, NULL);
	if (rc == 0)
		waiter = put_locked(q, item);
	unlock_then_signal(q, waiter);
	return rc;
}

int pe_queue_try_push(pe_queue *q, const void *item)
{
	pthread_cond_t *waiter = NULL;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	/* Full, but a popper signalled for an item is on its way to take one:
	 * its space is as good as free. Refused instead, a burst of clients
	 * was rejected while workers sat idle (most of 32, with a queue of 1
	 * and 64 workers). The wait is a wake-up's latency. Each wait is short
	 * and the count looked at again, as another pusher may be the one
	 * woken for the space. */
	while (!q->closed && q->length == q->capacity && q->pops_due > 0) {
		struct timespec soon;

		clock_gettime(CLOCK_MONOTONIC, &soon);
		pe_timespec_add_ms(&soon, 1);
		wait_not_full_once(q, &soon);
	}
	if (q->closed)
		rc = -ESHUTDOWN;
	else if (q->length == q->capacity)
		rc = -EAGAIN;
	else
		waiter = put_locked(q, item);
	unlock_then_signal(q, waiter);
	return rc;
}

int pe_queue_wait_space(pe_queue *q)
{
	return pe_queue_wait_space_for(q, -1);
}

int pe_queue_wait_space_for(pe_queue *q, int timeout_ms)
{
	struct timespec deadline;
	int rc;

	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		pe_timespec_add_ms(&deadline, (unsigned long)timeout_ms);
	}
	pthread_mutex_lock(&q->lock);
	rc = wait_not_full_locked(q, timeout_ms >= 0 ? &deadline : NULL);
	/* Several waiters may share one freed slot; pass the wake-up on so a
	 * waiting pusher is not left behind by a wait_space caller. */
	unlock_then_signal(q, rc == 0 && q->waiting_push && q->length < q->capacity ?
	                              &q->not_full : NULL);
	return rc;
}

int pe_queue_pop(pe_queue *q, void *item)
{
	pthread_cond_t *waiter = NULL;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	while (q->length == 0 && !q->closed) {
		int waited; /* a wait without a deadline returns 0 */

		q->waiting_pop++;
		wait_cancellable(q, &q->not_empty, pop_cancelled, NULL, &waited);
		q->waiting_pop--;
		/* Awake: signalled or not, one fewer is on its way. Counting a
		 * spurious wake-up as the signalled one errs on the safe side:
		 * too few due, never too many for try_push to wait on. */
		if (q->pops_due > 0)
			q->pops_due--;
	}
	if (q->length > 0)
		waiter = take_locked(q, item);
	else
		rc = -ESHUTDOWN;
	unlock_then_signal(q, waiter);
	return rc;
}

int pe_queue_try_pop(pe_queue *q, void *item)
{
	pthread_cond_t *waiter = NULL;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	if (q->length > 0)
		waiter = take_locked(q, item);
	else
		rc = q->closed ? -ESHUTDOWN : -EAGAIN;
	unlock_then_signal(q, waiter);
	return rc;
}

void pe_queue_close(pe_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

size_t pe_queue_length(pe_queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->length;
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t pe_queue_capacity(const pe_queue *q)
{
	return q->capacity;
}

size_t pe_queue_item_size(const pe_queue *q)
{
	return q->item_size;
}

int pe_queue_is_closed(pe_queue *q)
{
	int closed;

	pthread_mutex_lock(&q->lock);
	closed = q->closed;
	pthread_mutex_unlock(&q->lock);
	return closed;
}
