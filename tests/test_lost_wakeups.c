/*
 * test_lost_wakeups.c -- the queue against glibc bug 25847, in glibc before
 * 2.41: a pthread_cond_signal(3) to a condition variable that several
 * threads wait on can wake none of them. A queue whose waiting poppers
 * shared a condition variable left an item queued, with idle poppers,
 * until a busy one came back for more; pushers waiting on a full queue
 * slept on beside the slot a pop freed.
 *
 * The bug's window cannot be hit on demand, so its effect is made here:
 * pthread_cond_wait and pthread_cond_signal are wrapped at link time
 * (-Wl,--wrap=...), in this program alone, and while a test arms it a
 * signal to a condition variable with two or more waiters is dropped.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <poolecho/queue.h>

#include "helpers.h"

#define WAKE_MS 5000

TestSuite(lost_wakeups, .timeout = 30);

/* ---- the wrapped calls ---------------------------------------------------- */

int __real_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
int __wrap_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
int __real_pthread_cond_signal(pthread_cond_t *c);
int __wrap_pthread_cond_signal(pthread_cond_t *c);

static atomic_bool losing;  /* drop signals to a condition with 2+ waiters */
static atomic_int lost;     /* signals dropped since armed */

/* Threads in pthread_cond_wait, by condition variable. (A wait cancelled
 * stays counted: no test here cancels one.) */
static pthread_mutex_t waits_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	pthread_cond_t *cond;
	int waiters;
} waits[32];

static void count_wait(pthread_cond_t *c, int change)
{
	pthread_mutex_lock(&waits_lock);
	for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++)
		if (waits[i].cond == c || (change > 0 && waits[i].waiters == 0)) {
			waits[i].cond = c;
			waits[i].waiters += change;
			break;
		}
	pthread_mutex_unlock(&waits_lock);
}

static int waiters_on(pthread_cond_t *c)
{
	int n = 0;

	pthread_mutex_lock(&waits_lock);
	for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++)
		if (waits[i].cond == c)
			n += waits[i].waiters;
	pthread_mutex_unlock(&waits_lock);
	return n;
}

int __wrap_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	int rc;

	count_wait(c, 1);
	rc = __real_pthread_cond_wait(c, m);
	count_wait(c, -1);
	return rc;
}

int __wrap_pthread_cond_signal(pthread_cond_t *c)
{
	if (atomic_load(&losing) && waiters_on(c) >= 2) {
		atomic_fetch_add(&lost, 1);
		return 0;
	}
	return __real_pthread_cond_signal(c);
}

/* ---- a push or a pop on a thread of its own --------------------------------- */

struct call {
	pe_queue *q;
	bool push;
	int value, rc;
	_Atomic pid_t tid;
	struct th_event started, done;
	pthread_t thread;
};

static struct th_event calls_returned; /* by any call */

static void *call_main(void *arg)
{
	struct call *c = arg;

	atomic_store(&c->tid, th_gettid());
	th_event_add(&c->started, 1);
	c->rc = c->push ? pe_queue_push(c->q, &c->value) : pe_queue_pop(c->q, &c->value);
	th_event_add(&c->done, 1);
	th_event_add(&calls_returned, 1);
	return NULL;
}

/* Start a push of VALUE (PUSH) or a pop on Q, and see it asleep in the call. */
static void call_start(struct call *c, pe_queue *q, bool push, int value)
{
	memset(c, 0, sizeof *c);
	c->q = q;
	c->push = push;
	c->value = value;
	th_event_init(&c->started);
	th_event_init(&c->done);
	cr_assert_eq(pthread_create(&c->thread, NULL, call_main, c), 0);
	cr_assert_eq(th_event_wait(&c->started, 1, WAKE_MS), 0, "a thread did not start");
	cr_assert_eq(th_wait_asleep(atomic_load(&c->tid), WAKE_MS), 'S',
	             "a %s never went to sleep", push ? "push on a full queue" : "pop on an empty one");
}

