/*
 * test_queue.c -- the bounded queue: FIFO order, capacity, blocking push
 * and pop, close waking every waiter, and many threads moving every item
 * exactly once. Blocking is shown with a thread and a timed event.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <poolecho/queue.h>

#include "helpers.h"

/* How long a blocked call is watched to see that it stays blocked; only a
 * failure (returning early) is ever decided by this window. */
#define STILL_BLOCKED_MS 150
/* How long a woken call may take to return: generous, it is an upper bound. */
#define WAKE_MS 5000
/* A limit for timed waits that must end sooner, by a wake-up; below the
 * suite's timeout, so that a broken wake-up fails an assertion. */
#define LONG_WAIT_MS (3 * WAKE_MS)

static pe_queue *q; /* the suite's queue: 4 ints */

/* Calls started by op_start that have not returned yet. */
static atomic_int ops_running;

static void queue_setup(void)
{
	cr_assert_eq(pe_queue_create(&q, 4, sizeof(int)), 0);
}

static void queue_teardown(void)
{
	int64_t deadline = th_now_ms() + WAKE_MS;

	/* A test an assertion ended may leave calls blocked on the queue, and
	 * glibc's pthread_cond_destroy waits for every waiter: forever for one
	 * never woken. Close the queue to wake them; if some stay blocked (a
	 * close that wakes nobody is what failed), leave the queue alone. */
	if (atomic_load(&ops_running) > 0) {
		pe_queue_close(q);
		while (atomic_load(&ops_running) > 0 && th_ms_left(deadline) > 0)
			poll(NULL, 0, 1);
		if (atomic_load(&ops_running) > 0) {
			cr_log_info("%d queue call(s) still blocked: the queue is not destroyed",
			            atomic_load(&ops_running));
			return;
		}
	}
	pe_queue_destroy(q);
	q = NULL;
}

TestSuite(queue, .init = queue_setup, .fini = queue_teardown, .timeout = 30);

static void push_int(pe_queue *queue, int v)
{
	cr_assert_eq(pe_queue_try_push(queue, &v), 0, "try_push(%d) failed", v);
}

/* Fill the suite's queue with 0, 1, 2, 3. */
static void fill_suite_queue(void)
{
	for (int i = 0; i < 4; i++)
		push_int(q, i);
}

static int pop_int(pe_queue *queue)
{
	int v = -1, rc = pe_queue_try_pop(queue, &v);

	cr_assert_eq(rc, 0, "try_pop failed: %s", strerror(-rc));
	return v;
}

/* ---- a queue call run on its own thread, so a test can see it block --- */

enum op_kind { OP_PUSH, OP_POP, OP_WAIT_SPACE, OP_WAIT_SPACE_FOR };

struct op {
	pe_queue *queue;
	enum op_kind kind;
	int value;             /* pushed, popped, or the wait's limit in ms */
	int rc;
	struct th_event started, done;
	pthread_t thread;
	_Atomic pid_t tid;
};

static void *op_main(void *arg)
{
	struct op *op = arg;

	atomic_store(&op->tid, th_gettid());
	th_event_add(&op->started, 1);
	switch (op->kind) {
	case OP_PUSH:
		op->rc = pe_queue_push(op->queue, &op->value);
		break;
	case OP_POP:
		op->rc = pe_queue_pop(op->queue, &op->value);
		break;
	case OP_WAIT_SPACE:
		op->rc = pe_queue_wait_space(op->queue);
		break;
	case OP_WAIT_SPACE_FOR:
		op->rc = pe_queue_wait_space_for(op->queue, op->value);
		break;
	}
	th_event_add(&op->done, 1);
	atomic_fetch_sub(&ops_running, 1);
	return NULL;
}

static void op_start(struct op *op, pe_queue *queue, enum op_kind kind, int value)
{
	memset(op, 0, sizeof *op);
	op->queue = queue;
	op->kind = kind;
	op->value = value;
	op->rc = 1;
	th_event_init(&op->started);
	th_event_init(&op->done);
	atomic_fetch_add(&ops_running, 1);
	if (pthread_create(&op->thread, NULL, op_main, op) != 0) {
		atomic_fetch_sub(&ops_running, 1);
		cr_assert_fail("pthread_create failed");
	}
	cr_assert_eq(th_event_wait(&op->started, 1, WAKE_MS), 0, "op thread did not start");
}

static void op_assert_blocked(struct op *op, const char *what)
{
	cr_assert_eq(th_event_wait(&op->done, 1, STILL_BLOCKED_MS), -ETIMEDOUT,
	             "%s returned (rc %d) instead of blocking", what, op->rc);
#ifdef __linux__
	/* Not returned could also be not yet run: see the thread asleep in the
	 * call, and still not returned. */
	cr_assert_eq(th_wait_asleep(atomic_load(&op->tid), WAKE_MS), 'S',
	             "%s: its thread never went to sleep", what);
	cr_assert_eq(th_event_wait(&op->done, 1, 0), -ETIMEDOUT,
	             "%s returned (rc %d) instead of blocking", what, op->rc);
#endif
}

