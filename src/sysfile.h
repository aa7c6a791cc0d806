/*
 * sysfile.h -- the kernel's settings as files under /proc and /sys.
 */
#ifndef POOLECHO_SYSFILE_H
#define POOLECHO_SYSFILE_H

/* The first whole number in the file at PATH (net.core.somaxconn's
 * /proc/sys/net/core/somaxconn, a cgroup's pids.max...), or -1 when the file
 * cannot be read or does not start with one (pids.max's "max"). */
long pe_sysfile_number(const char *path);

#endif