static void call_end(struct call *c)
{
	cr_assert_eq(th_join(c->thread, WAKE_MS), 0);
	th_event_destroy(&c->started);
	th_event_destroy(&c->done);
}

/* Wait for one of the two CALLS on Q to return. If neither does, WHAT was
 * not taken: close Q, so that both end, and fail. */
static void wait_one_returned(pe_queue *q, struct call calls[2], const char *what)
{
	int lost_now;

	if (th_event_wait(&calls_returned, 1, WAKE_MS) == 0)
		return;
	lost_now = atomic_load(&lost);
	pe_queue_close(q);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(th_join(calls[i].thread, WAKE_MS), 0);
	cr_assert_fail("%s was not taken in %d ms (%d signal(s) lost)", what, WAKE_MS, lost_now);
}

/* Two poppers wait on an empty queue; a push while signals to a condition
 * with two waiters are lost still wakes one, and a second push the other:
 * each popper is woken through a wake-up of its own. */
Test(lost_wakeups, a_push_wakes_a_popper_although_shared_signals_are_lost)
{
	static struct call pop[2];
	pe_queue *q;
	int first, v;

	cr_assert_eq(pe_queue_create(&q, 4, sizeof(int)), 0);
	th_event_init(&calls_returned);
	for (int i = 0; i < 2; i++)
		call_start(&pop[i], q, false, -1);

	v = 1;
	atomic_store(&lost, 0);
	atomic_store(&losing, true);
	cr_assert_eq(pe_queue_push(q, &v), 0);
	atomic_store(&losing, false);
	wait_one_returned(q, pop, "an item pushed while two poppers waited");
	first = th_event_wait(&pop[0].done, 1, 0) == 0 ? 0 : 1;
	cr_assert_eq(pop[first].rc, 0);
	cr_assert_eq(pop[first].value, 1);

	v = 2;
	cr_assert_eq(pe_queue_push(q, &v), 0);
	cr_assert_eq(th_event_wait(&pop[1 - first].done, 1, WAKE_MS), 0,
	             "the second popper was not woken by the second push");
	cr_assert_eq(pop[1 - first].rc, 0);
	cr_assert_eq(pop[1 - first].value, 2);
	for (int i = 0; i < 2; i++)
		call_end(&pop[i]);
	th_event_destroy(&calls_returned);
	cr_expect_eq(pe_queue_length(q), 0);
	pe_queue_destroy(q);
	TH_ASSERT_NO_LEAKS();
}

/* Two pushers wait on a full queue of one; a pop while signals to a
 * condition with two waiters are lost still lets one push, and a second
 * pop the other. */
Test(lost_wakeups, a_pop_wakes_a_pusher_although_shared_signals_are_lost)
{
	static struct call push[2];
	pe_queue *q;
	int v = 0;

	cr_assert_eq(pe_queue_create(&q, 1, sizeof(int)), 0);
	cr_assert_eq(pe_queue_try_push(q, &v), 0);
	th_event_init(&calls_returned);
	for (int i = 0; i < 2; i++)
		call_start(&push[i], q, true, 1 + i);

	atomic_store(&lost, 0);
	atomic_store(&losing, true);
	cr_assert_eq(pe_queue_try_pop(q, &v), 0);
	atomic_store(&losing, false);
	cr_assert_eq(v, 0);
	wait_one_returned(q, push, "a slot freed while two pushers waited");
	cr_assert_eq(pe_queue_try_pop(q, &v), 0);
	cr_assert(v == 1 || v == 2, "popped %d, pushed 1 and 2", v);
	cr_assert_eq(th_event_wait(&calls_returned, 2, WAKE_MS), 0,
	             "the second pusher did not push after the second pop");
	cr_assert_eq(pe_queue_try_pop(q, &v), 0);
	for (int i = 0; i < 2; i++) {
		call_end(&push[i]);
		cr_expect_eq(push[i].rc, 0);
	}
	th_event_destroy(&calls_returned);
	cr_expect_eq(pe_queue_length(q), 0);
	pe_queue_destroy(q);
	TH_ASSERT_NO_LEAKS();
}
