/*
 * cpus.h -- how many CPUs this process may use: what the server sizes its
 * busy polling by and the client its default thread count and its share
 * of CPU time.
 */
#ifndef POOLECHO_CPUS_H
#define POOLECHO_CPUS_H

#include <stdbool.h>

/* The CPU time the cgroup CPU quota of this process (and those above it)
 * allows, in CPUs: 0.5 for 50 ms of every 100 ms (systemd's CPUQuota=50%,
 * docker's --cpus=0.5); -1 when none is set, or it cannot be read. */
double pe_cpu_quota(void);

/* The CPUs the calling thread may run on (taskset, cpusets), which the
 * threads it starts inherit, else all online ones; at least 1. */
unsigned pe_allowed_cpus(void);

/* Of ALLOWED CPUs, those a CPU quota of QUOTA CPUs (-1: none) leaves:
 * its whole CPUs, and one more for a part of one when ROUND_UP. */
unsigned pe_cpus_within_quota(unsigned allowed, double quota, bool round_up);

/* pe_allowed_cpus(), no more than the CPU quota rounded up; at least 1. */
unsigned pe_usable_cpus(void);

/* pe_allowed_cpus(), no more than the CPU quota rounded down: the CPUs
 * that may be spent spinning without running the quota out. 0 under a
 * quota of less than one CPU. */
unsigned pe_whole_cpus(void);

#endif