/* Wait for the call to return and join its thread; returns its rc. */
static int op_finish(struct op *op, const char *what)
{
	cr_assert_eq(th_event_wait(&op->done, 1, WAKE_MS), 0, "%s was never woken", what);
	cr_assert_eq(th_join(op->thread, WAKE_MS), 0);
	th_event_destroy(&op->started);
	th_event_destroy(&op->done);
	return op->rc;
}

/* ---- order and capacity ------------------------------------------------- */

Test(queue, create_rejects_zero_sizes)
{
	pe_queue *bad = (pe_queue *)&bad;

	cr_expect_eq(pe_queue_create(&bad, 0, sizeof(int)), -EINVAL);
	cr_expect_null(bad);
	bad = (pe_queue *)&bad;
	cr_expect_eq(pe_queue_create(&bad, 4, 0), -EINVAL);
	cr_expect_null(bad);
	cr_expect_eq(pe_queue_create(NULL, 4, sizeof(int)), -EINVAL, "no place for the queue");
	pe_queue_destroy(NULL);
	TH_ASSERT_NO_LEAKS();
}

/* capacity * item_size past SIZE_MAX would wrap to a small allocation that
 * pushes then overrun: refused before any allocation. */
Test(queue, create_rejects_a_size_that_overflows)
{
	pe_queue *bad = (pe_queue *)&bad;

	cr_expect_eq(pe_queue_create(&bad, SIZE_MAX / 2 + 2, 2), -EINVAL);
	cr_expect_null(bad);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, fifo_order_across_wraparound)
{
	int next_in = 0, next_out = 0;

	/* Three rounds of 3 in, 3 out move the ring's head past its end. */
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 3; i++)
			push_int(q, next_in++);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(pop_int(q), next_out++, "out of order in round %d", round);
	}
	for (int i = 0; i < 4; i++)
		push_int(q, next_in++);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pop_int(q), next_out++);
	cr_assert_eq(pe_queue_length(q), 0);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, capacity_honoured_and_try_push_fails_when_full)
{
	int v = 99;

	cr_assert_eq(pe_queue_capacity(q), 4);
	cr_assert_eq(pe_queue_item_size(q), sizeof(int));
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pe_queue_length(q), (size_t)i);
		push_int(q, i);
	}
	cr_assert_eq(pe_queue_try_push(q, &v), -EAGAIN);
	cr_assert_eq(pe_queue_length(q), 4);
	cr_assert_eq(pop_int(q), 0, "the refused item must not have replaced anything");
	push_int(q, 4);
	for (int i = 1; i <= 4; i++)
		cr_assert_eq(pop_int(q), i);
	TH_ASSERT_NO_LEAKS();
}

/* Closed wins over full: a caller told -EAGAIN would retry a queue that
 * will never take anything again. */
Test(queue, try_push_on_a_closed_full_queue_says_shutdown)
{
	int v = 7;

	for (int i = 0; i < 4; i++)
		push_int(q, i);
	pe_queue_close(q);
	cr_assert_eq(pe_queue_try_push(q, &v), -ESHUTDOWN);
	cr_assert_eq(pe_queue_length(q), 4);
	TH_ASSERT_NO_LEAKS();
}

/* try_push counts a popper already woken for an item as room: a burst
 * of pushes into a queue of 1, with 3 poppers asleep, is all taken, not
 * refused while they wake (poolechod's --overflow=reject turned away 18
 * of 32 clients of a burst with 64 workers idle). With no popper on its
 * way, a full queue still refuses at once. */
