/*
 * monotonic.c -- condition variables and deadlines on CLOCK_MONOTONIC.
 */
#include <config.h>

#include "monotonic.h"

int pe_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t ca;
	int rc;

	/* POSIX lets it fail (ENOMEM); an attribute never made is not used or destroyed. */
	if ((rc = pthread_condattr_init(&ca)) != 0)
		return rc;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

void pe_timespec_add_ms(struct timespec *ts, unsigned long ms)
{
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}
