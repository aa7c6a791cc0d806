/*
 * thread_limits.c -- read the limits on threads: RLIMIT_NPROC and
 * RLIMIT_AS, and on Linux kernel.threads-max, kernel.pid_max,
 * vm.max_map_count (a thread's stack and its guard page are two mappings)
 * and the pids.max of this process's cgroup and those above it (v1 or v2),
 * which is what systemd's TasksMax= and a container's pids limit set.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cgroup.h"
#include "sysfile.h"
#include "thread_limits.h"

/* Append to BUF, separated by ", ". */
static void add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used && used + 2 < size) {
		strcpy(buf + used, ", ");
		used += 2;
	}
	if (used + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

#ifdef __linux__
static void visit_pids_max(const char *dir, int v2, void *ctx)
{
	long *lowest = ctx;
	char file[PE_CGROUP_DIR_MAX + 16];
	long v;

	(void)v2;
	/* The true root has no pids.max; a container's mount top may. */
	snprintf(file, sizeof file, "%s/pids.max", dir);
	v = pe_sysfile_number(file);
	if (v >= 0 && (*lowest < 0 || v < *lowest))
		*lowest = v;
}

long thread_limits_cgroup_pids_max(const char *mountinfo, const char *cgroup)
{
	long lowest = -1;

	pe_cgroup_walk("pids", mountinfo, cgroup, visit_pids_max, &lowest);
	return lowest;
}
#endif

void thread_limits_describe(char *buf, size_t size)
{
	struct rlimit rl;

	if (!size)
		return;
	*buf = '\0';
#ifdef RLIMIT_NPROC
	/* It does not bind root outside a user namespace: say so rather than
	 * guess which this is. */
	if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		add(buf, size, "ulimit -u %llu%s", (unsigned long long)rl.rlim_cur,
		    getuid() == 0 ? " (not for root outside a user namespace)" : "");
#endif
	/* glibc turns a stack it cannot map into EAGAIN as well. */
	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		add(buf, size, "ulimit -v %llu (each worker maps a --stack-size stack)",
		    (unsigned long long)rl.rlim_cur / 1024);
#ifdef __linux__
	{
		long threads_max = pe_sysfile_number("/proc/sys/kernel/threads-max");
		long pid_max = pe_sysfile_number("/proc/sys/kernel/pid_max");
		long map_count = pe_sysfile_number("/proc/sys/vm/max_map_count");
		long pids_max = thread_limits_cgroup_pids_max("/proc/self/mountinfo",
		                                              "/proc/self/cgroup");

		if (threads_max >= 0)
			add(buf, size, "kernel.threads-max %ld", threads_max);
		if (pid_max >= 0)
			add(buf, size, "kernel.pid_max %ld", pid_max);
		if (map_count >= 0)
			add(buf, size, "vm.max_map_count %ld (2 per thread)", map_count);
		if (pids_max >= 0)
			add(buf, size, "cgroup pids.max %ld (systemd TasksMax=)", pids_max);
	}
#endif
}