Test(queue, try_push_waits_for_a_woken_popper_not_for_a_busy_one)
{
	enum { POPPERS = 3 };
	static struct op pop[POPPERS];
	pe_queue *one;
	int seen = 0, v = 99;

	cr_assert_eq(pe_queue_create(&one, 1, sizeof(int)), 0);
	for (int i = 0; i < POPPERS; i++)
		op_start(&pop[i], one, OP_POP, -1);
	for (int i = 0; i < POPPERS; i++)
		op_assert_blocked(&pop[i], "pop on an empty queue");
	/* Back to back: the second comes before the first popper runs. */
	for (int i = 0; i < POPPERS; i++)
		cr_expect_eq(pe_queue_try_push(one, &i), 0, "push %d of a burst refused", i);
	for (int i = 0; i < POPPERS; i++) {
		cr_assert_eq(op_finish(&pop[i], "popper"), 0);
		seen |= 1 << pop[i].value;
	}
	cr_expect_eq(seen, (1 << POPPERS) - 1, "not every pushed item was popped");
	/* Nobody to wake: full is full. */
	push_int(one, 7);
	cr_expect_eq(pe_queue_try_push(one, &v), -EAGAIN);
	pe_queue_destroy(one);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, items_are_copied_in_and_out)
{
	struct item {
		char text[13];
		double x;
		unsigned char nul_and_high[3];
	} in = {"hello\0world", 2.5, {0, 0xff, 0x80}}, out;
	pe_queue *big;

	cr_assert_eq(pe_queue_create(&big, 2, sizeof in), 0);
	cr_assert_eq(pe_queue_push(big, &in), 0);
	memset(&in, 0xaa, sizeof in); /* the queue must hold its own copy */
	memset(&out, 0, sizeof out);
	cr_assert_eq(pe_queue_pop(big, &out), 0);
	cr_expect_eq(memcmp(out.text, "hello\0world", 12), 0);
	cr_expect_eq(out.x, 2.5);
	cr_expect_eq(out.nul_and_high[1], 0xff);
	pe_queue_destroy(big);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, try_pop_on_empty_says_eagain)
{
	int v = 7;

	cr_assert_eq(pe_queue_try_pop(q, &v), -EAGAIN);
	cr_assert_eq(v, 7, "a failed pop must not touch the item");
	TH_ASSERT_NO_LEAKS();
}

/* ---- blocking --------------------------------------------------------------- */

Test(queue, full_queue_blocks_push_until_a_pop)
{
	static struct op push;

	fill_suite_queue();
	op_start(&push, q, OP_PUSH, 100);
	op_assert_blocked(&push, "push on a full queue");
	cr_assert_eq(pe_queue_length(q), 4);
	cr_assert_eq(pop_int(q), 0);
	cr_assert_eq(op_finish(&push, "push"), 0);
	for (int i = 1; i < 4; i++)
		cr_assert_eq(pop_int(q), i);
	cr_assert_eq(pop_int(q), 100, "the blocked push must land last");
	TH_ASSERT_NO_LEAKS();
}

Test(queue, empty_queue_blocks_pop_until_a_push)
{
	static struct op pop;

	op_start(&pop, q, OP_POP, -1);
	op_assert_blocked(&pop, "pop on an empty queue");
	push_int(q, 42);
	cr_assert_eq(op_finish(&pop, "pop"), 0);
	cr_assert_eq(pop.value, 42);
	cr_assert_eq(pe_queue_length(q), 0);
	TH_ASSERT_NO_LEAKS();
}

/* A popper woken for an item that another thread took first (here a
 * try_pop just after the push, before the woken thread runs) finds the
 * queue empty but open: it waits again, and never returns -ESHUTDOWN, which
 * would end a pool's worker for good. The steal is a race the test thread
 * usually wins; tried until it did. */
Test(queue, a_popper_woken_for_an_item_taken_first_waits_again)
{
	int stolen = 0;

	for (int attempt = 0; attempt < 50 && stolen < 3; attempt++) {
		static struct op pop;
		int v = -1;

		op_start(&pop, q, OP_POP, -1);
		op_assert_blocked(&pop, "pop on an empty queue");
		push_int(q, attempt);
		if (pe_queue_try_pop(q, &v) == 0) {
			cr_assert_eq(v, attempt);
			stolen++;
			op_assert_blocked(&pop, "a pop woken for an item taken before it ran");
			push_int(q, 1000 + attempt);
			cr_assert_eq(op_finish(&pop, "pop"), 0);
			cr_assert_eq(pop.value, 1000 + attempt);
		} else {
			cr_assert_eq(op_finish(&pop, "pop"), 0); /* the popper won the race */
			cr_assert_eq(pop.value, attempt);
		}
	}
	cr_assert_gt(stolen, 0, "no item was ever taken ahead of the woken popper");
	cr_assert_eq(pe_queue_length(q), 0);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, close_wakes_every_blocked_pusher)
{
	enum { N = 4 };
	static struct op push[N];

	fill_suite_queue();
	for (int i = 0; i < N; i++)
		op_start(&push[i], q, OP_PUSH, 10 + i);
	for (int i = 0; i < N; i++)
		op_assert_blocked(&push[i], "push on a full queue");
	pe_queue_close(q);
	for (int i = 0; i < N; i++)
		cr_assert_eq(op_finish(&push[i], "pusher after close"), -ESHUTDOWN);
	cr_assert_eq(pe_queue_length(q), 4, "nothing may be pushed after close");
	TH_ASSERT_NO_LEAKS();
}

