/*
 * test_thread_limits.c -- finding a process's cgroup pids.max, and its CPU
 * quota, from its /proc/PID/mountinfo and /proc/PID/cgroup, on cgroup v1,
 * v2 and the hybrid of both, on a host and in a container. Each test builds
 * a fake /proc file pair and cgroup tree in a temporary directory: the
 * machine that runs the suite has one layout, and users run the daemon on
 * all of them.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "cpus.h"
#include "thread_limits.h"

static char top[PATH_MAX]; /* the temporary directory */
static char top_escaped[4 * PATH_MAX]; /* as mountinfo writes it */
static char mountinfo[PATH_MAX + 16], cgroup[PATH_MAX + 16];

static void make_top(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(top, sizeof top, "%s/poolecho-cgroup-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(top), "mkdtemp(%s): %s", top, strerror(errno));
	for (size_t i = 0, n = 0; top[i] && n + 5 < sizeof top_escaped; i++)
		n += (size_t)(strchr(" \t\n\\", top[i])
		                  ? sprintf(top_escaped + n, "\\%03o", (unsigned char)top[i])
		                  : sprintf(top_escaped + n, "%c", top[i]));
	snprintf(mountinfo, sizeof mountinfo, "%s/mountinfo", top);
	snprintf(cgroup, sizeof cgroup, "%s/cgroup", top);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	return remove(path);
}

static void remove_top(void)
{
	if (*top)
		nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(thread_limits, .init = make_top, .fini = remove_top, .timeout = 10);
TestSuite(cpu_quota, .init = make_top, .fini = remove_top, .timeout = 10);

/* Write TEXT to the file at TOP/REL, making the directories above it. */
static void put(const char *rel, const char *text)
{
	char path[2 * PATH_MAX];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", top, rel);
	for (char *p = path + strlen(top) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir(%s): %s", path,
		          strerror(errno));
		*p = '/';
	}
	f = fopen(path, "w");
	cr_assert_not_null(f, "fopen(%s): %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0, "writing %s: %s", path, strerror(errno));
}

/* The fake mountinfo: each line's %1$s becomes TOP (escaped as the kernel
 * does), where the fake hierarchies are "mounted". */
static void put_mountinfo(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void put_mountinfo(const char *fmt, ...)
{
	char text[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	put("mountinfo", text);
}

static long pids_max(void)
{
	return thread_limits_cgroup_pids_max(mountinfo, cgroup);
}

/* Debian 12, Fedora, systemd in unified mode: one cgroup2 hierarchy, a
 * service's "0::" line, TasksMax= as pids.max on the service's cgroup. */
Test(thread_limits, cgroup_v2_service_limit_is_found)
{
	put_mountinfo("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	              "30 22 0:26 / %1$s/unified rw,nosuid,nodev,noexec,relatime shared:4"
	              " - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
	              top_escaped);
	put("cgroup", "0::/system.slice/poolechod.service\n");
	put("unified/system.slice/pids.max", "max\n");
	put("unified/system.slice/poolechod.service/pids.max", "4915\n");
	cr_expect_eq(pids_max(), 4915);
}

/* A limit on a slice binds every service under it: the lowest level wins. */
Test(thread_limits, cgroup_v2_the_lowest_level_on_the_way_up_wins)
{
	put_mountinfo("30 22 0:26 / %1$s/unified rw shared:4 - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/app.slice/poolechod.service\n");
	put("unified/app.slice/pids.max", "40\n");
	put("unified/app.slice/poolechod.service/pids.max", "60\n");
	cr_expect_eq(pids_max(), 40);
}

Test(thread_limits, cgroup_v2_with_every_level_at_max_has_no_limit)
{
	put_mountinfo("30 22 0:26 / %1$s/unified rw shared:4 - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/user.slice/user-0.slice/session-1.scope\n");
	put("unified/user.slice/pids.max", "max\n");
	put("unified/user.slice/user-0.slice/pids.max", "max\n");
	put("unified/user.slice/user-0.slice/session-1.scope/pids.max", "max\n");
	cr_expect_eq(pids_max(), -1);
}

/* The process in the root cgroup: the root has no pids.max, and nothing is
 * read above the mount point. */
Test(thread_limits, cgroup_v2_root_cgroup_reads_nothing_above_the_mount)
{
	put_mountinfo("30 22 0:26 / %1$s/unified rw shared:4 - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/\n");
	put("pids.max", "7\n"); /* outside the mount: must not count */
	cr_expect_eq(pids_max(), -1);
}

/* Debian 11 and systemd's hybrid mode: v1 controllers, pids among them,
 * and an empty cgroup2 at .../unified. The pids limit is v1's. */
Test(thread_limits, hybrid_uses_the_v1_pids_hierarchy_not_the_unified_one)
{
	put_mountinfo("30 22 0:26 / %1$s/unified rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
	              "31 22 0:27 / %1$s/systemd rw shared:5 - cgroup cgroup"
	              " rw,xattr,name=systemd\n"
	              "35 22 0:31 / %1$s/pids rw shared:9 - cgroup cgroup rw,pids\n",
	              top_escaped);
	put("cgroup", "12:pids:/system.slice/poolechod.service\n"
	              "1:name=systemd:/system.slice/poolechod.service\n"
	              "0::/system.slice/poolechod.service\n");
	put("unified/system.slice/poolechod.service/pids.max", "99\n");
	put("pids/system.slice/poolechod.service/pids.max", "500\n");
	cr_expect_eq(pids_max(), 500);
}

/* Hybrid with pids left to cgroup2: the "0::" line is v2's, not the first. */
Test(thread_limits, hybrid_without_v1_pids_uses_the_unified_hierarchy)
{
	put_mountinfo("30 22 0:26 / %1$s/unified rw shared:4 - cgroup2 cgroup2 rw\n"
	              "32 22 0:28 / %1$s/memory rw - cgroup cgroup rw,memory\n",
	              top_escaped);
	put("cgroup", "3:memory:/v1path\n"
	              "0::/v2path\n");
	put("unified/v1path/pids.max", "5\n");
	put("unified/v2path/pids.max", "11\n");
	cr_expect_eq(pids_max(), 11);
}

/* A v1 hierarchy can hold several controllers: "cpu,pids" in both files. */
Test(thread_limits, cgroup_v1_pids_mounted_with_another_controller)
{
	put_mountinfo("31 22 0:27 / %1$s/systemd rw - cgroup cgroup rw,name=systemd\n"
	              "36 22 0:32 / %1$s/cpu,pids rw - cgroup cgroup rw,cpu,pids\n",
	              top_escaped);
	put("cgroup", "1:name=systemd:/a\n"
	              "4:cpu,pids:/a/b\n");
	put("cpu,pids/a/pids.max", "300\n");
	put("cpu,pids/a/b/pids.max", "max\n");
	cr_expect_eq(pids_max(), 300);
}

/* Without a cgroup namespace, a container sees its host's cgroup path in
 * /proc/self/cgroup, while its mount shows only its own cgroup (mountinfo's
 * fourth field is that cgroup): the path below it is what to walk. */
Test(thread_limits, container_mount_of_its_own_cgroup)
{
	put_mountinfo("700 690 0:31 /docker/abc %1$s/pids ro,nosuid - cgroup cgroup rw,pids\n",
	              top_escaped);
	put("cgroup", "12:pids:/docker/abc/worker\n");
	put("pids/pids.max", "2000\n");
	put("pids/worker/pids.max", "500\n");
	cr_expect_eq(pids_max(), 500);
}

Test(thread_limits, container_at_the_top_of_its_mount)
{
	put_mountinfo("700 690 0:26 /docker/abc %1$s/unified ro - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/docker/abc\n");
	put("unified/pids.max", "128\n");
	cr_expect_eq(pids_max(), 128);
}

/* A cgroup outside what the mount shows cannot be read through it, and one
 * whose name only starts like the mount's root is outside it. */
Test(thread_limits, container_cgroup_outside_the_mount_has_no_limit)
{
	put_mountinfo("700 690 0:26 /docker/abc %1$s/unified ro - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/docker/abcdef\n");
	put("unified/pids.max", "128\n");   /* /docker/abc's, a sibling */
	put("unifieddef/pids.max", "32\n"); /* what "def" appended would read */
	cr_expect_eq(pids_max(), -1);
}

/* mountinfo writes a space in a path as "\\040" (and a backslash as
 * "\\134"); /proc/self/cgroup writes it as it is. */
Test(thread_limits, escaped_characters_in_mountinfo_paths)
{
	put_mountinfo("30 22 0:26 /my\\040box %1$s/cgroup\\040v2 rw - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/my box/back\\slash\n");
	put("cgroup v2/back\\slash/pids.max", "21\n");
	put("cgroup v2/pids.max", "max\n");
	cr_expect_eq(pids_max(), 21);
}

/* v1 without the pids controller, no cgroup2: no limit to name. */
Test(thread_limits, no_pids_controller_means_no_limit)
{
	put_mountinfo("31 22 0:27 / %1$s/systemd rw - cgroup cgroup rw,name=systemd\n"
	              "32 22 0:28 / %1$s/memory rw - cgroup cgroup rw,memory\n",
	              top_escaped);
	put("cgroup", "1:name=systemd:/x\n"
	              "3:memory:/x\n");
	put("systemd/x/pids.max", "5\n");
	put("memory/x/pids.max", "5\n");
	cr_expect_eq(pids_max(), -1);
}

/* A v1 controller line named like pids is not pids, nor a named
 * hierarchy mounted with a name like it. */
Test(thread_limits, cgroup_v1_controller_names_match_whole)
{
	put_mountinfo("34 22 0:30 / %1$s/wrong rw - cgroup cgroup rw,name=pidsx\n"
	              "35 22 0:31 / %1$s/pids rw - cgroup cgroup rw,pids\n",
	              top_escaped);
	put("cgroup", "9:name=pidsx:/wrong\n"
	              "12:pids:/right\n");
	put("pids/wrong/pids.max", "1\n");
	put("wrong/right/pids.max", "1\n");
	put("pids/right/pids.max", "2\n");
	cr_expect_eq(pids_max(), 2);
}

Test(thread_limits, unreadable_proc_files_mean_no_limit)
{
	cr_expect_eq(pids_max(), -1, "neither file exists");
	put_mountinfo("30 22 0:26 / %1$s/unified rw - cgroup2 cgroup2 rw\n", top_escaped);
	put("unified/pids.max", "3\n");
	cr_expect_eq(pids_max(), -1, "no cgroup file");
}

/* The limits come as a list, "A, B, C": the first added once came after a
 * ", " of its own ("the limit that binds: , ulimit -u ..."). */
Test(thread_limits, the_limits_described_are_a_plain_list)
{
	struct rlimit rl;
	char buf[1024], nproc[96];
	size_t len;

	cr_assert_eq(getrlimit(RLIMIT_NPROC, &rl), 0);
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 100000 ? 100000 : rl.rlim_max;
	cr_assert_eq(setrlimit(RLIMIT_NPROC, &rl), 0, "setrlimit: %s", strerror(errno));
	thread_limits_describe(buf, sizeof buf);
	len = strlen(buf);
	cr_expect_eq(strncmp(buf, "ulimit -u ", 10), 0, "'%s'", buf);
	/* ... which does not bind root: said, not left to a guess */
	snprintf(nproc, sizeof nproc, "ulimit -u %llu (not for root outside a user namespace)",
	         (unsigned long long)rl.rlim_cur);
	if (getuid() == 0)
		cr_expect_not_null(strstr(buf, nproc), "'%s'", buf);
	else
		cr_expect_null(strstr(buf, "not for root"), "'%s'", buf);
	cr_expect_null(strstr(buf, ", , "), "'%s'", buf);
	cr_expect(len < 2 || strcmp(buf + len - 2, ", ") != 0, "'%s'", buf);
}

/* ---- the CPU quota ---------------------------------------------------------- */

static double cpu_quota(void)
{
	return pe_cgroup_cpu_quota(mountinfo, cgroup);
}

/* systemd's CPUQuota=50% on a service: cpu.max "50000 100000"; a slice
 * above it at "max" sets none. */
Test(cpu_quota, cgroup_v2_service_quota_is_found)
{
	put_mountinfo("30 22 0:26 / %1$s/unified rw shared:4 - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/system.slice/poolechod.service\n");
	put("unified/system.slice/cpu.max", "max 100000\n");
	put("unified/system.slice/poolechod.service/cpu.max", "50000 100000\n");
	cr_expect_float_eq(cpu_quota(), 0.5, 1e-9);
}

/* A quota on a slice binds every service under it: the lowest level wins,
 * each level by its own period. */
Test(cpu_quota, cgroup_v2_the_lowest_level_on_the_way_up_wins)
{
	put_mountinfo("30 22 0:26 / %1$s/unified rw - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/app.slice/poolechod.service\n");
	put("unified/app.slice/cpu.max", "150000 200000\n");
	put("unified/app.slice/poolechod.service/cpu.max", "100000 100000\n");
	cr_expect_float_eq(cpu_quota(), 0.75, 1e-9);
}

Test(cpu_quota, cgroup_v2_with_every_level_at_max_has_no_quota)
{
	put_mountinfo("30 22 0:26 / %1$s/unified rw - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/a/b\n");
	put("unified/a/cpu.max", "max 100000\n");
	put("unified/a/b/cpu.max", "max 100000\n");
	cr_expect_eq(cpu_quota(), -1);
}

/* A hybrid host whose v1 hierarchies (here memory's) are listed before
 * the unified one, and none of them is cpu's: the quota is cgroup2's, read
 * where cgroup2 is mounted, not under a v1 mount ("cgroup" is no
 * "cgroup2", however alike the names). */
Test(cpu_quota, hybrid_without_v1_cpu_uses_the_unified_hierarchy)
{
	put_mountinfo("32 22 0:28 / %1$s/memory rw - cgroup cgroup rw,memory\n"
	              "30 22 0:26 / %1$s/unified rw shared:4 - cgroup2 cgroup2 rw\n",
	              top_escaped);
	put("cgroup", "3:memory:/v1path\n"
	              "0::/v2path\n");
	put("memory/v2path/cpu.max", "75000 100000\n");
	put("unified/v2path/cpu.max", "25000 100000\n");
	cr_expect_float_eq(cpu_quota(), 0.25, 1e-9);
}

/* v1, as Debian 11 and docker's older hosts mount it: "cpu,cpuacct", the
 * quota and its period in two files, -1 for none. */
Test(cpu_quota, cgroup_v1_quota_over_its_period)
{
	put_mountinfo("33 22 0:29 / %1$s/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
	              "30 22 0:26 / %1$s/unified rw - cgroup2 cgroup2 rw\n",
	              top_escaped);
	put("cgroup", "5:cpu,cpuacct:/docker/abc\n"
	              "0::/docker/abc\n");
	put("cpu,cpuacct/docker/cpu.cfs_quota_us", "-1\n");
	put("cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
	put("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n");
	put("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
	put("unified/docker/abc/cpu.max", "10000 100000\n"); /* not the hierarchy with cpu */
	cr_expect_float_eq(cpu_quota(), 1.5, 1e-9);
	put("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
	cr_expect_eq(cpu_quota(), -1, "-1 at every level is no quota");
}

/* "cpu" is neither cpuacct nor cpuset, in mountinfo or in the cgroup file. */
Test(cpu_quota, cgroup_v1_cpu_matches_whole)
{
	put_mountinfo("34 22 0:30 / %1$s/cpuacct rw - cgroup cgroup rw,cpuacct\n"
	              "35 22 0:31 / %1$s/cpuset rw - cgroup cgroup rw,cpuset\n"
	              "36 22 0:32 / %1$s/cpu rw - cgroup cgroup rw,cpu\n",
	              top_escaped);
	put("cgroup", "2:cpuacct:/wrong\n"
	              "3:cpuset:/wrong\n"
	              "1:cpu:/right\n");
	put("cpuacct/wrong/cpu.cfs_quota_us", "10000\n");
	put("cpuacct/wrong/cpu.cfs_period_us", "100000\n");
	put("cpu/wrong/cpu.cfs_quota_us", "10000\n");
	put("cpu/wrong/cpu.cfs_period_us", "100000\n");
	put("cpu/right/cpu.cfs_quota_us", "200000\n");
	put("cpu/right/cpu.cfs_period_us", "100000\n");
	cr_expect_float_eq(cpu_quota(), 2.0, 1e-9);
}

/* docker --cpus=0.5 with a cgroup namespace: the container's own cgroup
 * is the top of its mount, and "/" in its cgroup file. */
Test(cpu_quota, container_at_the_top_of_its_mount)
{
	put_mountinfo("700 690 0:26 / %1$s/unified ro - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/\n");
	put("unified/cpu.max", "50000 100000\n");
	cr_expect_float_eq(cpu_quota(), 0.5, 1e-9);
}

Test(cpu_quota, no_cpu_controller_or_unreadable_files_mean_no_quota)
{
	cr_expect_eq(cpu_quota(), -1, "neither file exists");
	put_mountinfo("32 22 0:28 / %1$s/memory rw - cgroup cgroup rw,memory\n", top_escaped);
	put("cgroup", "3:memory:/x\n");
	put("memory/x/cpu.cfs_quota_us", "10000\n");
	put("memory/x/cpu.cfs_period_us", "100000\n");
	cr_expect_eq(cpu_quota(), -1, "no cpu controller, no cgroup2");
}

/* What a quota leaves of the CPUs allowed: whole ones to spin on, and a
 * part of one rounded up for threads to run on; no quota, or one above
 * them, leaves them all. */
Test(cpu_quota, the_cpus_a_quota_leaves)
{
	static const struct {
		unsigned allowed;
		double quota;
		unsigned whole, rounded_up;
	} cases[] = {
		{2, -1, 2, 2}, {2, 0.5, 0, 1}, {2, 1.0, 1, 1}, {2, 1.5, 1, 2},
		{2, 2.0, 2, 2}, {2, 3.5, 2, 2}, {8, 0.01, 0, 1}, {1, 0.5, 0, 1},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cr_expect_eq(pe_cpus_within_quota(cases[i].allowed, cases[i].quota, false),
		             cases[i].whole, "%u CPUs, quota %.2f: whole", cases[i].allowed,
		             cases[i].quota);
		cr_expect_eq(pe_cpus_within_quota(cases[i].allowed, cases[i].quota, true),
		             cases[i].rounded_up, "%u CPUs, quota %.2f: rounded up",
		             cases[i].allowed, cases[i].quota);
	}
}

/* ---- the memory limit ------------------------------------------------------- */

TestSuite(memory_max, .init = make_top, .fini = remove_top, .timeout = 10);

/* systemd's MemoryMax= on a service: memory.max in bytes; "max" above it. */
Test(memory_max, cgroup_v2_service_limit_is_found)
{
	put_mountinfo("30 22 0:26 / %1$s/unified rw - cgroup2 cgroup2 rw\n", top_escaped);
	put("cgroup", "0::/system.slice/poolechod.service\n");
	put("unified/system.slice/memory.max", "max\n");
	put("unified/system.slice/poolechod.service/memory.max", "67108864\n");
	cr_expect_eq(pe_cgroup_memory_max(mountinfo, cgroup), 67108864);
	put("unified/system.slice/poolechod.service/memory.max", "max\n");
	cr_expect_eq(pe_cgroup_memory_max(mountinfo, cgroup), -1, "\"max\" is no limit");
}

/* docker --memory on a v1 host: memory.limit_in_bytes, the lowest level
 * winning; PAGE_COUNTER_MAX pages (9223372036854771712) means none. */
Test(memory_max, cgroup_v1_lowest_limit_in_bytes_wins)
{
	put_mountinfo("34 22 0:30 / %1$s/memory rw - cgroup cgroup rw,memory\n"
	              "30 22 0:26 / %1$s/unified rw - cgroup2 cgroup2 rw\n",
	              top_escaped);
	put("cgroup", "4:memory:/docker/abc\n"
	              "0::/docker/abc\n");
	put("memory/memory.limit_in_bytes", "9223372036854771712\n");
	put("memory/docker/memory.limit_in_bytes", "1073741824\n");
	put("memory/docker/abc/memory.limit_in_bytes", "33554432\n");
	put("unified/docker/abc/memory.max", "4096\n"); /* not the hierarchy with memory */
	cr_expect_eq(pe_cgroup_memory_max(mountinfo, cgroup), 33554432);
	put("memory/docker/memory.limit_in_bytes", "9223372036854771712\n");
	put("memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n");
	cr_expect_eq(pe_cgroup_memory_max(mountinfo, cgroup), -1, "PAGE_COUNTER_MAX is no limit");
}
