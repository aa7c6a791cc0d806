/*
 * test_popper_posts.c -- a waiting popper's semaphore lives on the popper's
 * stack, and whoever wakes it posts it after releasing the queue's lock:
 * every sem_post(3) to it must come before the popper leaves its wait, and
 * whoever posts must not look at the popper once it has posted.
 *
 * Those windows are a few instructions wide, so they are widened here:
 * sem_post is wrapped at link time (-Wl,--wrap=sem_post), in this program
 * alone, and while a test arms it one post is held back, or the poster is
 * held after it, while the popper's thread moves on.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <poolecho/queue.h>

#include "helpers.h"

#define WAKE_MS 5000
/* How long an armed post is held: a popper that does not wait for its post
 * is gone well within it. */
#define HOLD_MS 500

TestSuite(popper_posts, .timeout = 30);

/* ---- the wrapped call --------------------------------------------------- */

int __real_sem_post(sem_t *sem);
int __wrap_sem_post(sem_t *sem);

enum hold { HOLD_NONE, HOLD_BEFORE, HOLD_AFTER };

static _Atomic int hold_mode;         /* what the next posts do, while armed */
static atomic_bool post_held;         /* HOLD_BEFORE: a post is being held */
static atomic_bool popper_ended;      /* HOLD_BEFORE: the popper's thread ended */
static atomic_bool ended_before_post; /* ... before the post it was owed */
static struct th_event poppers_done;  /* HOLD_AFTER: poppers back and gone */

int __wrap_sem_post(sem_t *sem)
{
	int64_t give_up;
	int rc;

	switch (atomic_load(&hold_mode)) {
	case HOLD_BEFORE:
		/* One post, held until the popper's thread ends or HOLD_MS pass. */
		atomic_store(&hold_mode, HOLD_NONE);
		atomic_store(&post_held, true);
		for (give_up = th_now_ms() + HOLD_MS;
		     !atomic_load(&popper_ended) && th_now_ms() < give_up;)
			sched_yield();
		atomic_store(&ended_before_post, atomic_load(&popper_ended));
		return __real_sem_post(sem);
	case HOLD_AFTER: {
		/* Each post, then wait for the popper posted to be back and gone. */
		long before = th_event_get(&poppers_done);

		rc = __real_sem_post(sem);
		(void)th_event_wait(&poppers_done, before + 1, HOLD_MS);
		return rc;
	}
	default:
		return __real_sem_post(sem);
	}
}

/* ---- poppers on threads of their own --------------------------------------- */

struct popper {
	pe_queue *q;
	int value, rc;
	_Atomic pid_t tid;
	struct th_event started;
	pthread_t thread;
};

static void note_ended(void *arg)
{
	(void)arg;
	atomic_store(&popper_ended, true);
}

/* A pop whose thread, cancelled in it, says so once the pop's own cleanup
 * is done. */
static void *cancellable_pop_main(void *arg)
{
	struct popper *p = arg;

	atomic_store(&p->tid, th_gettid());
	th_event_add(&p->started, 1);
	pthread_cleanup_push(note_ended, NULL);
	p->rc = pe_queue_pop(p->q, &p->value);
	pthread_cleanup_pop(0);
	return NULL;
}

/* Overwrite the stack below the caller, where the pop's frames were, as
 * the thread's next calls would. */
static void __attribute__((noinline)) scribble_stack(void)
{
	char junk[64 * 1024];

	memset(junk, 0, sizeof junk);
	__asm__ volatile("" : : "r"(junk) : "memory");
}

/* A pop that, back, writes over the stack it waited on and says so. */
static void *scribbling_pop_main(void *arg)
{
	struct popper *p = arg;

	atomic_store(&p->tid, th_gettid());
	th_event_add(&p->started, 1);
	p->rc = pe_queue_pop(p->q, &p->value);
	scribble_stack();
	th_event_add(&poppers_done, 1);
	return NULL;
}