Test(queue, close_wakes_every_blocked_popper)
{
	enum { N = 4 };
	static struct op pop[N];

	for (int i = 0; i < N; i++)
		op_start(&pop[i], q, OP_POP, -1);
	for (int i = 0; i < N; i++)
		op_assert_blocked(&pop[i], "pop on an empty queue");
	pe_queue_close(q);
	for (int i = 0; i < N; i++)
		cr_assert_eq(op_finish(&pop[i], "popper after close"), -ESHUTDOWN);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, pop_drains_remaining_items_after_close)
{
	int v = 5;

	for (int i = 0; i < 3; i++)
		push_int(q, i);
	cr_assert_not(pe_queue_is_closed(q));
	pe_queue_close(q);
	pe_queue_close(q); /* idempotent */
	cr_assert(pe_queue_is_closed(q));
	cr_assert_eq(pe_queue_push(q, &v), -ESHUTDOWN);
	cr_assert_eq(pe_queue_try_push(q, &v), -ESHUTDOWN);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(pe_queue_pop(q, &v), 0, "item %d lost at close", i);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(pe_queue_pop(q, &v), -ESHUTDOWN);
	cr_assert_eq(pe_queue_try_pop(q, &v), -ESHUTDOWN);
	cr_assert_eq(pe_queue_wait_space(q), -ESHUTDOWN);
	TH_ASSERT_NO_LEAKS();
}

/* ---- wait_space ------------------------------------------------------------- */

Test(queue, wait_space_returns_at_once_when_not_full_and_takes_nothing)
{
	push_int(q, 1);
	cr_assert_eq(pe_queue_wait_space(q), 0);
	cr_assert_eq(pe_queue_length(q), 1, "wait_space must not reserve or push");
	TH_ASSERT_NO_LEAKS();
}

Test(queue, wait_space_blocks_while_full_then_a_push_fits)
{
	static struct op wait;
	int v = 9;

	fill_suite_queue();
	op_start(&wait, q, OP_WAIT_SPACE, 0);
	op_assert_blocked(&wait, "wait_space on a full queue");
	cr_assert_eq(pop_int(q), 0);
	cr_assert_eq(op_finish(&wait, "wait_space"), 0);
	cr_assert_eq(pe_queue_try_push(q, &v), 0, "wait_space said there was space");
	TH_ASSERT_NO_LEAKS();
}

Test(queue, close_wakes_wait_space)
{
	static struct op wait;

	fill_suite_queue();
	op_start(&wait, q, OP_WAIT_SPACE, 0);
	op_assert_blocked(&wait, "wait_space on a full queue");
	pe_queue_close(q);
	cr_assert_eq(op_finish(&wait, "wait_space after close"), -ESHUTDOWN);
	TH_ASSERT_NO_LEAKS();
}

/* ---- wait_space_for: the same, with a limit ------------------------------- */

Test(queue, wait_space_for_returns_at_once_when_not_full)
{
	push_int(q, 1);
	cr_assert_eq(pe_queue_wait_space_for(q, 0), 0);
	cr_assert_eq(pe_queue_wait_space_for(q, LONG_WAIT_MS), 0);
	cr_assert_eq(pe_queue_length(q), 1, "wait_space_for must not reserve or push");
	TH_ASSERT_NO_LEAKS();
}

/* It must wait the whole limit: the deadline is on the clock the condition
 * variable waits on. */
Test(queue, wait_space_for_times_out_while_full)
{
	int64_t t0, waited;

	fill_suite_queue();
	cr_assert_eq(pe_queue_wait_space_for(q, 0), -ETIMEDOUT);
	t0 = th_now_ms();
	cr_assert_eq(pe_queue_wait_space_for(q, 200), -ETIMEDOUT);
	waited = th_now_ms() - t0;
	cr_expect_geq(waited, 199, "a wait of 200 ms returned after %lld ms", (long long)waited);
	cr_assert_eq(pe_queue_length(q), 4);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, wait_space_for_wakes_when_a_slot_frees)
{
	static struct op wait;

	fill_suite_queue();
	op_start(&wait, q, OP_WAIT_SPACE_FOR, LONG_WAIT_MS);
	op_assert_blocked(&wait, "wait_space_for on a full queue");
	cr_assert_eq(pop_int(q), 0);
	cr_assert_eq(op_finish(&wait, "wait_space_for"), 0);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, wait_space_for_without_a_limit_blocks)
{
	static struct op wait;

	fill_suite_queue();
	op_start(&wait, q, OP_WAIT_SPACE_FOR, -1);
	op_assert_blocked(&wait, "wait_space_for(-1) on a full queue");
	pe_queue_close(q);
	cr_assert_eq(op_finish(&wait, "wait_space_for after close"), -ESHUTDOWN);
	TH_ASSERT_NO_LEAKS();
}

