/*
 * cpus.c -- the CPUs this process may run on, and how much of them its
 * cgroup's CPU quota lets it use.
 */
#include <config.h>

#include <sched.h>
#include <stdbool.h>
#include <unistd.h>

#include "cgroup.h"
#include "cpus.h"

unsigned pe_allowed_cpus(void)
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

double pe_cpu_quota(void)
{
#ifdef __linux__
	return pe_cgroup_cpu_quota("/proc/self/mountinfo", "/proc/self/cgroup");
#else
	return -1;
#endif
}

unsigned pe_cpus_within_quota(unsigned allowed, double quota, bool round_up)
{
	unsigned whole;

	if (quota < 0 || quota >= allowed)
		return allowed;
	whole = (unsigned)quota;
	return round_up && quota > whole ? whole + 1 : whole;
}

unsigned pe_usable_cpus(void)
{
	/* Half a CPU's time still needs a thread to run on. */
	unsigned usable = pe_cpus_within_quota(pe_allowed_cpus(), pe_cpu_quota(), true);

	return usable ? usable : 1;
}

unsigned pe_whole_cpus(void)
{
	return pe_cpus_within_quota(pe_allowed_cpus(), pe_cpu_quota(), false);
}
