/*
 * cgroup.c -- find this process's cgroup in the hierarchy of one controller
 * (v1's own, or cgroup2's; a host's whole tree or a container's part of it)
 * and read what it and the cgroups above it limit.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"

#ifdef __linux__
enum { PATH_LEN = 4096 };

/* Call MATCH on each line of PATH (a /proc file) until it returns 1:
 * 0 then, -1 when no line matched or PATH cannot be read. */
static int find_line(const char *path, int (*match)(char *line, void *ctx), void *ctx)
{
	FILE *f = fopen(path, "re"); /* close-on-exec: the library reads them too */
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
	const char *controller; /* "pids", "cpu" */
	int v2;              /* look for cgroup2, not v1's hierarchy of CONTROLLER */
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
	if (!w->v2 && !has_option(super, w->controller))
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
			found = strcmp(c, w->controller) == 0;
	if (found)
		strcpy(w->path, path);
	return found;
}

/* Fill W for v1's hierarchy of its controller if mounted, else for cgroup2. */
static int find_cgroup(struct cgroup_where *w, const char *mountinfo, const char *cgroup)
{
	for (w->v2 = 0; w->v2 <= 1; w->v2++)
		if (find_line(mountinfo, match_mount, w) == 0 &&
		    find_line(cgroup, match_cgroup, w) == 0)
			return 0;
	return -1;
}

int pe_cgroup_walk(const char *controller, const char *mountinfo, const char *cgroup,
                   void (*visit)(const char *dir, int v2, void *ctx), void *ctx)
{
	/* 12 KiB, off the stack; not static: servers may start in two threads. */
	struct cgroup_where *w = calloc(1, sizeof *w);
	char *dir = malloc(PE_CGROUP_DIR_MAX);
	const char *rel;
	size_t mount_len, root_len;
	int rc = -1;

	if (!w || !dir)
		goto out;
	w->controller = controller;
	if (find_cgroup(w, mountinfo, cgroup) < 0)
		goto out;
	/* A mount that shows a cgroup below the root (a container's own)
	 * holds the part of the path below it. */
	root_len = strcmp(w->root, "/") == 0 ? 0 : strlen(w->root);
	rel = w->path;
	if (root_len) {
		if (strncmp(w->path, w->root, root_len) != 0 ||
		    (w->path[root_len] != '\0' && w->path[root_len] != '/'))
			goto out; /* our cgroup is not in what is mounted */
		rel = w->path + root_len;
	}
	snprintf(dir, PE_CGROUP_DIR_MAX, "%s%s", w->mount, strcmp(rel, "/") == 0 ? "" : rel);
	mount_len = strlen(w->mount);
	for (;;) {
		char *slash;

		visit(dir, w->v2, ctx);
		if (strlen(dir) <= mount_len || !(slash = strrchr(dir, '/')))
			break;
		*slash = '\0';
	}
	rc = 0;
out:
	free(dir);
	free(w);
	return rc;
}

/* The file NAME in DIR, read into BUF: false when it cannot be. */
static int read_dir_file(const char *dir, const char *name, char *buf, size_t size)
{
	char path[PE_CGROUP_DIR_MAX + 16];
	FILE *f;
	int ok;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (!(f = fopen(path, "re")))
		return 0;
	ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	return ok;
}

/* The quota one level sets, as a share of its period: v2's cpu.max
 * "QUOTA PERIOD" ("max PERIOD": none), v1's cpu.cfs_quota_us (-1: none)
 * over cpu.cfs_period_us. */
static void visit_cpu_quota(const char *dir, int v2, void *ctx)
{
	double *lowest = ctx;
	char text[64];
	long long quota, period;
	double cpus;

	if (v2) {
		if (!read_dir_file(dir, "cpu.max", text, sizeof text) ||
		    sscanf(text, "%lld %lld", &quota, &period) != 2)
			return;
	} else {
		if (!read_dir_file(dir, "cpu.cfs_quota_us", text, sizeof text) ||
		    sscanf(text, "%lld", &quota) != 1 ||
		    !read_dir_file(dir, "cpu.cfs_period_us", text, sizeof text) ||
		    sscanf(text, "%lld", &period) != 1)
			return;
	}
	if (quota <= 0 || period <= 0)
		return;
	cpus = (double)quota / (double)period;
	if (*lowest < 0 || cpus < *lowest)
		*lowest = cpus;
}

double pe_cgroup_cpu_quota(const char *mountinfo, const char *cgroup)
{
	double lowest = -1;

	pe_cgroup_walk("cpu", mountinfo, cgroup, visit_cpu_quota, &lowest);
	return lowest;
}

/* The memory limit one level sets: v2's memory.max ("max": none), v1's
 * memory.limit_in_bytes (PAGE_COUNTER_MAX pages, near 2^63, for none). */
static void visit_memory_max(const char *dir, int v2, void *ctx)
{
	long long *lowest = ctx;
	char text[64];
	long long bytes;

	if (!read_dir_file(dir, v2 ? "memory.max" : "memory.limit_in_bytes", text, sizeof text) ||
	    sscanf(text, "%lld", &bytes) != 1 || bytes <= 0 || bytes >= 1LL << 62)
		return;
	if (*lowest < 0 || bytes < *lowest)
		*lowest = bytes;
}

long long pe_cgroup_memory_max(const char *mountinfo, const char *cgroup)
{
	long long lowest = -1;

	pe_cgroup_walk("memory", mountinfo, cgroup, visit_memory_max, &lowest);
	return lowest;
}
#endif
