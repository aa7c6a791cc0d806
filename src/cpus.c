/*
 * cpus.c -- the CPUs this process may run on, and how much of them its
 * cgroup's CPU quota lets it use.
 */
#include <config.h>

#include <sched.h>
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

unsigned pe_usable_cpus(void)
{
	unsigned allowed = pe_allowed_cpus();
	double quota = pe_cpu_quota();

	/* Half a CPU's time still needs a thread to run on. */
	if (quota > 0 && quota < allowed) {
		unsigned whole = (unsigned)quota;

		return whole + (quota > whole);
	}
	return allowed;
}

unsigned pe_whole_cpus(void)
{
	unsigned allowed = pe_allowed_cpus();
	double quota = pe_cpu_quota();

	return quota >= 0 && quota < allowed ? (unsigned)quota : allowed;
}
