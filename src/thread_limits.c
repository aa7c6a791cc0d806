/*
 * thread_limits.c -- read the limits on threads: RLIMIT_NPROC, and on Linux
 * kernel.threads-max, vm.max_map_count (a thread's stack and its guard page
 * are two mappings) and the pids.max of this process's cgroup and those
 * above it (v1 or v2), which is what systemd's TasksMax= sets for a service.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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
/* The directory of this process's cgroup in the pids hierarchy: v1's pids
 * controller if mounted, else the v2 tree. 0 on success. */
static int pids_cgroup_dir(char *dir, size_t size, size_t *root_len)
{
	char line[512], v2_path[512] = "";
	FILE *f = fopen("/proc/self/cgroup", "r");
	int found = 0;

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof line, f)) {
		/* "ID:CONTROLLERS:PATH"; v2's line is "0::PATH". */
		char *controllers = strchr(line, ':'), *path, *save;

		if (!controllers)
			continue;
		*controllers++ = '\0';
		if (!(path = strchr(controllers, ':')))
			continue;
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		if (strcmp(line, "0") == 0 && *controllers == '\0') {
			snprintf(v2_path, sizeof v2_path, "%s", path);
			continue;
		}
		for (char *c = strtok_r(controllers, ",", &save); c; c = strtok_r(NULL, ",", &save))
			if (strcmp(c, "pids") == 0) {
				*root_len = strlen("/sys/fs/cgroup/pids");
				found = snprintf(dir, size, "/sys/fs/cgroup/pids%s", path) < (int)size;
				break;
			}
	}
	fclose(f);
	if (!found && *v2_path && access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
		*root_len = strlen("/sys/fs/cgroup");
		found = snprintf(dir, size, "/sys/fs/cgroup%s", v2_path) < (int)size;
	}
	return found ? 0 : -1;
}

/* The lowest pids.max from this process's cgroup up to the root: -1 if
 * none is set (every level "max", or no pids controller). */
static long cgroup_pids_max(void)
{
	char dir[600], file[640];
	size_t root_len;
	long lowest = -1;

	if (pids_cgroup_dir(dir, sizeof dir, &root_len) < 0)
		return -1;
	/* The root cgroup has no pids.max: stop at it. */
	while (strlen(dir) > root_len) {
		long v;
		char *slash;

		snprintf(file, sizeof file, "%s/pids.max", dir);
		v = pe_sysfile_number(file);
		if (v >= 0 && (lowest < 0 || v < lowest))
			lowest = v;
		slash = strrchr(dir, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	return lowest;
}
#endif

void thread_limits_describe(char *buf, size_t size)
{
	struct rlimit rl;

	if (!size)
		return;
	*buf = '\0';
	/* RLIMIT_NPROC does not bind root (CAP_SYS_RESOURCE, CAP_SYS_ADMIN). */
	if (geteuid() != 0 && getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		add(buf, size, "ulimit -u %llu", (unsigned long long)rl.rlim_cur);
#ifdef __linux__
	{
		long threads_max = pe_sysfile_number("/proc/sys/kernel/threads-max");
		long map_count = pe_sysfile_number("/proc/sys/vm/max_map_count");
		long pids_max = cgroup_pids_max();

		if (threads_max >= 0)
			add(buf, size, "kernel.threads-max %ld", threads_max);
		if (map_count >= 0)
			add(buf, size, "vm.max_map_count %ld (2 per thread)", map_count);
		if (pids_max >= 0)
			add(buf, size, "cgroup pids.max %ld (systemd TasksMax=)", pids_max);
	}
#endif
}
