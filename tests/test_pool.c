/*
 * test_pool.c -- the worker pool: W workers really run at once (a barrier
 * only W concurrent handlers can pass), joining waits for the queue to
 * close, every queued item is handled exactly once and aligned for any
 * type, batch-scheduled workers run as SCHED_BATCH and leave their
 * creator's policy alone, bad configs fail.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <poolecho/pool.h>
#include <poolecho/queue.h>

#include "helpers.h"

#define WAIT_MS 5000
#define STILL_BLOCKED_MS 150

TestSuite(pool, .timeout = 30);

/* What the handlers record; shared by every test. */
struct record {
	unsigned workers;
	struct th_event arrived;     /* handler calls begun */
	atomic_int running, max_running;
	atomic_int barrier_timeouts;
	atomic_int bad_worker_index;
	atomic_uint worker_mask;     /* which worker indexes handled something */
	int want_policy;             /* what policy_handler expects */
	atomic_int wrong_policy;     /* handler calls on a thread with another policy */
	atomic_int signals_open;     /* handler calls on a thread that takes a signal */
	atomic_int faults_blocked;   /* ... or that blocks a fault's signal */
	atomic_int misaligned;       /* handler calls given an item not aligned for any type */
	atomic_uchar *seen;          /* per item value, when counting items */
	int items;
};

static void record_init(struct record *r, unsigned workers, int items)
{
	memset(r, 0, sizeof *r);
	r->workers = workers;
	th_event_init(&r->arrived);
	r->items = items;
	if (items) {
		r->seen = calloc((size_t)items, sizeof *r->seen);
		cr_assert_not_null(r->seen);
	}
}

static void record_free(struct record *r)
{
	th_event_destroy(&r->arrived);
	free(r->seen);
}

static void note_worker(struct record *r, unsigned worker)
{
	if (worker >= r->workers)
		atomic_fetch_add(&r->bad_worker_index, 1);
	else if (worker < 32)
		atomic_fetch_or(&r->worker_mask, 1u << worker);
}

/* Each of the first W calls waits until W calls are in progress at once:
 * a pool that ran fewer workers in parallel would never get past it. */
static void barrier_handler(void *ctx, unsigned worker, void *item)
{
	struct record *r = ctx;
	int now = atomic_fetch_add(&r->running, 1) + 1;
	int max = atomic_load(&r->max_running);

	(void)item;
	note_worker(r, worker);
	while (now > max && !atomic_compare_exchange_weak(&r->max_running, &max, now))
		;
	th_event_add(&r->arrived, 1);
	if (th_event_wait(&r->arrived, r->workers, WAIT_MS) < 0)
		atomic_fetch_add(&r->barrier_timeouts, 1);
	atomic_fetch_sub(&r->running, 1);
}

/* barrier_handler that also checks that its thread blocks the signals a
 * process is sent (and SIGPIPE, which splice(2) raises in a worker), but
 * not those of a fault, which must reach a crash handler. */
static void mask_handler(void *ctx, unsigned worker, void *item)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
	                           SIGPIPE, SIGCHLD, SIGALRM};
	static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
	struct record *r = ctx;
	sigset_t mask;

	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (!sigismember(&mask, sigs[i]))
			atomic_fetch_add(&r->signals_open, 1);
	for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
		if (sigismember(&mask, faults[i]))
			atomic_fetch_add(&r->faults_blocked, 1);
	barrier_handler(ctx, worker, item);
}

/* barrier_handler that also checks that ITEM may be read in place as any
 * type: aligned as malloc(3)'s memory is. */
static void align_handler(void *ctx, unsigned worker, void *item)
{
	struct record *r = ctx;

	if ((uintptr_t)item % _Alignof(max_align_t) != 0)
		atomic_fetch_add(&r->misaligned, 1);
	barrier_handler(ctx, worker, item);
}

#ifdef SCHED_BATCH
/* barrier_handler that also asks the kernel which policy its thread runs. */
static void policy_handler(void *ctx, unsigned worker, void *item)
{
	struct record *r = ctx;

	if (sched_getscheduler(0) != r->want_policy)
		atomic_fetch_add(&r->wrong_policy, 1);
	barrier_handler(ctx, worker, item);
}
#endif

static void count_handler(void *ctx, unsigned worker, void *item)
{
	struct record *r = ctx;
	int v;

	note_worker(r, worker);
	memcpy(&v, item, sizeof v);
	if (v >= 0 && v < r->items)
		atomic_fetch_add(&r->seen[v], 1);
	th_event_add(&r->arrived, 1);
}

