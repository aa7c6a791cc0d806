/*
 * pool.c -- a fixed set of worker threads, each popping items from a
 * pe_queue and handing them to one handler. Workers leave when the queue is
 * closed and empty; nothing is cancelled and nothing polls a flag.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef HAVE_DL_ITERATE_PHDR
#include <link.h>
#endif

#include <poolecho/pool.h>

#include "quiet_thread.h"

struct worker {
	pthread_t thread;
	struct pe_pool *pool;
	unsigned index;
};

struct pe_pool {
	struct pe_pool_config cfg;
	unsigned started;
	struct worker *workers;
	unsigned char *item;   /* one item buffer per worker, item_stride apart */
	size_t item_stride;    /* the queue's item size, rounded up so each is max-aligned */
	int batch_inherited;   /* workers were created SCHED_BATCH */
};

/* The calling thread's policy, as the kernel has it (SCHED_RESET_ON_FORK
 * included). Not through sched_getscheduler(3): musl's is a stub that
 * fails with ENOSYS (POSIX means a process, Linux gives a thread), which
 * left musl's workers as SCHED_OTHER; glibc's is this system call. */
#ifdef SCHED_BATCH
static int kernel_policy(void)
{
#ifdef SYS_sched_getscheduler
	return (int)syscall(SYS_sched_getscheduler, 0);
#else
	return sched_getscheduler(0);
#endif
}
#endif

/* Short, blocking handlers gain nothing from preempting each other when
 * one is woken: SCHED_BATCH lets each run until it blocks again, which
 * saves an involuntary context switch per wake-up. Best effort, and only
 * from plain SCHED_OTHER: a program started as SCHED_IDLE or with a
 * real-time policy chose that for all its threads. */
static void set_batch_scheduling(void)
{
#ifdef SCHED_BATCH
	struct sched_param sp = {.sched_priority = 0};

	if (kernel_policy() == SCHED_OTHER)
		pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
#endif
}

/* New threads inherit their creator's policy, so a creator running as
 * SCHED_BATCH spares every worker its own sched_setscheduler(2)
 * (bench/RESULTS.md, "Starting and stopping 10,000 workers"). Only from
 * plain SCHED_OTHER, which the creator may always return to; returns
 * whether it switched. The kernel is asked, not glibc, whose copy of the
 * policy goes stale when something else changes it. */
static int creator_enter_batch(void)
{
#ifdef SCHED_BATCH
	struct sched_param sp = {.sched_priority = 0};

	if (kernel_policy() != SCHED_OTHER) /* also if SCHED_RESET_ON_FORK is set */
		return 0;
	return pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp) == 0;
#else
	return 0;
#endif
}

static void creator_leave_batch(void)
{
	struct sched_param sp = {.sched_priority = 0};

	pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
}

#ifdef HAVE_DL_ITERATE_PHDR
static int add_tls_block(struct dl_phdr_info *info, size_t size, void *data)
{
	size_t *total = data;

	(void)size;
	for (size_t i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		size_t align = ph->p_align ? ph->p_align : 1;

		if (ph->p_type == PT_TLS)
			*total += (ph->p_memsz + align - 1) / align * align;
	}
	return 0;
}
#endif

/* glibc takes a thread's static TLS, every TLS block of the program and
 * of the libraries loaded with it (the embedder's too), out of the stack
 * size it is asked for: a program with 100 KiB of TLS left a worker of
 * 128 KiB some 24 KiB, and one with more than the stack size had its
 * workers refused (EINVAL). Asked for that much more, each worker has
 * the stack_size it was given, but for what glibc takes beside the TLS
 * blocks, counted in the figures above: its thread descriptor and static
 * TLS surplus, some 4 KiB on x86-64 (glibc 2.36: 4,224 bytes of static
 * TLS for 144 of PT_TLS). (Libraries loaded later are counted too, though
 * their TLS is not on the stack.) */
static size_t static_tls_size(void)
{
	size_t total = 0;

#ifdef HAVE_DL_ITERATE_PHDR
	dl_iterate_phdr(add_tls_block, &total);
#endif
	return total;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pe_pool *pool = w->pool;
	void *item = pool->item + (size_t)w->index * pool->item_stride;

	if (pool->cfg.batch_scheduling && !pool->batch_inherited)
		set_batch_scheduling();
	while (pe_queue_pop(pool->cfg.queue, item) == 0)
		pool->cfg.handler(pool->cfg.ctx, w->index, item);
	return NULL;
}