/* Closed outranks full: a caller must learn to stop, not to retry. */
Test(queue, wait_space_for_on_a_closed_queue_says_shutdown)
{
	pe_queue *empty;

	cr_assert_eq(pe_queue_create(&empty, 1, sizeof(int)), 0);
	pe_queue_close(empty);
	cr_expect_eq(pe_queue_wait_space_for(empty, 0), -ESHUTDOWN, "closed with room");
	pe_queue_destroy(empty);
	fill_suite_queue();
	pe_queue_close(q);
	cr_expect_eq(pe_queue_wait_space_for(q, 0), -ESHUTDOWN, "closed and full, no wait");
	cr_expect_eq(pe_queue_wait_space_for(q, 200), -ESHUTDOWN, "closed and full, a wait");
	TH_ASSERT_NO_LEAKS();
}

/* A slot freed while both a wait_space caller (KIND, with LIMIT_MS for a
 * timed one) and a pusher wait must not leave the pusher asleep (a single
 * signal could go to the wrong one). */
static void check_pushers_wakeup_is_passed_on(enum op_kind kind, int limit_ms)
{
	static struct op wait, push;
	pe_queue *one;

	cr_assert_eq(pe_queue_create(&one, 1, sizeof(int)), 0);
	push_int(one, 1);
	op_start(&wait, one, kind, limit_ms);
	op_start(&push, one, OP_PUSH, 2);
	op_assert_blocked(&wait, "wait_space on a full queue");
	op_assert_blocked(&push, "push on a full queue");
	cr_assert_eq(pop_int(one), 1);
	cr_assert_eq(op_finish(&push, "push after a slot freed"), 0);
	cr_assert_eq(pop_int(one), 2);
	cr_assert_eq(op_finish(&wait, "wait_space after two slots freed"), 0);
	pe_queue_destroy(one);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, wait_space_does_not_swallow_a_pushers_wakeup)
{
	check_pushers_wakeup_is_passed_on(OP_WAIT_SPACE, 0);
}

Test(queue, wait_space_for_does_not_swallow_a_pushers_wakeup)
{
	check_pushers_wakeup_is_passed_on(OP_WAIT_SPACE_FOR, LONG_WAIT_MS);
}

/* ---- many producers and consumers ------------------------------------------- */

enum { PRODUCERS = 4, CONSUMERS = 4, PER_PRODUCER = 5000, ITEMS = PRODUCERS * PER_PRODUCER };

struct mpmc {
	pe_queue *queue;
	atomic_uchar seen[ITEMS];
	atomic_int order_errors;  /* one producer's items seen out of order by a consumer */
	atomic_int push_errors;
};

struct mpmc_thread {
	struct mpmc *m;
	int index;
	pthread_t thread;
};

static void *producer_main(void *arg)
{
	struct mpmc_thread *t = arg;

	for (int i = 0; i < PER_PRODUCER; i++) {
		int v = t->index * PER_PRODUCER + i;
		/* Mix blocking and non-blocking pushes. */
		int rc = (i & 1) ? pe_queue_push(t->m->queue, &v) : pe_queue_try_push(t->m->queue, &v);
		if (rc == -EAGAIN)
			rc = pe_queue_push(t->m->queue, &v);
		if (rc != 0)
			atomic_fetch_add(&t->m->push_errors, 1);
	}
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct mpmc_thread *t = arg;
	int last[PRODUCERS], v;

	for (int p = 0; p < PRODUCERS; p++)
		last[p] = -1;
	while (pe_queue_pop(t->m->queue, &v) == 0) {
		if (v < 0 || v >= ITEMS) {
			atomic_fetch_add(&t->m->order_errors, 1);
			continue;
		}
		atomic_fetch_add(&t->m->seen[v], 1);
		/* A FIFO hands one producer's items out in the order it pushed them. */
		int p = v / PER_PRODUCER;
		if (v <= last[p])
			atomic_fetch_add(&t->m->order_errors, 1);
		last[p] = v;
	}
	return NULL;
}

/* ---- cancellation -------------------------------------------------------- */

/* Cancel OP's thread, asleep in its call, and join it. Cancelled, the call
 * never returns: it is counted out of ops_running here. */
static void op_cancel(struct op *op, const char *what)
{
	void *result = NULL;

	cr_assert_eq(pthread_cancel(op->thread), 0);
	cr_assert_eq(th_join_result(op->thread, WAKE_MS, &result), 0, "%s: cancelled thread "
	             "did not end", what);
	cr_assert_eq(result, PTHREAD_CANCELED, "%s returned (rc %d) instead of being cancelled",
	             what, op->rc);
	atomic_fetch_sub(&ops_running, 1);
	th_event_destroy(&op->started);
	th_event_destroy(&op->done);
}

/* A condition wait is a cancellation point, and returns there with the
 * queue's lock held: a pop cancelled in it must let go of the lock, or
 * every later call blocks on it for good. Not the suite's queue: a lock
 * left held would hang the teardown's close. */
