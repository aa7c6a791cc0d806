/*
 * monotonic.h -- timed waits on CLOCK_MONOTONIC, so that a step of the
 * wall clock can neither cut a wait short nor stretch it: condition
 * variables that time out on that clock, and deadlines on it.
 */
#ifndef POOLECHO_MONOTONIC_H
#define POOLECHO_MONOTONIC_H

#include <pthread.h>
#include <time.h>

/* pthread_cond_init for a condition variable whose timed waits run on
 * CLOCK_MONOTONIC: 0, or an errno value. */
int pe_cond_init_monotonic(pthread_cond_t *cond);

/* Move *TS on by MS milliseconds. */
void pe_timespec_add_ms(struct timespec *ts, unsigned long ms);

#endif
