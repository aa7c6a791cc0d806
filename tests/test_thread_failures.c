/*
 * test_thread_failures.c -- what the pool and the server do when the
 * system refuses a thread part-way: the workers that started are stopped
 * and joined, nothing is left open, the right error comes back, and a
 * server whose run thread was refused can be started again. Also a pool
 * whose thread attributes cannot be made.
 *
 * pthread_create and pthread_attr_init are wrapped at link time
 * (-Wl,--wrap=...), so the library's own calls can be made to fail on
 * demand; a cgroup's
 * pids.max or RLIMIT_NPROC could do it only where the test may set them,
 * and never for root in the second case.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <poolecho/pool.h>
#include <poolecho/queue.h>
#include <poolecho/server.h>

#include "helpers.h"
#include "server_fixture.h"

#define IO_MS 10000
#define SETTLE_MS 2000 /* for a joined thread to leave /proc/self/task */

TestSuite(thread_failures, .timeout = 30);

/* ---- the wrapped pthread_create ------------------------------------------ */

int __real_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start)(void *), void *arg);
int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start)(void *), void *arg);

static atomic_int creates_seen;  /* calls since the failure was armed */
static atomic_int failing_create; /* which of them fails; 0 = none */
static atomic_int failure_error;

int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start)(void *), void *arg)
{
	int nth = atomic_load(&failing_create);

	if (nth > 0 && atomic_fetch_add(&creates_seen, 1) + 1 == nth)
		return atomic_load(&failure_error);
	return __real_pthread_create(thread, attr, start, arg);
}

int __real_pthread_attr_init(pthread_attr_t *attr);
int __wrap_pthread_attr_init(pthread_attr_t *attr);

static atomic_int attr_init_error; /* the next pthread_attr_init fails with it; 0 = none */

/* A failed init leaves the attribute unmade: zeroed here, so that a caller
 * that went on with it would not crash but start its threads regardless. */
int __wrap_pthread_attr_init(pthread_attr_t *attr)
{
	int err = atomic_exchange(&attr_init_error, 0);

	if (err == 0)
		return __real_pthread_attr_init(attr);
	memset(attr, 0, sizeof *attr);
	return err;
}

/* The NTH pthread_create from now on fails with ERR; the others succeed. */
static void fail_create(int nth, int err)
{
	atomic_store(&creates_seen, 0);
	atomic_store(&failure_error, err);
	atomic_store(&failing_create, nth);
}

static void stop_failing(void)
{
	atomic_store(&failing_create, 0);
}

/* The thread count drops to WANT within SETTLE_MS: a joined thread has
 * exited, but the kernel may list it for a moment after the join returns. */
static int threads_back_to(int want)
{
	int64_t deadline = th_now_ms() + SETTLE_MS;
	int now;

	while ((now = th_count_threads()) != want && th_ms_left(deadline) > 0)
		usleep(1000);
	return now;
}

/* ---- the pool ------------------------------------------------------------ */

static atomic_int handled;

static void count_handler(void *ctx, unsigned worker, void *item)
{
	(void)ctx;
	(void)worker;
	(void)item;
	atomic_fetch_add(&handled, 1);
}

Test(thread_failures, a_pool_whose_third_worker_is_refused_joins_the_two_that_started)
{
	struct pe_pool_config cfg = { .workers = 5, .handler = count_handler };
	pe_queue *queue;
	pe_pool *pool = NULL;
	int threads = th_count_threads(), rc, now;

	cr_assert_gt(threads, 0);
	cr_assert_eq(pe_queue_create(&queue, 8, sizeof(int)), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pe_queue_push(queue, &i), 0);
	cfg.queue = queue;
	fail_create(3, EAGAIN);
	rc = pe_pool_start(&pool, &cfg);
	stop_failing();
	cr_expect_eq(rc, -EAGAIN, "pe_pool_start: %d, not -EAGAIN", rc);
	cr_expect_null(pool);
	cr_expect_eq(atomic_load(&creates_seen), 3, "tried %d threads: it went on after the refusal",
	             atomic_load(&creates_seen));
	cr_expect(pe_queue_is_closed(queue), "the started workers were left waiting on an open queue");
	/* pe_pool_start joined them: the items were handled, not dropped. */
	cr_expect_eq(atomic_load(&handled), 3, "%d of the 3 queued items were handled",
	             atomic_load(&handled));
	now = threads_back_to(threads);
	cr_expect_eq(now, threads, "%d threads before, %d after", threads, now);
	pe_queue_destroy(queue);
	TH_ASSERT_NO_LEAKS();
}

/* pe_pool_start of three workers on a new queue (*QUEUE) with the NTH
 * pthread_create refused CREATE_ERR and pthread_attr_init failing ATTR_ERR
 * (0: neither): its result, having checked that the queue was left open. */
static int start_three_refused(pe_queue **queue, pe_pool **pool, int nth, int create_err,
                               int attr_err)
{
	struct pe_pool_config cfg = { .workers = 3, .handler = count_handler };
	int rc;

	cr_assert_eq(pe_queue_create(queue, 4, sizeof(int)), 0);
	cfg.queue = *queue;
	*pool = NULL;
	fail_create(nth, create_err);
	atomic_store(&attr_init_error, attr_err);
	rc = pe_pool_start(pool, &cfg);
	atomic_store(&attr_init_error, 0);
	stop_failing();
	cr_expect_not(pe_queue_is_closed(*queue), "a pool that never started closed the queue");
	return rc;
}

