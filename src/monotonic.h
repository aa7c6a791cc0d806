/*
 * monotonic.h -- timed waits on CLOCK_MONOTONIC, so that a step of the
 * wall clock can neither cut a wait short nor stretch it: condition
 * variables that time out on that clock, deadlines on it, and the time
 * on it now.
 */
#ifndef POOLECHO_MONOTONIC_H
#define POOLECHO_MONOTONIC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* pthread_cond_init for a condition variable whose timed waits run on
 * CLOCK_MONOTONIC: 0, or an errno value. */
int pe_cond_init_monotonic(pthread_cond_t *cond);

/* Move *TS on by MS milliseconds. */
void pe_timespec_add_ms(struct timespec *ts, unsigned long ms);

/* NS nanoseconds (>= 0) as a relative timeout, for the calls that take
 * one as a timespec (sigtimedwait, epoll_pwait2). */
static inline struct timespec pe_timespec_from_ns(int64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / 1000000000),
	                         .tv_nsec = (long)(ns % 1000000000)};
}

/* CLOCK_MONOTONIC now, in 1/PER_SEC seconds (PER_SEC divides 10^9).
 * Always inlined, PER_SEC folded: the echo loop then compiles exactly as
 * with its own copy (plain inline let GCC stop inlining its callers). */
static inline __attribute__((always_inline))
int64_t pe_monotonic_now(int64_t per_sec)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * per_sec + ts.tv_nsec / (1000000000 / per_sec);
}

static inline int64_t pe_now_ms(void) { return pe_monotonic_now(1000); }
static inline int64_t pe_now_us(void) { return pe_monotonic_now(1000000); }
static inline int64_t pe_now_ns(void) { return pe_monotonic_now(1000000000); }

#endif