static pe_pool *start_pool(pe_queue *queue, unsigned workers, pe_pool_handler *handler,
                           struct record *r)
{
	struct pe_pool_config cfg = {.workers = workers, .queue = queue, .handler = handler, .ctx = r};
	pe_pool *pool = NULL;

	cr_assert_eq(pe_pool_start(&pool, &cfg), 0);
	cr_assert_not_null(pool);
	cr_assert_eq(pe_pool_size(pool), workers);
	return pool;
}

/* pe_pool_join on a thread, so a test can see whether it blocks. */
struct joiner {
	pe_pool *pool;
	struct th_event done;
	pthread_t thread;
	_Atomic pid_t tid;
};

static void *joiner_main(void *arg)
{
	struct joiner *j = arg;

	atomic_store(&j->tid, th_gettid());
	pe_pool_join(j->pool);
	th_event_add(&j->done, 1);
	return NULL;
}

static void join_start(struct joiner *j, pe_pool *pool)
{
	j->pool = pool;
	atomic_store(&j->tid, 0);
	th_event_init(&j->done);
	cr_assert_eq(pthread_create(&j->thread, NULL, joiner_main, j), 0);
}

static void join_finish(struct joiner *j)
{
	cr_assert_eq(th_event_wait(&j->done, 1, WAIT_MS), 0, "pe_pool_join did not return");
	cr_assert_eq(th_join(j->thread, WAIT_MS), 0);
	th_event_destroy(&j->done);
}

/* Push ITEM, waiting for room until DEADLINE (th_now_ms) at most: a pool
 * that stops taking items fails the test here, not at the suite's timeout. */
static void push_by(pe_queue *queue, const int *item, int64_t deadline)
{
	int rc;

	while ((rc = pe_queue_try_push(queue, item)) == -EAGAIN) {
		rc = pe_queue_wait_space_for(queue, th_ms_left(deadline));
		cr_assert_eq(rc, 0, "item %d: no room in the queue: %s", *item, strerror(-rc));
	}
	cr_assert_eq(rc, 0, "item %d: %s", *item, strerror(-rc));
}

Test(pool, workers_really_run_in_parallel)
{
	enum { W = 4, ITEMS = 3 * W };
	struct record r;
	pe_queue *queue;
	pe_pool *pool;
	struct joiner j;

	record_init(&r, W, 0);
	cr_assert_eq(pe_queue_create(&queue, ITEMS, sizeof(int)), 0);
	pool = start_pool(queue, W, barrier_handler, &r);
	for (int i = 0; i < ITEMS; i++)
		cr_assert_eq(pe_queue_push(queue, &i), 0);
	cr_assert_eq(th_event_wait(&r.arrived, ITEMS, 3 * WAIT_MS), 0, "not every item was handled");
	pe_queue_close(queue);
	join_start(&j, pool);
	join_finish(&j);
	cr_expect_eq(atomic_load(&r.barrier_timeouts), 0,
	             "fewer than %d handlers ever ran at once (max %d)", W, atomic_load(&r.max_running));
	cr_expect_eq(atomic_load(&r.max_running), W, "more handlers ran at once than workers");
	cr_expect_eq(atomic_load(&r.bad_worker_index), 0, "worker index out of range");
	cr_expect_eq(atomic_load(&r.worker_mask), (1u << W) - 1, "not every worker index took part");
	pe_queue_destroy(queue);
	record_free(&r);
	TH_ASSERT_NO_LEAKS();
}

Test(pool, join_waits_for_the_queue_to_close_and_joins_every_worker)
{
	enum { W = 3 };
	struct record r;
	pe_queue *queue;
	pe_pool *pool;
	struct joiner j;
	int v = 0;

	record_init(&r, W, 1);
	cr_assert_eq(pe_queue_create(&queue, 4, sizeof(int)), 0);
	pool = start_pool(queue, W, count_handler, &r);
	join_start(&j, pool);
	cr_assert_eq(th_event_wait(&j.done, 1, STILL_BLOCKED_MS), -ETIMEDOUT,
	             "pe_pool_join returned while the queue was open");
#ifdef __linux__
	/* Not returned could also be not yet run: see it asleep in the join. */
	for (int64_t deadline = th_now_ms() + WAIT_MS; !atomic_load(&j.tid);) {
		cr_assert_gt(th_ms_left(deadline), 0, "the joining thread never ran");
		sched_yield();
	}
	cr_assert_eq(th_wait_asleep(atomic_load(&j.tid), WAIT_MS), 'S',
	             "the joining thread never went to sleep");
	cr_assert_eq(th_event_wait(&j.done, 1, 0), -ETIMEDOUT,
	             "pe_pool_join returned while the queue was open");
#endif
	/* The workers are still there: an item pushed now is handled. */
	cr_assert_eq(pe_queue_push(queue, &v), 0);
	cr_assert_eq(th_event_wait(&r.arrived, 1, WAIT_MS), 0, "no worker took the item");
	pe_queue_close(queue);
	join_finish(&j);
	cr_expect_eq(atomic_load(&r.seen[0]), 1);
	pe_queue_destroy(queue);
	record_free(&r);
	TH_ASSERT_NO_LEAKS();
}

