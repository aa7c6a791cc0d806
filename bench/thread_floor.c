/*
 * thread_floor.c -- the least a thread pool can cost to start and stop on
 * this machine: N threads with the given stack size, each waiting on one
 * condition variable (as an idle worker waits on the queue), and nothing
 * else. bench/startup times it the same way as poolechod.
 *
 * Usage: thread_floor N STACK_BYTES [batch]
 * With "batch" the threads are created SCHED_BATCH, as poolechod creates
 * its workers: the creating thread switches to it and they inherit it.
 * Prints "ready" once pthread_create(3) has returned for every thread (the
 * point where poolechod logs "listening on"); on SIGTERM wakes and joins
 * them all, then exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop = PTHREAD_COND_INITIALIZER;
static int stopping;

static void *idle_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping)
		pthread_cond_wait(&stop, &lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(int argc, char **argv)
{
	int args_ok = argc == 3 || (argc == 4 && strcmp(argv[3], "batch") == 0);
	unsigned long n = args_ok ? strtoul(argv[1], NULL, 10) : 0;
	unsigned long stack = args_ok ? strtoul(argv[2], NULL, 10) : 0;
	pthread_attr_t attr;
	pthread_t *threads;
	sigset_t term;
	int sig, rc;

	if (n == 0 || stack == 0) {
		fprintf(stderr, "usage: thread_floor N STACK_BYTES [batch]\n");
		return 2;
	}
	if (argc == 4) {
		struct sched_param sp = {.sched_priority = 0};

		if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0) {
			fprintf(stderr, "thread_floor: SCHED_BATCH: %s\n", strerror(errno));
			return 1;
		}
	}
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL); /* inherited: only sigwait takes it */
	threads = calloc(n, sizeof *threads);
	if (!threads) {
		fprintf(stderr, "thread_floor: %lu threads: %s\n", n, strerror(ENOMEM));
		return 1;
	}
	pthread_attr_init(&attr);
	if ((rc = pthread_attr_setstacksize(&attr, stack)) != 0) {
		fprintf(stderr, "thread_floor: stack size %lu: %s\n", stack, strerror(rc));
		return 1;
	}
	for (unsigned long i = 0; i < n; i++) {
		if ((rc = pthread_create(&threads[i], &attr, idle_worker, NULL)) != 0) {
			fprintf(stderr, "thread_floor: thread %lu: %s\n", i + 1, strerror(rc));
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	sigwait(&term, &sig);
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_broadcast(&stop);
	pthread_mutex_unlock(&lock);
	for (unsigned long i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	return 0;
}
