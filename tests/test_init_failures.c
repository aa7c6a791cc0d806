/*
 * test_init_failures.c -- what the queue and the server do when the system
 * cannot make a mutex, a condition variable or a condition's attributes
 * (POSIX allows EAGAIN and ENOMEM; glibc never fails): the error comes
 * back, nothing is left open or allocated, and only what was made is
 * destroyed. All of it fails before the workers start.
 *
 * pthread_mutex_init, pthread_cond_init, pthread_condattr_init and the
 * mutex and condition destroys are wrapped at link time (-Wl,--wrap=...),
 * in this program alone, so the library's own calls can be made to fail
 * on demand and counted. So is fcntl(2), for the server's O_NONBLOCK.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <poolecho/queue.h>
#include <poolecho/server.h>

#include "helpers.h"
#include "server_fixture.h"

TestSuite(init_failures, .timeout = 30);

/* ---- the wrapped calls ---------------------------------------------------- */

enum kind { MUTEX, COND, CONDATTR, KINDS };
static const char *const kind_name[KINDS] = {"pthread_mutex_init", "pthread_cond_init",
                                             "pthread_condattr_init"};

static atomic_bool counting;        /* only the library call under test counts */
static atomic_int inits[KINDS];     /* calls seen since counting began */
static atomic_int made, destroyed;  /* inits that succeeded, and destroys */
static atomic_int failing_kind = -1, failing_nth, failure_error;

int __real_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int __wrap_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int __real_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a);
int __wrap_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a);
int __real_pthread_condattr_init(pthread_condattr_t *a);
int __wrap_pthread_condattr_init(pthread_condattr_t *a);
int __real_pthread_mutex_destroy(pthread_mutex_t *m);
int __wrap_pthread_mutex_destroy(pthread_mutex_t *m);
int __real_pthread_cond_destroy(pthread_cond_t *c);
int __wrap_pthread_cond_destroy(pthread_cond_t *c);

/* Whether this init of KIND is the one to fail; counts it. */
static bool fails_now(enum kind k)
{
	if (!atomic_load(&counting))
		return false;
	return atomic_fetch_add(&inits[k], 1) + 1 == atomic_load(&failing_nth) &&
	       atomic_load(&failing_kind) == (int)k;
}

static int made_if(int rc)
{
	if (rc == 0 && atomic_load(&counting))
		atomic_fetch_add(&made, 1);
	return rc;
}

int __wrap_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
	return fails_now(MUTEX) ? atomic_load(&failure_error)
	                        : made_if(__real_pthread_mutex_init(m, a));
}

int __wrap_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a)
{
	return fails_now(COND) ? atomic_load(&failure_error) : made_if(__real_pthread_cond_init(c, a));
}

/* An attribute is not a lock: it is not counted among those made. */
int __wrap_pthread_condattr_init(pthread_condattr_t *a)
{
	return fails_now(CONDATTR) ? atomic_load(&failure_error) : __real_pthread_condattr_init(a);
}

int __wrap_pthread_mutex_destroy(pthread_mutex_t *m)
{
	if (atomic_load(&counting))
		atomic_fetch_add(&destroyed, 1);
	return __real_pthread_mutex_destroy(m);
}

int __wrap_pthread_cond_destroy(pthread_cond_t *c)
{
	if (atomic_load(&counting))
		atomic_fetch_add(&destroyed, 1);
	return __real_pthread_cond_destroy(c);
}

/* Count from now on; the NTH init of KIND fails with ERR (NTH 0: none). */
static void arm(enum kind k, int nth, int err)
{
	for (int i = 0; i < KINDS; i++)
		atomic_store(&inits[i], 0);
	atomic_store(&made, 0);
	atomic_store(&destroyed, 0);
	atomic_store(&failing_kind, (int)k);
	atomic_store(&failing_nth, nth);
	atomic_store(&failure_error, err);
	atomic_store(&counting, true);
}

static void disarm(void)
{
	atomic_store(&counting, false);
	atomic_store(&failing_nth, 0);
}

/* EAGAIN and ENOMEM in turn: both are POSIX's. */
static int error_for(int nth)
{
	return nth % 2 ? EAGAIN : ENOMEM;
}

/* ---- failing each in turn ---------------------------------------------- */

/* A create, made to fail or not: its result, having destroyed what it made
 * and checked that a failure left *OUT NULL. */
typedef int create_fn(void *ctx);

/* Count the inits CREATE makes into SEEN, then fail each in turn: its error
 * comes back, what was made is destroyed (and nothing else), and no
 * descriptor is left open. */