/* Each worker's handler blocks until its own event. */
struct gate {
	struct th_event entered, left;
	struct th_event release[4];
};

static void gate_handler(void *ctx, unsigned worker, void *item)
{
	struct gate *g = ctx;

	(void)item;
	th_event_add(&g->entered, 1);
	if (worker < 4)
		th_event_wait(&g->release[worker], 1, 3 * WAIT_MS);
	th_event_add(&g->left, 1);
}

/* pe_pool_join returns only once every worker has left its handler, the
 * last one started too: a worker not joined would go on running (and read
 * the pool) after the caller freed what its handler uses. */
Test(pool, join_waits_for_the_last_worker_still_in_its_handler)
{
	enum { W = 3 };
	struct gate g;
	struct pe_pool_config cfg = {.workers = W, .handler = gate_handler, .ctx = &g};
	pe_queue *queue;
	pe_pool *pool;
	struct joiner j;

	th_event_init(&g.entered);
	th_event_init(&g.left);
	for (int i = 0; i < 4; i++)
		th_event_init(&g.release[i]);
	cr_assert_eq(pe_queue_create(&queue, W, sizeof(int)), 0);
	cfg.queue = queue;
	cr_assert_eq(pe_pool_start(&pool, &cfg), 0);
	/* A handler holds its worker: W items give each worker one. */
	for (int i = 0; i < W; i++)
		cr_assert_eq(pe_queue_push(queue, &i), 0);
	cr_assert_eq(th_event_wait(&g.entered, W, WAIT_MS), 0, "not every worker took an item");
	pe_queue_close(queue);
	for (int i = 0; i < W - 1; i++)
		th_event_add(&g.release[i], 1);
	cr_assert_eq(th_event_wait(&g.left, W - 1, WAIT_MS), 0);
	join_start(&j, pool);
	cr_assert_eq(th_event_wait(&j.done, 1, STILL_BLOCKED_MS), -ETIMEDOUT,
	             "pe_pool_join returned while worker %d was still in its handler", W - 1);
	th_event_add(&g.release[W - 1], 1);
	join_finish(&j);
	cr_expect_eq(th_event_wait(&g.left, W, 0), 0, "a handler was still running after the join");
	pe_queue_destroy(queue);
	th_event_destroy(&g.entered);
	th_event_destroy(&g.left);
	for (int i = 0; i < 4; i++)
		th_event_destroy(&g.release[i]);
	TH_ASSERT_NO_LEAKS();
}

Test(pool, no_item_lost_at_stop)
{
	enum { W = 3, ITEMS = 4000 };
	struct record r;
	pe_queue *queue;
	pe_pool *pool;
	struct joiner j;
	int missing = 0, doubled = 0;
	int64_t deadline;

	record_init(&r, W, ITEMS);
	cr_assert_eq(pe_queue_create(&queue, 64, sizeof(int)), 0);
	pool = start_pool(queue, W, count_handler, &r);
	deadline = th_now_ms() + WAIT_MS;
	for (int i = 0; i < ITEMS; i++)
		push_by(queue, &i, deadline);
	/* Close with items still queued: the workers must drain them. */
	pe_queue_close(queue);
	join_start(&j, pool);
	join_finish(&j);
	for (int i = 0; i < ITEMS; i++) {
		missing += r.seen[i] == 0;
		doubled += r.seen[i] > 1;
	}
	cr_expect_eq(missing, 0, "%d items lost at stop", missing);
	cr_expect_eq(doubled, 0, "%d items handled twice", doubled);
	cr_expect_eq(atomic_load(&r.bad_worker_index), 0);
	pe_queue_destroy(queue);
	record_free(&r);
	TH_ASSERT_NO_LEAKS();
}