static void join_started(struct pe_pool *pool)
{
	for (unsigned i = 0; i < pool->started; i++)
		pthread_join(pool->workers[i].thread, NULL);
}

static void pool_free(struct pe_pool *pool)
{
	free(pool->item);
	free(pool->workers);
	free(pool);
}

int pe_pool_start(pe_pool **out, const struct pe_pool_config *cfg)
{
	const size_t align = _Alignof(max_align_t);
	struct pe_pool *pool;
	pthread_attr_t attr;
	sigset_t caller_mask;
	size_t item_size;
	int rc = 0;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg || cfg->workers == 0 || !cfg->queue || !cfg->handler)
		return -EINVAL;
	item_size = pe_queue_item_size(cfg->queue);
	pool = calloc(1, sizeof *pool);
	if (!pool)
		return -ENOMEM;
	pool->cfg = *cfg;
	/* A handler may read its item in place as its own struct: give each
	 * worker's copy the alignment calloc gives the first. (No overflow:
	 * the queue has already allocated an item of this size.) */
	pool->item_stride = (item_size + align - 1) / align * align;
	pool->workers = calloc(cfg->workers, sizeof *pool->workers);
	pool->item = calloc(cfg->workers, pool->item_stride);
	if (!pool->workers || !pool->item) {
		pool_free(pool);
		return -ENOMEM;
	}
	/* POSIX lets it fail (ENOMEM): no worker is tried without attributes. */
	if ((rc = -pthread_attr_init(&attr)) != 0) {
		pool_free(pool);
		return rc;
	}
	if (cfg->stack_size) {
		size_t min = (size_t)PTHREAD_STACK_MIN;
		size_t size = cfg->stack_size < min ? min : cfg->stack_size;
		size_t tls = static_tls_size();
		long page = sysconf(_SC_PAGESIZE);

		if (size <= SIZE_MAX - tls)
			size += tls;
		/* Whole pages: glibc puts the thread's descriptor at the end of
		 * the size asked, not of the pages it maps, so a size a few bytes
		 * over a page made every idle worker touch one more (4 KiB of
		 * resident memory each, 10.1 -> 14.0 MiB at c1000). */
		if (page > 0 && size % (size_t)page && size <= SIZE_MAX - (size_t)page)
			size += (size_t)page - size % (size_t)page;
		rc = -pthread_attr_setstacksize(&attr, size);
		if (rc != 0) {
			pthread_attr_destroy(&attr);
			pool_free(pool);
			return rc;
		}
	}
	pool->batch_inherited = cfg->batch_scheduling && creator_enter_batch();
	/* Workers inherit the mask: process signals go to the application's
	 * threads, never into a handler, and a handler's write into a pipe or
	 * socket whose reader is gone (poolechod's splice(2), which has no
	 * MSG_NOSIGNAL) raises SIGPIPE, which a program embedding the pool
	 * may not ignore. */
	pe_quiet_signals(&caller_mask);
	for (unsigned i = 0; rc == 0 && i < cfg->workers; i++) {
		struct worker *w = &pool->workers[i];
		w->pool = pool;
		w->index = i;
		rc = -pthread_create(&w->thread, &attr, worker_main, w);
		if (rc == 0)
			pool->started++;
	}
	pthread_sigmask(SIG_SETMASK, &caller_mask, NULL);
	pthread_attr_destroy(&attr);
	if (pool->batch_inherited)
		creator_leave_batch();
	if (rc != 0) {
		/* Workers already started leave their pop only when the queue
		 * closes; with none started, the caller's queue stays open. */
		if (pool->started > 0)
			pe_queue_close(cfg->queue);
		join_started(pool);
		pool_free(pool);
		return rc;
	}
	*out = pool;
	return 0;
}

void pe_pool_join(pe_pool *pool)
{
	if (!pool)
		return;
	join_started(pool);
	pool_free(pool);
}

unsigned pe_pool_size(const pe_pool *pool)
{
	return pool->cfg.workers;
}
