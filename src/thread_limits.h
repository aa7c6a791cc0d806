/*
 * thread_limits.h -- the limits on how many threads this process may start,
 * read when starting the workers failed, so that the error names the limits
 * and their values instead of a list of places to look.
 */
#ifndef POOLECHO_THREAD_LIMITS_H
#define POOLECHO_THREAD_LIMITS_H

#include <stddef.h>

/* Describe into BUF (always terminated) the limits that apply, e.g.
 * "ulimit -u 4096, kernel.threads-max 192725, vm.max_map_count 65530 (2 per
 * thread), cgroup pids.max 4915 (systemd TasksMax=)". Limits that cannot be
 * read, or that do not bind this process, are left out; "" when none can. */
void thread_limits_describe(char *buf, size_t size);

#ifdef __linux__
/* The lowest pids.max from a process's cgroup up to the top of what is
 * mounted, in v1's pids hierarchy if one is mounted, else in cgroup2: -1
 * when none is set (every level "max", or no pids controller). MOUNTINFO
 * and CGROUP are that process's /proc/PID/mountinfo and /proc/PID/cgroup. */
long thread_limits_cgroup_pids_max(const char *mountinfo, const char *cgroup);
#endif

#endif