Test(pool, items_queued_and_closed_before_start_are_all_handled)
{
	enum { W = 2, ITEMS = 50 };
	struct record r;
	pe_queue *queue;
	struct joiner j;

	record_init(&r, W, ITEMS);
	cr_assert_eq(pe_queue_create(&queue, ITEMS, sizeof(int)), 0);
	for (int i = 0; i < ITEMS; i++)
		cr_assert_eq(pe_queue_try_push(queue, &i), 0);
	pe_queue_close(queue);
	join_start(&j, start_pool(queue, W, count_handler, &r));
	join_finish(&j);
	for (int i = 0; i < ITEMS; i++)
		cr_expect_eq(r.seen[i], 1, "item %d handled %d times", i, r.seen[i]);
	pe_queue_destroy(queue);
	record_free(&r);
	TH_ASSERT_NO_LEAKS();
}

/* Start a pool of CFG (its queue made here), hand it one item (0), and
 * join it once the queue is closed. */
static void pool_handles_one_item(struct pe_pool_config *cfg)
{
	pe_queue *queue;
	pe_pool *pool = NULL;
	struct joiner j;
	int v = 0;

	cr_assert_eq(pe_queue_create(&queue, cfg->workers, sizeof v), 0);
	cfg->queue = queue;
	cr_assert_eq(pe_pool_start(&pool, cfg), 0);
	cr_assert_eq(pe_queue_push(queue, &v), 0);
	pe_queue_close(queue);
	join_start(&j, pool);
	join_finish(&j);
	pe_queue_destroy(queue);
}

Test(pool, tiny_stack_size_is_raised_to_the_minimum)
{
	struct record r;
	struct pe_pool_config cfg = {.workers = 2, .stack_size = 1, .handler = count_handler, .ctx = &r};

	record_init(&r, 2, 1);
	pool_handles_one_item(&cfg);
	cr_expect_eq(r.seen[0], 1);
	record_free(&r);
	TH_ASSERT_NO_LEAKS();
}

/* Where the handler's worker has its stack, as the system says: the end of
 * the stack (its top) and its size. */
static atomic_uintptr_t stack_top;
static atomic_size_t stack_size;

static void stack_handler(void *ctx, unsigned worker, void *item)
{
	pthread_attr_t attr;
	void *addr;
	size_t size;

	(void)ctx;
	(void)worker;
	(void)item;
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return;
	if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
		atomic_store(&stack_top, (uintptr_t)addr + size);
		atomic_store(&stack_size, size);
	}
	pthread_attr_destroy(&attr);
}

/* A worker's stack is whole pages, ending at a page's end. The program's
 * TLS, added to stack_size, is a few bytes over a page; glibc puts the
 * thread's descriptor at the end of the size asked, not of the pages it
 * maps, so the descriptor and the first frames straddled one page more:
 * 4 KiB more resident memory per idle worker (10.1 -> 14.0 MiB with
 * -w 1000). */
Test(pool, a_worker_s_stack_is_whole_pages)
{
	long page = sysconf(_SC_PAGESIZE);
	struct pe_pool_config cfg = {.workers = 1, .stack_size = 128 * 1024,
	                             .handler = stack_handler};

	cr_assert_gt(page, 0);
	atomic_store(&stack_top, 0);
	atomic_store(&stack_size, 0);
	pool_handles_one_item(&cfg);
	cr_assert_neq(atomic_load(&stack_size), 0, "pthread_getattr_np told nothing");
	cr_expect_geq(atomic_load(&stack_size), 128 * 1024);
	cr_expect_eq(atomic_load(&stack_size) % (size_t)page, 0, "a stack of %zu bytes",
	             atomic_load(&stack_size));
	cr_expect_eq(atomic_load(&stack_top) % (uintptr_t)page, 0, "a stack ending at %#lx",
	             (unsigned long)atomic_load(&stack_top));
	TH_ASSERT_NO_LEAKS();
}

/* A pool of W workers each handling one item through a barrier handler
 * (barrier_handler, or one that checks something and calls it). */
struct barrier_pool {
	struct record r;
	pe_queue *queue;
	pe_pool *pool;
	int workers;
};

static void barrier_pool_start(struct barrier_pool *bp, struct pe_pool_config *cfg)
{
	bp->workers = (int)cfg->workers;
	record_init(&bp->r, cfg->workers, 0);
	cr_assert_eq(pe_queue_create(&bp->queue, cfg->workers, sizeof(int)), 0);
	cfg->queue = bp->queue;
	cfg->ctx = &bp->r;
	cr_assert_eq(pe_pool_start(&bp->pool, cfg), 0);
}

