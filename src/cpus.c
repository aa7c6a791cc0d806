/*
 * cpus.c -- the CPUs this process may run on.
 */
#include <config.h>

#include <sched.h>
#include <unistd.h>

#include "cpus.h"

unsigned pe_usable_cpus(void)
{
	long n;
#ifdef HAVE_SCHED_GETAFFINITY
	cpu_set_t set;

	/* Under taskset, the CPUs we may run on, not all the machine has. */
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
#endif
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}