Test(queue, a_pop_cancelled_while_waiting_leaves_the_queue_usable)
{
	static struct op pop, push;
	pe_queue *own;
	int v = -1;

	cr_assert_eq(pe_queue_create(&own, 1, sizeof(int)), 0);
	op_start(&pop, own, OP_POP, -1);
	op_assert_blocked(&pop, "pop on an empty queue");
	op_cancel(&pop, "pop on an empty queue");
	op_start(&push, own, OP_PUSH, 7);
	cr_assert_eq(op_finish(&push, "push after a cancelled pop"), 0);
	cr_assert_eq(pe_queue_try_pop(own, &v), 0);
	cr_expect_eq(v, 7);
	pe_queue_destroy(own);
	TH_ASSERT_NO_LEAKS();
}

/* A push wakes the popper that went idle last, whose stack and caches are
 * the warmest; the others sleep on. */
Test(queue, a_push_wakes_the_popper_that_went_idle_last)
{
	static struct op older, newer;

	op_start(&older, q, OP_POP, -1);
	op_assert_blocked(&older, "the older pop on an empty queue");
	op_start(&newer, q, OP_POP, -1);
	op_assert_blocked(&newer, "the newer pop on an empty queue");
	push_int(q, 1);
	cr_assert_eq(op_finish(&newer, "the newer pop"), 0);
	cr_expect_eq(newer.value, 1);
	op_assert_blocked(&older, "the older pop, after one push");
	push_int(q, 2);
	cr_assert_eq(op_finish(&older, "the older pop"), 0);
	cr_expect_eq(older.value, 2);
	TH_ASSERT_NO_LEAKS();
}

/* A handler that holds its thread, asleep in a pop, until released: the
 * push below wakes that popper while it cannot run. */
static atomic_bool in_handler, handler_released;

static void hold_in_handler(int sig)
{
	int64_t give_up = th_now_ms() + LONG_WAIT_MS;

	(void)sig;
	atomic_store(&in_handler, true);
	while (!atomic_load(&handler_released) && th_now_ms() < give_up)
		sched_yield(); /* no cancellation point: the cancel waits for the pop */
}

/* A queue of 4 with two poppers asleep on it, OLDER then NEWER, and NEWER
 * held in hold_in_handler (*BEFORE: the SIGUSR1 action to put back). */
static pe_queue *start_two_poppers_newer_held(struct op *older, struct op *newer,
                                              struct sigaction *before)
{
	struct sigaction hold = {.sa_handler = hold_in_handler};
	pe_queue *own;

	cr_assert_eq(pe_queue_create(&own, 4, sizeof(int)), 0);
	atomic_store(&in_handler, false);
	atomic_store(&handler_released, false);
	sigemptyset(&hold.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &hold, before), 0);
	op_start(older, own, OP_POP, -1);
	op_assert_blocked(older, "the older pop on an empty queue");
	op_start(newer, own, OP_POP, -1);
	op_assert_blocked(newer, "the newer pop on an empty queue");
	/* The newest idle popper is the one a push wakes: hold it. */
	cr_assert_eq(pthread_kill(newer->thread, SIGUSR1), 0);
	for (int64_t give_up = th_now_ms() + WAKE_MS;
	     !atomic_load(&in_handler) && th_now_ms() < give_up;)
		poll(NULL, 0, 1);
	cr_assert(atomic_load(&in_handler), "the signal handler never ran");
	return own;
}

/* A try_push on a full queue, on a thread of its own: it waits while a
 * popper is counted on its way, which a cancelled one never is. */
struct try_push_op {
	pe_queue *q;
	int value, rc;
};

static void *try_push_main(void *arg)
{
	struct try_push_op *op = arg;

	op->rc = pe_queue_try_push(op->q, &op->value);
	return NULL;
}

/* OWN is full and no popper is on its way: a try_push says -EAGAIN at
 * once, where one that counts a popper still due waits for it, 1 ms at a
 * time, for good (until a pop or a close). */
static void assert_try_push_refuses_at_once(pe_queue *own, const char *after)
{
	struct try_push_op tp = {.q = own, .value = -2};
	pthread_t thread;
	int rc;

	cr_assert_eq(pthread_create(&thread, NULL, try_push_main, &tp), 0);
	rc = th_join(thread, WAKE_MS);
	if (rc != 0) {
		pe_queue_close(own); /* ends its wait: -ESHUTDOWN */
		cr_assert_eq(th_join(thread, WAKE_MS), 0, "try_push did not end at the close");
	}
	cr_assert_eq(rc, 0, "try_push on a full queue, %s, waited %d ms for a popper "
	             "counted on its way", after, WAKE_MS);
	cr_expect_eq(tp.rc, -EAGAIN, "try_push: %d, expected -EAGAIN", tp.rc);
}