/* One item per worker (the barrier makes each of them take one), then
 * close, join and free. The record's counts stay readable in BP->r. */
static void barrier_pool_finish(struct barrier_pool *bp)
{
	struct joiner j;

	for (int i = 0; i < bp->workers; i++)
		cr_assert_eq(pe_queue_push(bp->queue, &i), 0);
	cr_assert_eq(th_event_wait(&bp->r.arrived, (unsigned)bp->workers, 3 * WAIT_MS), 0,
	             "not every item was handled");
	pe_queue_close(bp->queue);
	join_start(&j, bp->pool);
	join_finish(&j);
	cr_expect_eq(atomic_load(&bp->r.barrier_timeouts), 0, "the workers did not all take part");
	pe_queue_destroy(bp->queue);
	record_free(&bp->r);
}

/* Workers block every signal but a fault's even when their creator blocks
 * none, and the creator's own mask is left as it was. */
Test(pool, workers_block_every_signal_but_a_fault_s_and_the_creator_keeps_its_mask)
{
	struct pe_pool_config cfg = {.workers = 3, .handler = mask_handler};
	struct barrier_pool bp;
	sigset_t none, after;

	sigemptyset(&none);
	cr_assert_eq(pthread_sigmask(SIG_SETMASK, &none, NULL), 0);
	barrier_pool_start(&bp, &cfg);
	pthread_sigmask(SIG_BLOCK, NULL, &after);
	cr_expect_eq(sigismember(&after, SIGTERM) + sigismember(&after, SIGPIPE), 0,
	             "the creator's mask changed");
	barrier_pool_finish(&bp);
	cr_expect_eq(atomic_load(&bp.r.signals_open), 0, "%d signals not blocked, summed over %d "
	             "workers", atomic_load(&bp.r.signals_open), bp.workers);
	cr_expect_eq(atomic_load(&bp.r.faults_blocked), 0, "%d fault signals blocked, summed over "
	             "%d workers", atomic_load(&bp.r.faults_blocked), bp.workers);
	TH_ASSERT_NO_LEAKS();
}

/* Items of an int each: every worker's copy is aligned for any type all
 * the same, so a handler may cast ITEM to its own struct. */
Test(pool, each_worker_s_item_is_aligned_for_any_type)
{
	struct pe_pool_config cfg = {.workers = 4, .handler = align_handler};
	struct barrier_pool bp;

	barrier_pool_start(&bp, &cfg);
	barrier_pool_finish(&bp);
	cr_expect_eq(atomic_load(&bp.r.misaligned), 0, "%d of %d workers got an item aligned "
	             "to less than %zu bytes", atomic_load(&bp.r.misaligned), bp.workers,
	             _Alignof(max_align_t));
	TH_ASSERT_NO_LEAKS();
}

#ifdef SCHED_BATCH
/* Workers must run as SCHED_BATCH when asked, and keep their creator's
 * policy when not. The pool gets there by switching a SCHED_OTHER creator
 * for the while, so the creator must come back to the policy it had.
 * POLICY is the creator's before the start. */
static void check_worker_and_creator_policy(int policy, int batch, int want_worker)
{
	struct sched_param sp = {.sched_priority = policy == SCHED_FIFO ? 1 : 0};
	struct pe_pool_config cfg = {.workers = 4, .batch_scheduling = batch, .handler = policy_handler};
	struct barrier_pool bp;

	cr_assert_eq(sched_setscheduler(0, policy, &sp), 0, "sched_setscheduler: %s", strerror(errno));
	barrier_pool_start(&bp, &cfg);
	bp.r.want_policy = want_worker;
	cr_expect_eq(sched_getscheduler(0), policy, "the creating thread's policy changed: %#x, was %#x",
	             (unsigned)sched_getscheduler(0), (unsigned)policy);
	barrier_pool_finish(&bp);
	cr_expect_eq(atomic_load(&bp.r.wrong_policy), 0, "%d of %d workers did not run with policy %d",
	             atomic_load(&bp.r.wrong_policy), bp.workers, want_worker);
	sp.sched_priority = 0;
	sched_setscheduler(0, SCHED_OTHER, &sp); /* for a run with --no-fork */
	TH_ASSERT_NO_LEAKS();
}

Test(pool, batch_workers_started_from_sched_other_leave_the_creator_as_it_was)
{
	check_worker_and_creator_policy(SCHED_OTHER, 1, SCHED_BATCH);
}

