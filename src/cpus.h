/*
 * cpus.h -- how many CPUs this process may run on: what the server sizes
 * its busy polling by and the client its default thread count.
 */
#ifndef POOLECHO_CPUS_H
#define POOLECHO_CPUS_H

/* The CPUs the calling thread may run on (taskset, cpusets), which the
 * threads it starts inherit; else all online ones; at least 1. */
unsigned pe_usable_cpus(void);

#endif
