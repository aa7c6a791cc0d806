/*
 * test_pool_tls.c -- a program with much thread-local storage of its own
 * still gives each worker stack_size bytes of stack: glibc carves a
 * thread's static TLS (the whole program's, the embedder's too) out of the
 * stack size asked for. A binary of its own, as the TLS is every thread's.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <poolecho/pool.h>
#include <poolecho/queue.h>

#include "helpers.h"

TestSuite(pool_tls, .timeout = 30);

/* 100 KiB of the program's own: a scratch buffer per thread, as some
 * logging or formatting libraries keep. Not static, so that it stays. */
#define PROGRAM_TLS (100 * 1024)
_Thread_local char th_program_scratch[PROGRAM_TLS];

#define STACK_SIZE (128 * 1024)
#define HANDLER_STACK (64 * 1024) /* half the stack asked for */

static atomic_int handled;

/* Use HANDLER_STACK bytes of the worker's stack, as a log callback that
 * formats into a buffer of its own might. */
static void deep_handler(void *ctx, unsigned worker, void *item)
{
	volatile char frame[HANDLER_STACK];

	(void)ctx;
	(void)worker;
	(void)item;
	for (size_t i = 0; i < sizeof frame; i += 256) /* every page of it */
		frame[i] = 1;
	th_program_scratch[0] = frame[0];
	atomic_fetch_add(&handled, 1);
}

static void run_pool(size_t stack_size)
{
	struct pe_pool_config cfg = {.workers = 2, .stack_size = stack_size,
	                             .handler = deep_handler};
	pe_queue *queue;
	pe_pool *pool = NULL;
	int v = 0, rc;

	atomic_store(&handled, 0);
	cr_assert_eq(pe_queue_create(&queue, 4, sizeof v), 0);
	cfg.queue = queue;
	rc = pe_pool_start(&pool, &cfg);
	cr_assert_eq(rc, 0, "pe_pool_start with %zu bytes of stack and %d of the program's TLS: %s",
	             stack_size, PROGRAM_TLS, strerror(-rc));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pe_queue_push(queue, &v), 0);
	pe_queue_close(queue);
	pe_pool_join(pool);
	cr_expect_eq(atomic_load(&handled), 4);
	pe_queue_destroy(queue);
}

/* Without the TLS added, the worker had 24 KiB and the handler overran it. */
Test(pool_tls, a_worker_has_its_stack_size_beside_the_program_s_tls)
{
	run_pool(STACK_SIZE);
	TH_ASSERT_NO_LEAKS();
}

/* Without it, glibc refused the thread (EINVAL): no room for the TLS. */
Test(pool_tls, a_stack_size_below_the_program_s_tls_still_starts)
{
	run_pool(HANDLER_STACK + 16 * 1024);
	TH_ASSERT_NO_LEAKS();
}
