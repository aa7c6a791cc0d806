/*
 * queue.c -- the bounded FIFO between the accept loop and the workers: a
 * ring of fixed-size items and one mutex. A popper that must wait waits on
 * a semaphore of its own, on a stack of idle poppers; pushers share a
 * condition variable. Wake-ups go out only when someone waits, so the
 * common hand-off to an already-running worker costs a lock and a memcpy,
 * no futex wake; and they go out after the unlock, so no hand-off holds
 * the lock across one.
 *
 * Why a semaphore each: a push wakes one named popper, never "one of those
 * waiting on a condition variable". glibc before 2.41 can lose a signal to
 * a condition variable that several threads wait on (glibc bug 25847), and
 * the item would then wait for a busy popper to come back. For the same
 * bug a pop signals not_full only while one pusher waits, and broadcasts
 * to several (poolechod has one pusher; the bug is the signal's). The woken
 * popper takes the mutex uncontended, where one back from a condition wait
 * marks it contended and its unlock makes a system call. The newest idle
 * popper is woken first: its stack is the warmest.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <poolecho/queue.h>

#include "monotonic.h"

/* A popper waiting for an item, on its own stack. It is unlinked and marked
 * woken, with the lock held, by whoever posts its semaphore; the post comes
 * after the unlock, so the popper stays until it has taken that post. */
struct idle_popper {
	sem_t wake;
	struct idle_popper *next;
	int woken;
};

struct pe_queue {
	pthread_mutex_t lock;
	pthread_cond_t not_full;   /* pushers and wait_space wait here */
	size_t capacity, item_size;
	size_t head, length;       /* oldest item at head */
	struct idle_popper *idle;  /* waiting poppers, newest first */
	unsigned waiting_push;
	unsigned pops_due;         /* poppers woken, not yet back under the lock */
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
	if ((rc = pe_cond_init_monotonic(&q->not_full)) != 0)
		goto no_not_full;
	*out = q;
	return 0;
no_not_full:
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
	pthread_mutex_destroy(&q->lock);
	free(q->items);
	free(q);
}

/* The newest idle popper, unlinked and counted as due, for the caller to
 * post once the lock is released; NULL if none waits. The lock is held. */
static struct idle_popper *wake_popper_locked(pe_queue *q)
{
	struct idle_popper *p = q->idle;

	if (!p)
		return NULL;
	q->idle = p->next;
	p->woken = 1;
	q->pops_due++;
	return p;
}

/* Both run with the lock held, and return whom to wake once it is
 * released (NULL: nobody waits). A popper already woken takes an item when
 * it runs, so a push wakes one more only while one is idle. */
static struct idle_popper *put_locked(pe_queue *q, const void *item)
{
	size_t tail = (q->head + q->length) % q->capacity;

	memcpy(q->items + tail * q->item_size, item, q->item_size);
	q->length++;
	return wake_popper_locked(q);
}

/* ... or how many pushers wait, to be woken for the slot freed. */
static unsigned take_locked(pe_queue *q, void *item)
{
	memcpy(item, q->items + q->head * q->item_size, q->item_size);
	q->head = (q->head + 1) % q->capacity;
	q->length--;
	return q->waiting_push;
}

/* Wake after the unlock: a wake-up is a system call, and a waiter woken
 * while the lock is still held would only block again on the mutex.
 * A waiter counted under the lock is already inside its wait, or about to
 * enter it, so it cannot miss the wake-up; one woken for an item another
 * thread took first finds the queue empty and waits again. */
static void unlock_then_wake(pe_queue *q, struct idle_popper *popper, unsigned pushers)
{
	pthread_mutex_unlock(&q->lock);
	if (popper)
		sem_post(&popper->wake);
	if (pushers == 1)
		pthread_cond_signal(&q->not_full);
	else if (pushers > 1)
		pthread_cond_broadcast(&q->not_full);
}

/* The pushers to wake for a slot free now, if any. The lock is held. */
static unsigned pushers_for_space_locked(const pe_queue *q)
{
	return q->length < q->capacity ? q->waiting_push : 0;
}

/* sem_wait(3) until it takes the post: it fails only with EINTR, when a
 * signal handler ran. */
static void take_post(struct idle_popper *self)
{
	while (sem_wait(&self->wake) != 0)
		;
}

struct popper_wait {
	pe_queue *q;
	struct idle_popper *self;
};

/* A popper's thread was cancelled (pthread_cancel(3)) in its wait, which
 * is a cancellation point, without the lock. Unlink it; if it was woken
 * meanwhile, the wake-up may have been meant for an item: pass it on, and
 * take the post still to come, or it would land on a stack that is gone. */