static void popper_start(struct popper *p, pe_queue *q, void *(*fn)(void *))
{
	memset(p, 0, sizeof *p);
	p->q = q;
	th_event_init(&p->started);
	cr_assert_eq(pthread_create(&p->thread, NULL, fn, p), 0);
	cr_assert_eq(th_event_wait(&p->started, 1, WAKE_MS), 0, "a popper did not start");
	cr_assert_eq(th_wait_asleep(atomic_load(&p->tid), WAKE_MS), 'S',
	             "a pop on an empty queue never went to sleep");
}

struct pusher {
	pe_queue *q;
	int value, rc;
};

static void *push_main(void *arg)
{
	struct pusher *p = arg;

	p->rc = pe_queue_push(p->q, &p->value);
	return NULL;
}

/* ---- the tests ------------------------------------------------------------ */

/* A popper cancelled after a push woke it, but before the push posted its
 * semaphore, must wait for that post before its stack goes: ended first,
 * the post lands on a stack some later call is using. The push's post is
 * held while the popper is cancelled. */
Test(popper_posts, a_popper_cancelled_before_its_post_waits_for_it)
{
	static struct popper pop;
	struct pusher push = {.value = 7};
	pthread_t pusher;
	void *result = NULL;
	pe_queue *q;
	int v = -1;

	cr_assert_eq(pe_queue_create(&q, 4, sizeof(int)), 0);
	atomic_store(&post_held, false);
	atomic_store(&popper_ended, false);
	atomic_store(&ended_before_post, false);
	popper_start(&pop, q, cancellable_pop_main);

	push.q = q;
	atomic_store(&hold_mode, HOLD_BEFORE);
	cr_assert_eq(pthread_create(&pusher, NULL, push_main, &push), 0);
	for (int64_t give_up = th_now_ms() + WAKE_MS;
	     !atomic_load(&post_held) && th_now_ms() < give_up;)
		sched_yield();
	cr_assert(atomic_load(&post_held), "the push posted no popper");
	cr_assert_eq(pthread_cancel(pop.thread), 0);
	cr_assert_eq(th_join(pusher, WAKE_MS), 0, "the push did not return");
	cr_assert_eq(push.rc, 0);
	cr_assert_eq(th_join_result(pop.thread, WAKE_MS, &result), 0,
	             "the cancelled popper did not end");
	cr_assert_eq(result, PTHREAD_CANCELED, "the popper was not cancelled in its wait");
	cr_expect_not(atomic_load(&ended_before_post),
	              "the cancelled popper's thread ended before the post it was owed: "
	              "the post went to a stack that was gone");
	/* Not taken by the cancelled popper: still queued. */
	cr_expect_eq(pe_queue_try_pop(q, &v), 0);
	cr_expect_eq(v, 7);
	th_event_destroy(&pop.started);
	pe_queue_destroy(q);
}

/* The close wakes every popper, though each, once posted, returns and its
 * stack is used again at once: the close must have read on down its list
 * before it posts. Three poppers: each posted one scribbles over its
 * stack before the close posts the next. */
Test(popper_posts, close_posts_every_popper_though_each_goes_at_once)
{
	enum { N = 3 };
	static struct popper pop[N];
	pe_queue *q;

	cr_assert_eq(pe_queue_create(&q, 4, sizeof(int)), 0);
	th_event_init(&poppers_done);
	for (int i = 0; i < N; i++)
		popper_start(&pop[i], q, scribbling_pop_main);
	atomic_store(&hold_mode, HOLD_AFTER);
	pe_queue_close(q);
	atomic_store(&hold_mode, HOLD_NONE);
	if (th_event_wait(&poppers_done, N, WAKE_MS) != 0)
		/* The others wait for good: this test's process ends them. */
		cr_assert_fail("the close woke %ld of %d poppers", th_event_get(&poppers_done), N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(th_join(pop[i].thread, WAKE_MS), 0);
		cr_expect_eq(pop[i].rc, -ESHUTDOWN);
		th_event_destroy(&pop[i].started);
	}
	th_event_destroy(&poppers_done);
	pe_queue_destroy(q);
}
