/*
 * cgroup.h -- what this process's cgroup and those above it limit, on
 * cgroup v1, v2 and the hybrid of both, on a host and in a container: the
 * threads (pids.max: systemd's TasksMax=), the CPU time (a quota:
 * systemd's CPUQuota=, docker's --cpus) and the memory (systemd's
 * MemoryMax=, docker's --memory).
 */
#ifndef POOLECHO_CGROUP_H
#define POOLECHO_CGROUP_H

#ifdef __linux__
/* The longest directory pe_cgroup_walk() gives VISIT, with its '\0'. */
#define PE_CGROUP_DIR_MAX (2 * 4096 + 16)

/* Call VISIT with the directory of a process's cgroup in the hierarchy of
 * CONTROLLER ("pids", "cpu"): v1's own if mounted, else cgroup2's (V2
 * nonzero); then with each directory above it, up to the top of what is
 * mounted. -1 when neither has it, or the cgroup is outside the mount.
 * MOUNTINFO and CGROUP are that process's /proc/PID/mountinfo and
 * /proc/PID/cgroup. */
int pe_cgroup_walk(const char *controller, const char *mountinfo, const char *cgroup,
                   void (*visit)(const char *dir, int v2, void *ctx), void *ctx);

/* The lowest CPU quota on the way up, in CPUs (50 ms of every 100 ms is
 * 0.5): -1 when no level sets one. */
double pe_cgroup_cpu_quota(const char *mountinfo, const char *cgroup);

/* The lowest memory limit on the way up, in bytes (v2's memory.max, v1's
 * memory.limit_in_bytes): -1 when no level sets one. Beyond it the kernel's
 * OOM killer ends the process with SIGKILL, which it cannot log. */
long long pe_cgroup_memory_max(const char *mountinfo, const char *cgroup);
#endif

#endif