Test(pool, batch_workers_started_from_sched_batch_leave_the_creator_as_it_was)
{
	check_worker_and_creator_policy(SCHED_BATCH, 1, SCHED_BATCH);
}

/* A creator the pool does not switch: threads it creates start as plain
 * SCHED_OTHER, so each worker must switch itself. Any process may set
 * this flag, unlike the SCHED_IDLE case below. */
Test(pool, batch_workers_started_from_sched_reset_on_fork_switch_themselves)
{
	check_worker_and_creator_policy(SCHED_OTHER | SCHED_RESET_ON_FORK, 1, SCHED_BATCH);
}

/* A creator the pool does not switch because its policy was chosen for
 * every thread: workers keep it. They used to leave SCHED_IDLE (and a
 * real-time policy) for SCHED_BATCH where allowed, as root may. */
Test(pool, batch_workers_started_from_sched_idle_stay_idle)
{
	check_worker_and_creator_policy(SCHED_IDLE, 1, SCHED_IDLE);
}

Test(pool, batch_workers_started_from_sched_fifo_stay_fifo)
{
	struct sched_param sp = {.sched_priority = 1};

	/* Setting a real-time policy takes CAP_SYS_NICE or RLIMIT_RTPRIO. */
	if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
		cr_skip_test("this process may not run as SCHED_FIFO (%s): needs root "
		             "(CAP_SYS_NICE) or a real-time priority limit (ulimit -r)",
		             strerror(errno));
	check_worker_and_creator_policy(SCHED_FIFO, 1, SCHED_FIFO);
}

/* glibc keeps its own copy of a thread's policy, set by the first pool's
 * switches; sched_setscheduler(2) then changes the policy behind it. */
Test(pool, a_creator_whose_policy_changed_since_an_earlier_pool_keeps_it)
{
	check_worker_and_creator_policy(SCHED_OTHER, 1, SCHED_BATCH);
	check_worker_and_creator_policy(SCHED_OTHER | SCHED_RESET_ON_FORK, 1, SCHED_BATCH);
}

Test(pool, workers_not_asked_for_batch_keep_the_creators_policy)
{
	check_worker_and_creator_policy(SCHED_OTHER, 0, SCHED_OTHER);
}
#endif

Test(pool, bad_config_is_einval)
{
	struct record r;
	pe_queue *queue;
	pe_pool *pool;
	struct pe_pool_config good, bad;
	int rc;

	record_init(&r, 1, 0);
	cr_assert_eq(pe_queue_create(&queue, 2, sizeof(int)), 0);
	good = (struct pe_pool_config){.workers = 1, .queue = queue, .handler = count_handler, .ctx = &r};

	bad = good;
	bad.workers = 0;
	pool = (pe_pool *)&pool;
	cr_expect_eq(pe_pool_start(&pool, &bad), -EINVAL, "0 workers");
	cr_expect_null(pool);

	bad = good;
	bad.queue = NULL;
	pool = (pe_pool *)&pool; /* each failure must set it to NULL */
	cr_expect_eq(pe_pool_start(&pool, &bad), -EINVAL, "no queue");
	cr_expect_null(pool);

	bad = good;
	bad.handler = NULL;
	pool = (pe_pool *)&pool;
	cr_expect_eq(pe_pool_start(&pool, &bad), -EINVAL, "no handler");
	cr_expect_null(pool);

	pool = (pe_pool *)&pool;
	cr_expect_eq(pe_pool_start(&pool, NULL), -EINVAL, "no config");
	cr_expect_null(pool);
	cr_expect_eq(pe_pool_start(NULL, &good), -EINVAL, "no place for the pool");

	/* A stack no system can give: no worker starts, and the caller's
	 * queue stays open for another try. glibc refuses it in
	 * pthread_create (EAGAIN, or EINVAL where the size overflows), musl
	 * in pthread_attr_setstacksize (EINVAL). */
	bad = good;
	bad.stack_size = SIZE_MAX - 4096;
	pool = (pe_pool *)&pool;
	rc = pe_pool_start(&pool, &bad);
	cr_expect(rc == -EAGAIN || rc == -EINVAL, "a stack of SIZE_MAX - 4096 bytes: %d, not -EAGAIN or -EINVAL", rc);
	cr_expect_null(pool);
	cr_expect_not(pe_queue_is_closed(queue), "a pool that never started closed the queue");

	pe_pool_join(NULL);
	pe_queue_destroy(queue);
	record_free(&r);
	TH_ASSERT_NO_LEAKS();
}