static void fail_each_init(const char *what, create_fn *create, void *ctx, int seen[KINDS])
{
	int fds = th_count_fds();

	cr_assert_geq(fds, 0);
	arm(MUTEX, 0, 0);
	cr_assert_eq(create(ctx), 0, "%s failed with nothing made to fail", what);
	disarm();
	for (int k = 0; k < KINDS; k++)
		seen[k] = atomic_load(&inits[k]);

	for (int k = 0; k < KINDS; k++)
		for (int nth = 1; nth <= seen[k]; nth++) {
			int err = error_for(nth), rc;

			arm((enum kind)k, nth, err);
			rc = create(ctx);
			disarm();
			cr_expect_eq(rc, -err, "%s #%d failed with %s: %s returned %d (%s)", kind_name[k],
			             nth, strerror(err), what, rc, strerror(rc < 0 ? -rc : 0));
			cr_expect_eq(atomic_load(&destroyed), atomic_load(&made),
			             "%s #%d failed: %d made, %d destroyed", kind_name[k], nth,
			             atomic_load(&made), atomic_load(&destroyed));
			cr_expect_eq(th_count_fds(), fds, "%s #%d failed: %d descriptors open before, "
			             "%d after", kind_name[k], nth, fds, th_count_fds());
		}
}

/* ---- the queue and the server --------------------------------------------- */

static int create_queue(void *ctx)
{
	pe_queue *q;
	int rc = pe_queue_create(&q, 4, sizeof(int));

	(void)ctx;
	if (rc == 0)
		pe_queue_destroy(q);
	else
		cr_expect_null(q);
	return rc;
}

Test(init_failures, a_queue_whose_lock_or_condition_cannot_be_made_fails_create_cleanly)
{
	int seen[KINDS];

	fail_each_init("pe_queue_create", create_queue, NULL, seen);
	cr_expect_eq(seen[MUTEX], 1, "the queue made %d mutexes", seen[MUTEX]);
	/* not_full; each waiting popper has a semaphore of its own */
	cr_expect_eq(seen[COND], 1, "the queue made %d condition variables", seen[COND]);
	cr_expect_eq(seen[CONDATTR], 1, "the queue made %d condition attributes", seen[CONDATTR]);
	TH_ASSERT_NO_LEAKS();
}

static atomic_int errors_logged;

static void count_errors(void *ctx, enum pe_log_level level, const char *message)
{
	(void)ctx;
	if (level == PE_LOG_ERROR) {
		atomic_fetch_add(&errors_logged, 1);
		cr_log_info("logged: %s", message);
	}
}

/* An EAGAIN from a lock must be logged: unlogged, EAGAIN is the refused
 * worker thread that poolechod reports with the thread limits. */
static int create_server(void *ctx)
{
	pe_server *srv;
	int rc;

	atomic_store(&errors_logged, 0);
	rc = pe_server_create(&srv, ctx);
	if (rc == 0)
		pe_server_destroy(srv);
	else
		cr_expect_null(srv);
	if (rc == -EAGAIN)
		cr_expect_eq(atomic_load(&errors_logged), 1, "an EAGAIN of a lock was logged %d "
		             "times, not once", atomic_load(&errors_logged));
	return rc;
}

Test(init_failures, a_server_whose_lock_or_condition_cannot_be_made_fails_create_cleanly)
{
	struct pe_server_config cfg;
	int seen[KINDS];

	tf_config(&cfg, 2, 2);
	cfg.log = count_errors;
	fail_each_init("pe_server_create", create_server, &cfg, seen);
	/* the server's own lock and condition, and the queue's */
	cr_expect_geq(seen[MUTEX], 2, "the server made %d mutexes", seen[MUTEX]);
	cr_expect_geq(seen[COND], 2, "the server made %d condition variables", seen[COND]);
	cr_expect_geq(seen[CONDATTR], 2, "the server made %d condition attributes", seen[CONDATTR]);
	TH_ASSERT_NO_LEAKS();
}

/* ---- fcntl ------------------------------------------------------------ */

static atomic_bool fcntl_counting, fcntl_failing_setfd;
static atomic_int fcntl_calls, fcntl_failing_nth;

int __real_fcntl(int fd, int cmd, ...);
int __wrap_fcntl(int fd, int cmd, ...);

/* The library's fcntl calls all take an int or nothing. */
int __wrap_fcntl(int fd, int cmd, ...)
{
	int arg = 0;

	if (cmd != F_GETFL && cmd != F_GETFD) {
		va_list ap;

		va_start(ap, cmd);
		arg = va_arg(ap, int);
		va_end(ap);
	}
	if ((atomic_load(&fcntl_counting) &&
	     atomic_fetch_add(&fcntl_calls, 1) + 1 == atomic_load(&fcntl_failing_nth)) ||
	    (cmd == F_SETFD && atomic_load(&fcntl_failing_setfd))) {
		errno = EACCES;
		return -1;
	}
	return __real_fcntl(fd, cmd, arg);
}