/* A signal handler run on a waiting popper (installed without SA_RESTART,
 * so its sem_wait(3) returns EINTR) neither wakes it nor loses it: it
 * waits on, is woken by the next push, and is not counted on its way
 * after it. Not the suite's queue. */
static atomic_int interruptions;

static void count_interruption(int sig)
{
	(void)sig;
	atomic_fetch_add(&interruptions, 1);
}

Test(queue, a_signal_to_a_waiting_popper_leaves_it_waiting_and_counted_right)
{
	static struct op pop;
	struct sigaction count = {.sa_handler = count_interruption}, before;
	pe_queue *own;

	cr_assert_eq(pe_queue_create(&own, 1, sizeof(int)), 0);
	sigemptyset(&count.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &count, &before), 0);
	atomic_store(&interruptions, 0);
	op_start(&pop, own, OP_POP, -1);
	op_assert_blocked(&pop, "pop on an empty queue");
	for (int i = 1; i <= 3; i++) {
		cr_assert_eq(pthread_kill(pop.thread, SIGUSR1), 0);
		for (int64_t give_up = th_now_ms() + WAKE_MS;
		     atomic_load(&interruptions) < i && th_now_ms() < give_up;)
			poll(NULL, 0, 1);
		cr_assert_eq(atomic_load(&interruptions), i, "the signal handler never ran");
		op_assert_blocked(&pop, "pop on an empty queue, after a signal");
	}
	push_int(own, 3);
	cr_assert_eq(op_finish(&pop, "the pop interrupted by signals"), 0);
	cr_expect_eq(pop.value, 3);
	sigaction(SIGUSR1, &before, NULL);
	push_int(own, 4); /* full, and no popper waits */
	assert_try_push_refuses_at_once(own, "after signals interrupted a popper's wait");
	pe_queue_destroy(own);
	TH_ASSERT_NO_LEAKS();
}

/* A popper cancelled after a push woke it, before it ran, may hold the
 * only wake-up for the item: it passes it on to another waiting popper.
 * Kept, the item waited for a busy popper to come back, for good here.
 * The woken popper is held in a signal handler (installed without
 * SA_RESTART, so its wait returns EINTR) while it is woken and cancelled;
 * released, its wait is a cancellation point. Not the suite's queue. */
Test(queue, a_pop_cancelled_after_its_wakeup_passes_it_on)
{
	static struct op older, newer;
	struct sigaction before;
	void *result = NULL;
	pe_queue *own;
	int v = 5;

	own = start_two_poppers_newer_held(&older, &newer, &before);
	cr_assert_eq(pe_queue_try_push(own, &v), 0);
	cr_assert_eq(pthread_cancel(newer.thread), 0);
	atomic_store(&handler_released, true);
	cr_assert_eq(th_join_result(newer.thread, WAKE_MS, &result), 0,
	             "the cancelled popper did not end");
	atomic_fetch_sub(&ops_running, 1);
	sigaction(SIGUSR1, &before, NULL);
	if (result != PTHREAD_CANCELED) {
		/* It ran before the cancel: it took the item; end the other. */
		pe_queue_close(own);
		cr_assert_eq(op_finish(&older, "the older pop, at the close"), -ESHUTDOWN);
		cr_assert_eq(newer.rc, 0);
		cr_assert_fail("the held popper was not cancelled in its wait (it took %d)",
		               newer.value);
	}
	th_event_destroy(&newer.started);
	th_event_destroy(&newer.done);
	cr_assert_eq(op_finish(&older, "the older pop, after the woken one was cancelled"), 0);
	cr_expect_eq(older.value, 5);
	cr_expect_eq(pe_queue_length(own), 0);
	/* Both wake-ups are accounted for: none is still counted on its way. */
	for (int i = 0; i < 4; i++)
		push_int(own, i);
	assert_try_push_refuses_at_once(own, "after a woken popper was cancelled");
	pe_queue_destroy(own);
	TH_ASSERT_NO_LEAKS();
}

/* Each push wakes a popper of its own while one is idle, whether or not the
 * queue was empty: a second push before the first woken popper has run
 * wakes the other. Waking only on an empty queue, the second item waited
 * for a busy popper to come back. The newer popper is held in a signal
 * handler, woken but not running, across both pushes. Not the suite's
 * queue. */
Test(queue, a_second_push_before_the_first_woken_popper_runs_wakes_another)
{
	static struct op older, newer;
	struct sigaction before;
	pe_queue *own;

	own = start_two_poppers_newer_held(&older, &newer, &before);
	push_int(own, 1); /* wakes the newer, held */
	push_int(own, 2); /* must wake the older */
	if (th_event_wait(&older.done, 1, WAKE_MS) != 0) {
		atomic_store(&handler_released, true);
		cr_assert_fail("the older popper slept on beside a second item, the newer "
		               "one woken but not yet running");
	}
	atomic_store(&handler_released, true);
	cr_assert_eq(op_finish(&older, "the older pop"), 0);
	cr_assert_eq(op_finish(&newer, "the newer pop"), 0);
	sigaction(SIGUSR1, &before, NULL);
	cr_expect_eq(older.value + newer.value, 3, "popped %d and %d", older.value, newer.value);
	cr_expect_eq(pe_queue_length(own), 0);
	pe_queue_destroy(own);
	TH_ASSERT_NO_LEAKS();
}

