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
enum { PATH_LEN = 4096 };

/* Call MATCH on each line of PATH (a /proc file) until it returns 1:
 * 0 then, -1 when no line matched or PATH cannot be read. */
static int find_line(const char *path, int (*match)(char *line, void *ctx), void *ctx)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return -1;
	while (!found && getline(&line, &cap, f) > 0)
		found = match(line, ctx);
	free(line);
	fclose(f);
	return found ? 0 : -1;
}

struct cgroup_where {
	int v2;              /* look for cgroup2, not v1's pids controller */
	char mount[PATH_LEN]; /* where that hierarchy is mounted */
	char root[PATH_LEN];  /* the cgroup the mount shows: "/", or a container's own */
	char path[PATH_LEN];  /* this process's cgroup in that hierarchy */
};

/* Undo mountinfo's escapes in place: a space, tab, newline or backslash in
 * a path is written as three octal digits after a backslash ("\\040"). */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++)
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	*out = '\0';
}

/* Whether comma-separated OPTIONS holds NAME as a whole word. */
static int has_option(const char *options, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = options; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return 1;
	return 0;
}

/* A /proc/self/mountinfo line of the hierarchy W looks for:
 * "ID PARENT MAJ:MIN ROOT MOUNT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER". */
static int match_mount(char *line, void *ctx)
{
	struct cgroup_where *w = ctx;
	char *save, *field[5], *dash = strstr(line, " - "), *fstype, *super;
	int n = 0;

	if (!dash)
		return 0;
	*dash = '\0';
	fstype = strtok_r(dash + 3, " \n", &save);
	strtok_r(NULL, " \n", &save); /* the source */
	super = strtok_r(NULL, " \n", &save);
	if (!fstype || strcmp(fstype, w->v2 ? "cgroup2" : "cgroup") != 0)
		return 0;
	if (!w->v2 && !has_option(super, "pids"))
		return 0;
	for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
		field[n++] = t;
	if (n < 5 || strlen(field[3]) >= PATH_LEN || strlen(field[4]) >= PATH_LEN)
		return 0;
	unescape_octal(field[3]);
	unescape_octal(field[4]);
	strcpy(w->root, field[3]);
	strcpy(w->mount, field[4]);
	return 1;
}

/* A /proc/self/cgroup line of the hierarchy W looks for: "ID:CONTROLLERS:PATH",
 * v2's being "0::PATH". */
static int match_cgroup(char *line, void *ctx)
{
	struct cgroup_where *w = ctx;
	char *controllers = strchr(line, ':'), *path, *save;
	int found = 0;

	if (!controllers)
		return 0;
	*controllers++ = '\0';
	if (!(path = strchr(controllers, ':')))
		return 0;
	*path++ = '\0';
	path[strcspn(path, "\n")] = '\0';
	if (strlen(path) >= PATH_LEN)
		return 0;
	if (w->v2)
		found = strcmp(line, "0") == 0 && *controllers == '\0';
	else
		for (char *c = strtok_r(controllers, ",", &save); c && !found;
		     c = strtok_r(NULL, ",", &save))
			found = strcmp(c, "pids") == 0;
	if (found)
		strcpy(w->path, path);
	return found;
}

/* Fill W for v1's pids controller if mounted, else for cgroup2. */
static int find_pids_cgroup(struct cgroup_where *w, const char *mountinfo, const char *cgroup)
{
	for (w->v2 = 0; w->v2 <= 1; w->v2++)
		if (find_line(mountinfo, match_mount, w) == 0 &&
		    find_line(cgroup, match_cgroup, w) == 0)
			return 0;
	return -1;
}

long thread_limits_cgroup_pids_max(const char *mountinfo, const char *cgroup)
{
	static struct cgroup_where w; /* 12 KiB: off the stack */
	char dir[2 * PATH_LEN + 16];
	const char *rel;
	size_t mount_len, root_len;
	long lowest = -1;

	if (find_pids_cgroup(&w, mountinfo, cgroup) < 0)
		return -1;
	/* A mount that shows a cgroup below the root (a container's own)
	 * holds the part of the path below it. */
	root_len = strcmp(w.root, "/") == 0 ? 0 : strlen(w.root);
	rel = w.path;
	if (root_len) {
		if (strncmp(w.path, w.root, root_len) != 0 ||
		    (w.path[root_len] != '\0' && w.path[root_len] != '/'))
			return -1; /* our cgroup is not in what is mounted */
		rel = w.path + root_len;
	}
	snprintf(dir, sizeof dir, "%s%s", w.mount, strcmp(rel, "/") == 0 ? "" : rel);
	mount_len = strlen(w.mount);
	for (;;) {
		char file[sizeof dir + 16];
		long v;
		char *slash;

		/* The true root has no pids.max; a container's mount top may. */
		snprintf(file, sizeof file, "%s/pids.max", dir);
		v = pe_sysfile_number(file);
		if (v >= 0 && (lowest < 0 || v < lowest))
			lowest = v;
		if (strlen(dir) <= mount_len || !(slash = strrchr(dir, '/')))
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