/* Each fcntl of pe_server_create (the listener's O_NONBLOCK, the stop
 * pipe's, and without pipe2 the stop pipe's FD_CLOEXEC) failing in turn fails the create with that call's error, logged,
 * and leaves nothing open. Unchecked, a failed F_GETFL once handed F_SETFL
 * -1 (every flag: Linux refused O_DIRECT with EINVAL, so the error was the
 * wrong one), and a failed O_NONBLOCK on the stop pipe went unnoticed. */
Test(init_failures, a_server_whose_fcntl_fails_fails_create_with_its_error)
{
	struct pe_server_config cfg;
	int fds = th_count_fds(), seen;

	tf_config(&cfg, 2, 2);
	cfg.log = count_errors;
	atomic_store(&fcntl_calls, 0);
	atomic_store(&fcntl_failing_nth, 0);
	atomic_store(&fcntl_counting, true);
	cr_assert_eq(create_server(&cfg), 0, "pe_server_create failed with nothing made to fail");
	atomic_store(&fcntl_counting, false);
	seen = atomic_load(&fcntl_calls);
	if (seen == 0)
		cr_skip_test("the library calls no fcntl that -Wl,--wrap=fcntl catches: a large-file "
		             "build (_FILE_OFFSET_BITS=64) calls fcntl64 instead");
	/* F_GETFL and F_SETFL, for the listener and for the stop pipe (and
	 * FD_CLOEXEC twice, for it, without pipe2) */
	cr_assert_geq(seen, 4, "pe_server_create made %d fcntl calls", seen);

	for (int nth = 1; nth <= seen; nth++) {
		int rc;

		atomic_store(&fcntl_calls, 0);
		atomic_store(&fcntl_failing_nth, nth);
		atomic_store(&fcntl_counting, true);
		rc = create_server(&cfg);
		atomic_store(&fcntl_counting, false);
		cr_expect_eq(rc, -EACCES, "fcntl #%d of %d failed with EACCES: pe_server_create "
		             "returned %d (%s)", nth, seen, rc, strerror(rc < 0 ? -rc : 0));
		cr_expect_eq(atomic_load(&errors_logged), 1, "fcntl #%d failed: %d errors logged, "
		             "not one", nth, atomic_load(&errors_logged));
		cr_expect_eq(th_count_fds(), fds, "fcntl #%d failed: %d descriptors open before, "
		             "%d after", nth, fds, th_count_fds());
	}
	TH_ASSERT_NO_LEAKS();
}

/* Descriptors the log callback opened while the stop pipe's error was
 * logged: the numbers the failed pipe had just given back. */
static int opened_meanwhile[2] = {-1, -1};

static void take_freed_numbers(void *ctx, enum pe_log_level level, const char *message)
{
	(void)ctx;
	(void)level;
	if (strstr(message, "stop pipe") && opened_meanwhile[0] < 0) {
		opened_meanwhile[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		opened_meanwhile[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
}

/* Without pipe2, a stop pipe that cannot be made close-on-exec is closed
 * by pe_cloexec_pipe; the create that fails must not close its numbers a
 * second time, which another thread (here the log callback) may have
 * been given meanwhile. */
Test(init_failures, a_stop_pipe_that_cannot_be_close_on_exec_closes_no_descriptor_twice)
{
	struct pe_server_config cfg;
	pe_server *srv;
	int rc;

#ifdef HAVE_PIPE2
	cr_skip_test("pipe2 makes the stop pipe close-on-exec at once: no FD_CLOEXEC can fail");
#endif
	tf_config(&cfg, 2, 2);
	cfg.log = take_freed_numbers;
	atomic_store(&fcntl_failing_setfd, true);
	rc = pe_server_create(&srv, &cfg);
	atomic_store(&fcntl_failing_setfd, false);
	cr_assert_eq(rc, -EACCES, "pe_server_create returned %d (%s)", rc,
	             strerror(rc < 0 ? -rc : 0));
	cr_assert_geq(opened_meanwhile[0], 0, "the stop pipe's failure was not logged");
	for (int i = 0; i < 2; i++) {
		cr_expect_geq(fcntl(opened_meanwhile[i], F_GETFD), 0, "descriptor %d, opened after "
		              "the stop pipe failed, was closed by pe_server_create",
		              opened_meanwhile[i]);
		close(opened_meanwhile[i]);
	}
	TH_ASSERT_NO_LEAKS();
}