/* A pop cancelled in its wait must be counted out of the poppers waiting:
 * counted in, the next push took it for one woken to take the item, and a
 * try_push on the then full queue waited for it, 1 ms at a time, for good
 * (until a pop or a close). */
Test(queue, a_pop_cancelled_while_waiting_leaves_try_push_refusing_at_once)
{
	static struct op pop;
	pe_queue *own;

	cr_assert_eq(pe_queue_create(&own, 1, sizeof(int)), 0);
	op_start(&pop, own, OP_POP, -1);
	op_assert_blocked(&pop, "pop on an empty queue");
	op_cancel(&pop, "pop on an empty queue");
	push_int(own, 1); /* full, and no popper waits */
	assert_try_push_refuses_at_once(own, "after a waiting popper was cancelled");
	pe_queue_destroy(own);
	TH_ASSERT_NO_LEAKS();
}

/* The same for a push waiting for space: the pop that frees a slot, and
 * the push after it, go on as if the cancelled push had never waited. */
Test(queue, a_push_cancelled_while_waiting_leaves_the_queue_usable)
{
	static struct op push, pop, wait_space;
	pe_queue *own;
	int v = 1;

	cr_assert_eq(pe_queue_create(&own, 1, sizeof(int)), 0);
	push_int(own, 1);
	op_start(&push, own, OP_PUSH, 2);
	op_assert_blocked(&push, "push on a full queue");
	op_cancel(&push, "push on a full queue");
	op_start(&wait_space, own, OP_WAIT_SPACE_FOR, LONG_WAIT_MS);
	op_assert_blocked(&wait_space, "wait_space_for on a full queue");
	op_cancel(&wait_space, "wait_space_for on a full queue");
	op_start(&pop, own, OP_POP, -1);
	cr_assert_eq(op_finish(&pop, "pop after a cancelled push"), 0);
	cr_expect_eq(pop.value, 1, "the cancelled push's item was queued");
	cr_assert_eq(pe_queue_try_push(own, &v), 0, "no space after the cancelled push");
	cr_expect_eq(pe_queue_length(own), 1);
	pe_queue_destroy(own);
	TH_ASSERT_NO_LEAKS();
}

Test(queue, many_producers_and_consumers_move_every_item_exactly_once)
{
	struct mpmc *m = calloc(1, sizeof *m);
	struct mpmc_thread prod[PRODUCERS], cons[CONSUMERS];
	int missing = 0, doubled = 0;
	int64_t deadline;

	cr_assert_not_null(m);
	cr_assert_eq(pe_queue_create(&m->queue, 8, sizeof(int)), 0);
	for (int i = 0; i < CONSUMERS; i++) {
		cons[i] = (struct mpmc_thread){.m = m, .index = i};
		cr_assert_eq(pthread_create(&cons[i].thread, NULL, consumer_main, &cons[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		prod[i] = (struct mpmc_thread){.m = m, .index = i};
		cr_assert_eq(pthread_create(&prod[i].thread, NULL, producer_main, &prod[i]), 0);
	}
	/* One deadline for all: within the test's own timeout. */
	deadline = th_now_ms() + 20000;
	for (int i = 0; i < PRODUCERS; i++)
		cr_assert_eq(th_join(prod[i].thread, (unsigned)th_ms_left(deadline)), 0,
		             "producer %d stuck", i);
	pe_queue_close(m->queue);
	for (int i = 0; i < CONSUMERS; i++)
		cr_assert_eq(th_join(cons[i].thread, (unsigned)th_ms_left(deadline)), 0,
		             "consumer %d stuck", i);
	for (int i = 0; i < ITEMS; i++) {
		unsigned n = atomic_load(&m->seen[i]);
		missing += n == 0;
		doubled += n > 1;
	}
	cr_expect_eq(atomic_load(&m->push_errors), 0);
	cr_expect_eq(missing, 0, "%d of %d items never popped", missing, ITEMS);
	cr_expect_eq(doubled, 0, "%d items popped more than once", doubled);
	cr_expect_eq(atomic_load(&m->order_errors), 0, "FIFO order broken per producer");
	cr_expect_eq(pe_queue_length(m->queue), 0);
	pe_queue_destroy(m->queue);
	free(m);
	TH_ASSERT_NO_LEAKS();
}