static void pop_cancelled(void *arg)
{
	const struct popper_wait *w = arg;
	pe_queue *q = w->q;
	struct idle_popper *self = w->self, *next = NULL;
	int state;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	pthread_mutex_lock(&q->lock);
	if (self->woken) {
		q->pops_due--;
		if (q->length > 0)
			next = wake_popper_locked(q);
	} else {
		struct idle_popper **link = &q->idle;

		while (*link != self)
			link = &(*link)->next;
		*link = self->next;
	}
	unlock_then_wake(q, next, 0);
	if (self->woken)
		take_post(self);
	sem_destroy(&self->wake);
}

/* Wait as an idle popper until woken, by a push or the close; the lock is
 * held on entry and on return. */
static void wait_for_item(pe_queue *q)
{
	struct idle_popper self = {.next = q->idle, .woken = 0};
	struct popper_wait w = {q, &self};

	/* Neither of sem_init's errors (a value above SEM_VALUE_MAX, a shared
	 * semaphore where none can be) applies to this one. */
	(void)sem_init(&self.wake, 0, 0);
	q->idle = &self;
	pthread_mutex_unlock(&q->lock);
	pthread_cleanup_push(pop_cancelled, &w);
	take_post(&self);
	pthread_cleanup_pop(0);
	sem_destroy(&self.wake);
	pthread_mutex_lock(&q->lock);
	q->pops_due--;
}

/* A pusher's thread was cancelled in its wait on not_full, which returns
 * with the lock held: undo what the wait counted and let go of the lock,
 * or every later call on the queue would block on it for good. The
 * cancelled wait may have taken the wake-up meant for a free slot: pass it
 * on. */
static void push_cancelled(void *arg)
{
	pe_queue *q = arg;

	q->waiting_push--;
	unlock_then_wake(q, NULL, pushers_for_space_locked(q));
}

/* Wait on Q's not_full until DEADLINE on CLOCK_MONOTONIC (NULL: no limit);
 * the lock is held. Whether it timed out. (RC through a pointer: a local
 * set between pthread_cleanup_push, a setjmp in glibc's C, and its pop
 * draws gcc's -Wclobbered, although a cancelled thread never reads it.) */
static int wait_not_full_once(pe_queue *q, const struct timespec *deadline)
{
	int rc_store, *rc = &rc_store;

	q->waiting_push++;
	pthread_cleanup_push(push_cancelled, q);
	if (deadline)
		*rc = pthread_cond_timedwait(&q->not_full, &q->lock, deadline);
	else
		*rc = pthread_cond_wait(&q->not_full, &q->lock);
	pthread_cleanup_pop(0);
	q->waiting_push--;
	return deadline && *rc != 0;
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
	struct idle_popper *popper = NULL;
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = wait_not_full_locked(q, NULL);
	if (rc == 0)
		popper = put_locked(q, item);
	unlock_then_wake(q, popper, 0);
	return rc;
}

int pe_queue_try_push(pe_queue *q, const void *item)
{
	struct idle_popper *popper = NULL;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	/* Full, but a popper woken for an item is on its way to take one:
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
		popper = put_locked(q, item);
	unlock_then_wake(q, popper, 0);
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
	unlock_then_wake(q, NULL, rc == 0 ? pushers_for_space_locked(q) : 0);
	return rc;
}

int pe_queue_pop(pe_queue *q, void *item)
{
	unsigned pushers = 0;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	while (q->length == 0 && !q->closed)
		wait_for_item(q);
	if (q->length > 0)
		pushers = take_locked(q, item);
	else
		rc = -ESHUTDOWN;
	unlock_then_wake(q, NULL, pushers);
	return rc;
}

int pe_queue_try_pop(pe_queue *q, void *item)
{
	unsigned pushers = 0;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	if (q->length > 0)
		pushers = take_locked(q, item);
	else
		rc = q->closed ? -ESHUTDOWN : -EAGAIN;
	unlock_then_wake(q, NULL, pushers);
	return rc;
}

void pe_queue_close(pe_queue *q)
{
	struct idle_popper *woken = NULL, *p;

	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	while ((p = wake_popper_locked(q)) != NULL) {
		p->next = woken;
		woken = p;
	}
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
	/* Each popper stays until it has its post: read on before posting. */
	while ((p = woken) != NULL) {
		woken = p->next;
		sem_post(&p->wake);
	}
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