Test(thread_failures, a_pool_whose_first_worker_is_refused_leaves_the_queue_open)
{
	struct pe_pool_config cfg = { .workers = 3, .handler = count_handler };
	pe_queue *queue;
	pe_pool *pool;

	cr_expect_eq(start_three_refused(&queue, &pool, 1, EAGAIN, 0), -EAGAIN);
	cr_expect_null(pool);
	/* and the caller may try again with the same queue */
	cfg.queue = queue;
	cr_assert_eq(pe_pool_start(&pool, &cfg), 0);
	pe_queue_close(queue);
	pe_pool_join(pool);
	pe_queue_destroy(queue);
	TH_ASSERT_NO_LEAKS();
}

/* POSIX lets pthread_attr_init fail (ENOMEM): no worker is tried, and the
 * queue is left open for another try. */
Test(thread_failures, a_pool_whose_thread_attributes_cannot_be_made_starts_no_worker)
{
	pe_queue *queue;
	pe_pool *pool;
	/* The creates are only counted: the 1000th is never reached. */
	int rc = start_three_refused(&queue, &pool, 1000, EAGAIN, ENOMEM);

	cr_expect_eq(rc, -ENOMEM, "pe_pool_start: %d, not -ENOMEM", rc);
	cr_expect_eq(atomic_load(&creates_seen), 0, "tried %d threads without attributes",
	             atomic_load(&creates_seen));
	if (rc == 0) {
		pe_queue_close(queue);
		pe_pool_join(pool);
	}
	pe_queue_destroy(queue);
	TH_ASSERT_NO_LEAKS();
}

/* ---- the server ---------------------------------------------------------- */

/* pe_server_create with the second worker refused ERR: its result, having
 * checked that it left no descriptor and no thread behind. */
static int create_with_a_worker_refused(int err)
{
	struct pe_server_config cfg;
	pe_server *srv = NULL;
	int fds = th_count_fds(), threads = th_count_threads(), rc, now;

	cr_assert_geq(fds, 0);
	cr_assert_gt(threads, 0);
	tf_config(&cfg, 4, 4);
	cfg.log = tf_log_keep;
	fail_create(2, err);
	rc = pe_server_create(&srv, &cfg);
	stop_failing();
	cr_expect_null(srv);
	cr_expect_eq(th_count_fds(), fds, "descriptors leaked: %d open before, %d after", fds,
	             th_count_fds());
	now = threads_back_to(threads);
	cr_expect_eq(now, threads, "%d threads before, %d after", threads, now);
	return rc;
}

/* EAGAIN is the caller's to report (poolechod names the limit that binds),
 * so the library stays silent about it. */
Test(thread_failures, a_server_whose_second_worker_is_refused_fails_create_cleanly)
{
	int rc = create_with_a_worker_refused(EAGAIN);

	cr_expect_eq(rc, -EAGAIN, "pe_server_create: %d, not -EAGAIN", rc);
	cr_expect_null(strstr(tf_log_text(), "worker"), "logged what the caller reports: %s",
	               tf_log_text());
	TH_ASSERT_NO_LEAKS();
}

/* Any other refusal is logged with its reason. */
Test(thread_failures, a_worker_refused_for_another_reason_is_logged_with_it)
{
	int rc = create_with_a_worker_refused(EPERM);

	cr_expect_eq(rc, -EPERM, "pe_server_create: %d, not -EPERM", rc);
	cr_expect_not_null(strstr(tf_log_text(), "cannot start 4 worker threads: Operation not permitted"),
	                   "the log said: %s", tf_log_text());
	TH_ASSERT_NO_LEAKS();
}

Test(thread_failures, a_server_whose_run_thread_is_refused_can_be_started_again)
{
	struct pe_server_config cfg;
	pe_server *srv;
	int fds = th_count_fds(), fd, rc;

	tf_config(&cfg, 2, 2);
	cr_assert_eq(pe_server_create(&srv, &cfg), 0);
	fail_create(1, EAGAIN);
	rc = pe_server_start(srv);
	stop_failing();
	cr_expect_eq(rc, -EAGAIN, "pe_server_start: %d, not -EAGAIN", rc);
	cr_expect_eq(pe_server_wait(srv), -ECHILD, "waited for a run that never began");
	cr_assert_eq(pe_server_start(srv), 0, "a second start, after the refusal, was refused");
	fd = th_connect(pe_server_port(srv), IO_MS);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	rc = th_echo_check(fd, 1000, 7, IO_MS);
	cr_expect_eq(rc, 0, "echo: %s", strerror(-rc));
	close(fd);
	pe_server_stop(srv);
	cr_expect_eq(pe_server_wait(srv), 0);
	pe_server_destroy(srv);
	cr_expect_eq(th_count_fds(), fds, "descriptors leaked: %d open before, %d after", fds,
	             th_count_fds());
	TH_ASSERT_NO_LEAKS();
}
