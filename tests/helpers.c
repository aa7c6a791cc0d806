/*
 * helpers.c -- the shared test helpers declared in helpers.h: deadlines,
 * timed events, loopback clients, descriptor counts and spawned programs.
 * Every wait here is bounded by a deadline; nothing sleeps as a proof.
 */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "net.h"

/* ---- time ---------------------------------------------------------------- */

int64_t th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int th_ms_left(int64_t deadline)
{
	int64_t left = deadline - th_now_ms();

	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* ---- timed event ----------------------------------------------------------- */

void th_event_init(struct th_event *ev)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&ev->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ev->cond, &attr);
	pthread_condattr_destroy(&attr);
	ev->value = 0;
}

void th_event_destroy(struct th_event *ev)
{
	pthread_cond_destroy(&ev->cond);
	pthread_mutex_destroy(&ev->lock);
}

void th_event_add(struct th_event *ev, long n)
{
	pthread_mutex_lock(&ev->lock);
	ev->value += n;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

long th_event_get(struct th_event *ev)
{
	long v;

	pthread_mutex_lock(&ev->lock);
	v = ev->value;
	pthread_mutex_unlock(&ev->lock);
	return v;
}

struct timespec th_deadline_on(clockid_t clock, unsigned timeout_ms)
{
	struct timespec until;

	clock_gettime(clock, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	return until;
}

int th_event_wait(struct th_event *ev, long target, unsigned timeout_ms)
{
	struct timespec until = th_deadline_on(CLOCK_MONOTONIC, timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&ev->lock);
	while (ev->value < target && rc == 0)
		rc = pthread_cond_timedwait(&ev->cond, &ev->lock, &until);
	rc = ev->value >= target ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&ev->lock);
	return rc;
}

int th_join(pthread_t thread, unsigned timeout_ms)
{
	return th_join_result(thread, timeout_ms, NULL);
}

int th_join_result(pthread_t thread, unsigned timeout_ms, void **result)
{
	/* pthread_timedjoin_np's clock. (pthread_clockjoin_np would take the
	 * monotonic one, but ThreadSanitizer does not see it join: it then
	 * reports every joined thread as leaked and racing.) */
	struct timespec until = th_deadline_on(CLOCK_REALTIME, timeout_ms);
	int rc;

	rc = pthread_timedjoin_np(thread, result, &until);
	return rc == 0 ? 0 : -rc;
}

enum { HOLD_TASKS = 256 };

/* A watching thread's, th_stall_watch's or th_hold_watch's. */
struct th_watch_state {
	int stop;            /* both through __atomic builtins */
	int64_t worst_ms;    /* the hold-up seen */
	/* th_hold_watch's: the process, and its threads' run_delay at first sight */
	pid_t pid;
	pid_t tid[HOLD_TASKS];
	long long first_delay_ns[HOLD_TASKS];
};

static int watch_start(pthread_t *thread, struct th_watch_state **state, pid_t pid,
                       void *(*watch_main)(void *))
{
	int rc;

	*state = calloc(1, sizeof **state);
	if (!*state)
		return -ENOMEM;
	(*state)->pid = pid;
	rc = pthread_create(thread, NULL, watch_main, *state);
	if (rc != 0) {
		free(*state);
		*state = NULL;
	}
	return -rc;
}

static int64_t watch_stop(pthread_t thread, struct th_watch_state **state)
{
	int64_t worst;

	__atomic_store_n(&(*state)->stop, 1, __ATOMIC_RELEASE);
	if (th_join(thread, 10000) < 0)
		return -1; /* the state stays the running thread's */
	worst = __atomic_load_n(&(*state)->worst_ms, __ATOMIC_ACQUIRE);
	free(*state);
	*state = NULL;
	return worst;
}

static void *stall_watch_main(void *arg)
{
	struct th_watch_state *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		int64_t t0 = th_now_ms(), over;

		poll(NULL, 0, 10);
		over = th_now_ms() - t0 - 10;
		if (over > __atomic_load_n(&s->worst_ms, __ATOMIC_RELAXED))
			__atomic_store_n(&s->worst_ms, over, __ATOMIC_RELEASE);
	}
	return NULL;
}

int th_stall_watch_start(struct th_stall_watch *w)
{
	return watch_start(&w->thread, &w->state, 0, stall_watch_main);
}

int64_t th_stall_watch_stop(struct th_stall_watch *w)
{
	return watch_stop(w->thread, &w->state);
}

/* Field 2 of /proc/PID/task/TID/schedstat: ns runnable but not running. */
static long long task_run_delay_ns(pid_t pid, const char *tid)
{
	char path[96];
	long long run, delay = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/task/%.32s/schedstat", (int)pid, tid);
	if (!(f = fopen(path, "r")))
		return -1;
	if (fscanf(f, "%lld %lld", &run, &delay) != 2)
		delay = -1;
	fclose(f);
	return delay;
}

/* The most time any thread of S->pid spent waiting for a CPU since the
 * watch began (all its waits summed), in ms; -1 once the process is gone. */
static int64_t most_cpu_wait_ms(struct th_watch_state *s)
{
	char dir[64];
	long long worst = 0;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof dir, "/proc/%d/task", (int)s->pid);
	if (!(d = opendir(dir)))
		return -1;
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		long long delay;
		int i;

		if (tid <= 0 || (delay = task_run_delay_ns(s->pid, e->d_name)) < 0)
			continue;
		for (i = 0; i < HOLD_TASKS && s->tid[i] && s->tid[i] != tid; i++)
			;
		if (i == HOLD_TASKS)
			continue;
		if (!s->tid[i]) {
			s->tid[i] = tid;
			s->first_delay_ns[i] = delay;
		}
		if (delay - s->first_delay_ns[i] > worst)
			worst = delay - s->first_delay_ns[i];
	}
	closedir(d);
	return worst / 1000000;
}

static void *hold_watch_main(void *arg)
{
	struct th_watch_state *s = arg;
	int64_t stopped_ms = 0, waited_ms = 0, t0 = th_now_ms();

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		char state[8];
		int64_t t1, delay;

		poll(NULL, 0, 5);
		t1 = th_now_ms();
		/* All threads stop or freeze together: the main one tells.
		 * T: stopped; D: frozen (a cgroup freezer's refrigerator). */
		if (th_task_stat_field(s->pid, s->pid, 3, state, sizeof state) != 0 ||
		    state[0] == 'Z' || state[0] == 'X')
			break;
		if (state[0] == 'T' || state[0] == 't' || state[0] == 'D')
			stopped_ms += t1 - t0;
		t0 = t1;
		if ((delay = most_cpu_wait_ms(s)) >= 0)
			waited_ms = delay;
		/* Stopped or frozen, plus the most time waiting for a CPU. */
		__atomic_store_n(&s->worst_ms, stopped_ms + waited_ms, __ATOMIC_RELEASE);
	}
	return NULL;
}

int th_hold_watch_start(struct th_hold_watch *w, pid_t pid)
{
	return watch_start(&w->thread, &w->state, pid, hold_watch_main);
}

int64_t th_hold_watch_stop(struct th_hold_watch *w)
{
	return watch_stop(w->thread, &w->state);
}

/* ---- loopback clients ------------------------------------------------------ */

/* Wait for EVENTS on FD until DEADLINE: 0 when ready, -ETIMEDOUT, -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		int n = poll(&pfd, 1, th_ms_left(deadline));
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int th_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int th_connect(unsigned port, unsigned timeout_ms)
{
	char portstr[16], err[PE_NET_ERRLEN];
	struct sockaddr_storage addr;
	socklen_t len, elen = sizeof(int);
	int64_t deadline = th_now_ms() + timeout_ms;
	int fd, rc, soerr = 0;

	snprintf(portstr, sizeof portstr, "%u", port);
	rc = pe_net_resolve("127.0.0.1", portstr, &addr, &len, err);
	if (rc < 0)
		return rc;
	/* Non-blocking connect, so a full backlog costs at most TIMEOUT_MS. */
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, len) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto fail;
		}
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc < 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) < 0) {
			rc = -errno;
			goto fail;
		}
		if (soerr) {
			rc = -soerr;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = pe_net_set_timeouts_us(fd, timeout_ms * 1000ULL, timeout_ms * 1000ULL);
	if (rc < 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return rc;
}

int th_write_all(int fd, const void *buf, size_t len, unsigned timeout_ms)
{
	const unsigned char *p = buf;
	int64_t deadline = th_now_ms() + timeout_ms;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int rc = wait_fd(fd, POLLOUT, deadline);
		if (rc < 0)
			return rc;
	}
	return 0;
}

ssize_t th_read_exact(int fd, void *buf, size_t len, unsigned timeout_ms)
{
	unsigned char *p = buf;
	size_t got = 0;
	int64_t deadline = th_now_ms() + timeout_ms;

	while (got < len) {
		ssize_t n = recv(fd, p + got, len - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
	}
	return (ssize_t)got;
}

int th_wait_eof(int fd, unsigned timeout_ms)
{
	unsigned char byte;
	ssize_t n = th_read_exact(fd, &byte, 1, timeout_ms);

	if (n == 0)
		return 0;
	if (n == 1)
		return -EPROTO;
	return (int)n;
}

int th_wait_closed(int fd, unsigned timeout_ms)
{
	int rc = th_wait_eof(fd, timeout_ms);

	return rc == -ECONNRESET ? 0 : rc;
}

void th_close_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

void th_fill_pattern(unsigned char *buf, size_t len, size_t offset, unsigned seed)
{
	for (size_t i = 0; i < len; i++) {
		uint32_t x = (uint32_t)(offset + i) * 0x9e3779b9u + seed * 0x85ebca6bu;
		x ^= x >> 15;
		x *= 0x2c1b3c6du;
		x ^= x >> 12;
		buf[i] = (unsigned char)(x ^ (x >> 24));
	}
}

void th_gaps_start(struct th_gaps *g)
{
	g->last_ms = th_now_ms();
	g->longest_ms = 0;
}

void th_gaps_mark(struct th_gaps *g)
{
	int64_t now = th_now_ms();

	if (now - g->last_ms > g->longest_ms)
		g->longest_ms = now - g->last_ms;
	g->last_ms = now;
}

void th_silence_start(struct th_silence *s)
{
	s->since_ms = s->began_ms = th_now_ms();
	s->longest_ms = 0;
}

void th_silence_send_begins(struct th_silence *s)
{
	s->began_ms = th_now_ms();
}

void th_silence_send_ended(struct th_silence *s)
{
	int64_t span = th_now_ms() - s->since_ms;

	if (span > s->longest_ms)
		s->longest_ms = span;
	s->since_ms = s->began_ms;
}

int th_echo_check(int fd, size_t len, unsigned seed, unsigned timeout_ms)
{
	return th_echo_check_marked(fd, len, seed, timeout_ms, NULL);
}

int th_echo_check_marked(int fd, size_t len, unsigned seed, unsigned timeout_ms,
                         struct th_silence *silence)
{
	enum { CHUNK = 16 * 1024 };
	unsigned char *out = malloc(CHUNK), *in = malloc(CHUNK);
	int64_t deadline = th_now_ms() + timeout_ms;
	size_t off = 0;
	int rc = 0;

	if (!out || !in) {
		rc = -ENOMEM;
		goto done;
	}
	/* One chunk at a time fits in the socket buffers, so one thread can
	 * write and then read without deadlocking against the echo. */
	while (off < len && rc == 0) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		ssize_t got;

		th_fill_pattern(out, n, off, seed);
		if (silence)
			th_silence_send_begins(silence);
		rc = th_write_all(fd, out, n, (unsigned)th_ms_left(deadline));
		if (silence)
			th_silence_send_ended(silence);
		if (rc < 0)
			break;
		got = th_read_exact(fd, in, n, (unsigned)th_ms_left(deadline));
		if (got < 0)
			rc = (int)got;
		else if (memcmp(in, out, (size_t)got) != 0)
			rc = -EBADMSG;
		else if ((size_t)got != n)
			rc = -EPROTO;
		off += n;
	}
done:
	free(out);
	free(in);
	return rc;
}

/* ---- descriptors ----------------------------------------------------------- */

ssize_t th_fill_pipe(int fd)
{
	static char filler[1 << 16];
	ssize_t filled = 0, n;

	while ((n = write(fd, filler, sizeof filler)) > 0)
		filled += n;
	return errno == EAGAIN ? filled : -errno;
}

ssize_t th_pipe_full(int fds[2])
{
	ssize_t filled;

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	filled = th_fill_pipe(fds[1]);
	if (filled < 0 || fcntl(fds[1], F_SETFL, 0) < 0) {
		int err = filled < 0 ? (int)-filled : errno;

		close(fds[0]);
		close(fds[1]);
		return -err;
	}
	return filled;
}

size_t th_read_to_end(int fd, char *out, size_t cap, unsigned timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	size_t got = 0;
	ssize_t n;

	while (th_ms_left(deadline) > 0 && got < cap - 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};

		if (poll(&pfd, 1, th_ms_left(deadline)) <= 0)
			break;
		n = read(fd, out + got, cap - 1 - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	out[got] = '\0';
	return got;
}

int th_count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int count = 0;

	if (!dir)
		return -errno;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(dir))
			count++;
	}
	closedir(dir);
	return count;
}

/* ---- memory ---------------------------------------------------------------- */

long th_resident_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int th_task_stat_field(pid_t pid, pid_t tid, int field, char *out, size_t len)
{
	char path[64], line[1024], *p, *tok, *save = NULL;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if (!(f = fopen(path, "r")))
		return -1;
	/* The command name (field 2) may hold spaces: count from its ')'. */
	p = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
	fclose(f);
	for (tok = p ? strtok_r(p + 1, " \n", &save) : NULL; tok && field > 3; field--)
		tok = strtok_r(NULL, " \n", &save);
	if (!tok || field != 3)
		return -1;
	snprintf(out, len, "%s", tok);
	return 0;
}

char th_thread_state(pid_t tid)
{
	char state[8];

	return th_task_stat_field(getpid(), tid, 3, state, sizeof state) == 0 ? state[0] : 0;
}

char th_wait_asleep(pid_t tid, unsigned timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	char state;

	while ((state = th_thread_state(tid)) != 'S' && th_ms_left(deadline) > 0)
		sched_yield();
	return state;
}

/* The thread of this process asleep in system call NR, or 0. A thread shows
 * its call in /proc only while off the CPU; 'S' tells blocked from preempted. */
static pid_t thread_asleep_in_syscall(long nr)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;
	pid_t found = 0;

	while (dir && !found && (de = readdir(dir))) {
		char path[80];
		long call;
		pid_t tid = (pid_t)atoi(de->d_name);
		FILE *f;

		if (tid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
		if (!(f = fopen(path, "r")))
			continue;
		if (fscanf(f, "%ld", &call) == 1 && call == nr && th_thread_state(tid) == 'S')
			found = tid;
		fclose(f);
	}
	if (dir)
		closedir(dir);
	return found;
}

/* How many of this process's threads MATCH says yes to, or a negative errno. */
static int count_threads(int (*match)(pid_t tid, int arg), int arg)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid > 0 && match(tid, arg))
			n++;
	}
	closedir(dir);
	return n;
}

static int runs_with_policy(pid_t tid, int policy)
{
	return sched_getscheduler(tid) == policy;
}

static int blocks_signal(pid_t tid, int sig)
{
	char path[80], line[128];
	unsigned long long mask;
	int blocked = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "SigBlk: %llx", &mask) == 1)
			blocked = mask >> (sig - 1) & 1;
	fclose(f);
	return blocked;
}

static int any_thread(pid_t tid, int unused)
{
	(void)tid;
	(void)unused;
	return 1;
}

int th_count_threads(void)
{
	return count_threads(any_thread, 0);
}

int th_count_threads_with_policy(int policy)
{
	return count_threads(runs_with_policy, policy);
}

int th_count_threads_blocking(int sig)
{
	return count_threads(blocks_signal, sig);
}

pid_t th_wait_asleep_in_syscall(long nr, unsigned timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	pid_t tid;

	while (!(tid = thread_asleep_in_syscall(nr)) && th_ms_left(deadline) > 0)
		sched_yield();
	return tid;
}

int th_wait_in_syscall(pid_t pid, const char *comm, long nr, long arg0, unsigned timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	char path[64], cpath[64], want[48], line[256];

	snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
	snprintf(cpath, sizeof cpath, "/proc/%d/comm", (int)pid);
	if (arg0 < 0)
		snprintf(want, sizeof want, "%ld ", nr);
	else
		snprintf(want, sizeof want, "%ld 0x%lx ", nr, (unsigned long)arg0);
	do {
		FILE *f = fopen(path, "re");
		bool in = f && fgets(line, sizeof line, f) && strncmp(line, want, strlen(want)) == 0;

		if (f)
			fclose(f);
		/* Asked after the call: an exec between the two shows as another call. */
		if (in && comm) {
			f = fopen(cpath, "re");
			in = f && fgets(line, sizeof line, f) &&
			     strncmp(line, comm, strlen(comm)) == 0 && line[strlen(comm)] == '\n';
			if (f)
				fclose(f);
		}
		if (in)
			return 0;
		poll(NULL, 0, 5);
	} while (th_ms_left(deadline) > 0);
	return -1;
}

pid_t th_gettid(void)
{
#ifdef SYS_gettid
	return (pid_t)syscall(SYS_gettid);
#else
	return 0;
#endif
}

/* ---- sanitizers ------------------------------------------------------------ */

#ifdef TH_HAVE_LSAN
#include <sanitizer/lsan_interface.h>

int th_leak_check(void)
{
	return __lsan_do_recoverable_leak_check();
}
#else
int th_leak_check(void)
{
	return 0;
}
#endif

/* ---- spawned programs ------------------------------------------------------ */

static void buf_init(struct th_buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->fd = -1;
}

/* Read what is available on B's pipe without blocking. 1 if anything
 * happened (data or end of stream), 0 if not, negative on error. */
static int buf_drain(struct th_buf *b)
{
	int moved = 0;

	while (b->fd >= 0) {
		if (b->cap - b->len < 4096 + 1) {
			size_t cap = b->cap ? b->cap * 2 : 8192;
			char *d = realloc(b->data, cap);
			if (!d)
				return -ENOMEM;
			b->data = d;
			b->cap = cap;
			b->data[b->len] = '\0';   /* stays a string if nothing comes */
		}
		ssize_t n = read(b->fd, b->data + b->len, b->cap - b->len - 1);
		if (n > 0) {
			b->len += (size_t)n;
			b->data[b->len] = '\0';
			moved = 1;
		} else if (n == 0) {
			close(b->fd);
			b->fd = -1;
			moved = 1;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else if (errno == EIO && isatty(b->fd)) {
			/* A pseudo-terminal's end of stream: its slave closed. */
			close(b->fd);
			b->fd = -1;
			moved = 1;
		} else {
			return -errno;
		}
	}
	return moved;
}

/* dup2 FROM onto TO in a child about to exec; when they are already the
 * same descriptor, dup2 would leave its close-on-exec flag set. */
static int child_dup2(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) == to ? 0 : -1;
}

int th_die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -1;
	return getppid() == parent ? 0 : -1;
}

/* A pseudo-terminal, in raw mode (no \r added) when RAW: FDS[0] its master, FDS[1]
 * its slave, both close-on-exec. 0 or -1 with errno set. */
static int open_pty(int fds[2], bool raw)
{
	char name[64];
	struct termios t;

	fds[0] = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fds[0] < 0)
		return -1;
	if (grantpt(fds[0]) < 0 || unlockpt(fds[0]) < 0 || ptsname_r(fds[0], name, sizeof name) != 0)
		return -1;
	fds[1] = open(name, O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (fds[1] < 0 || tcgetattr(fds[1], &t) < 0)
		return -1;
	if (!raw)
		return 0; /* as a login's terminal is: OPOST, ONLCR */
	cfmakeraw(&t);
	return tcsetattr(fds[1], TCSANOW, &t);
}

extern char **environ;

/* ENV (the environment, or a copy of it) with ADD appended, each entry
 * of it replacing one of the same name; malloc'd before fork, or NULL
 * with errno set. */
static char **env_with(char **env, const char *const add[], size_t nadd)
{
	size_t n = 0, k = 0;
	char **out;

	while (env[n])
		n++;
	if (!(out = calloc(n + nadd + 1, sizeof *out)))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;

		for (size_t j = 0; j < nadd; j++) {
			size_t name = strcspn(add[j], "=") + 1;

			replaced |= strncmp(env[i], add[j], name) == 0;
		}
		if (!replaced)
			out[k++] = env[i];
	}
	for (size_t j = 0; j < nadd; j++)
		out[k++] = (char *)(uintptr_t)add[j];
	return out;
}

/* Write PID in decimal at TO, async-signal-safe (in a forked child). */
static void put_pid(char *to, pid_t pid)
{
	char digits[24];
	int n = 0;

	do
		digits[n++] = (char)('0' + pid % 10);
	while ((pid /= 10) > 0);
	while (n > 0)
		*to++ = digits[--n];
	*to = '\0';
}

/* A copy of the environment with JOURNAL_STREAM naming FD ("DEV:INO"), as
 * systemd sets it for a unit whose stderr is the journal; malloc'd, made
 * before fork (the child may not allocate), or NULL with errno set. */
static char **env_with_journal_stream(int fd, char *entry, size_t size)
{
	const char *const add[] = {entry};
	struct stat st;

	if (fstat(fd, &st) < 0)
		return NULL;
	snprintf(entry, size, "JOURNAL_STREAM=%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	return env_with(environ, add, 1);
}

/* What the program's stderr is: a pipe, a pseudo-terminal, or a stream
 * socket (what systemd gives a unit whose output goes to the journal). */
enum err_kind { ERR_PIPE, ERR_TTY, ERR_COOKED_TTY, ERR_SOCKET };

/* A connected pair of stream sockets in ERR, the program's end (ERR[1])
 * with a small send buffer, so that a few kilobytes nobody reads fill it. */
static int small_socketpair(int err[2])
{
	int small = 4096;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, err) < 0)
		return -1;
	return setsockopt(err[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
}

static int open_err(enum err_kind kind, int err[2])
{
	switch (kind) {
	case ERR_TTY: return open_pty(err, true);
	case ERR_COOKED_TTY: return open_pty(err, false);
	case ERR_SOCKET: return small_socketpair(err);
	default: return pipe2(err, O_CLOEXEC);
	}
}

/* IN_FD: the program's standard input, or -1 for /dev/null. */
static int proc_spawn(struct th_proc *p, const char *const argv[], enum err_kind err_kind,
                      bool journal, const struct th_listen_fds *listen, int in_fd)
{
	int out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
	pid_t parent = getpid();
	char journal_entry[80], **env = NULL, fds_entry[48], pid_entry[48] = "LISTEN_PID=";
	const char *listen_env[] = {fds_entry, pid_entry};
	int rc, child_errno;
	ssize_t n;

	p->pid = 0;
	p->pidfd = -1;
	p->status = 0;
	buf_init(&p->out);
	buf_init(&p->err);
	if (pipe2(out, O_CLOEXEC) < 0 || open_err(err_kind, err) < 0 ||
	    pipe2(report, O_CLOEXEC) < 0 ||
	    (journal && !(env = env_with_journal_stream(err[1], journal_entry,
	                                                 sizeof journal_entry)))) {
		rc = -errno;
		goto fail;
	}
	if (listen) {
		char **plus;

		snprintf(fds_entry, sizeof fds_entry, "LISTEN_FDS=%s", listen->fds);
		if (listen->pid)
			put_pid(pid_entry + strlen(pid_entry), listen->pid);
		if (!(plus = env_with(env ? env : environ, listen_env, 2))) {
			rc = -errno;
			goto fail;
		}
		free(env);
		env = plus;
	}
	/* fork, not posix_spawn: only the child can ask to die with us. Between
	 * fork and exec it calls only async-signal-safe functions. */
	p->pid = fork();
	if (p->pid < 0) {
		rc = -errno;
		p->pid = 0;
		goto fail;
	}
	if (p->pid == 0) {
		int null = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);

		errno = 0;
		/* Descriptor 3 is the service manager's socket: keep the report
		 * pipe off it. */
		if (listen && report[1] == TH_LISTEN_FD)
			report[1] = fcntl(report[1], F_DUPFD_CLOEXEC, TH_LISTEN_FD + 1);
		if (listen && !listen->pid)
			put_pid(pid_entry + strlen(pid_entry), getpid());
		if (th_die_with_parent(parent) == 0 && null >= 0 && child_dup2(null, 0) == 0 &&
		    (null == 0 || in_fd >= 0 || close(null) == 0) && child_dup2(out[1], 1) == 0 &&
		    child_dup2(err[1], 2) == 0 && report[1] >= 0 &&
		    (!listen || (listen->fd >= 0 ? child_dup2(listen->fd, TH_LISTEN_FD) == 0 :
		                 close(TH_LISTEN_FD) == 0 || errno == EBADF)))
			/* argv is not modified; execv's prototype predates const. */
			execve(argv[0], (char *const *)(uintptr_t)argv, env ? env : environ);
		child_errno = errno ? errno : ECHILD;
		n = write(report[1], &child_errno, sizeof child_errno);
		_exit(n == (ssize_t)sizeof child_errno ? 127 : 126);
	}
	free(env);
	env = NULL;
	close(report[1]);
	report[1] = -1;
	/* The report pipe closes at exec; an errno on it means there was none. */
	while ((n = read(report[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof child_errno) {
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
		p->pid = 0;
		rc = -child_errno;
		goto fail;
	}
	close(report[0]);
	close(out[1]);
	close(err[1]);
	p->out.fd = out[0];
	p->err.fd = err[0];
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	p->pidfd = pidfd_open(p->pid, 0);
	return 0;
fail:
	free(env);
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
		if (report[i] >= 0)
			close(report[i]);
	}
	return rc;
}

int th_proc_spawn(struct th_proc *p, const char *const argv[])
{
	return proc_spawn(p, argv, ERR_PIPE, false, NULL, -1);
}

int th_proc_spawn_tty(struct th_proc *p, const char *const argv[])
{
	return proc_spawn(p, argv, ERR_TTY, false, NULL, -1);
}

int th_proc_spawn_cooked_tty(struct th_proc *p, const char *const argv[])
{
	return proc_spawn(p, argv, ERR_COOKED_TTY, false, NULL, -1);
}

int th_proc_spawn_journal(struct th_proc *p, const char *const argv[])
{
	return proc_spawn(p, argv, ERR_PIPE, true, NULL, -1);
}

int th_proc_spawn_journal_socket(struct th_proc *p, const char *const argv[])
{
	return proc_spawn(p, argv, ERR_SOCKET, true, NULL, -1);
}

int th_proc_spawn_activated(struct th_proc *p, const char *const argv[],
                            const struct th_listen_fds *listen)
{
	return proc_spawn(p, argv, ERR_PIPE, false, listen, -1);
}

int th_proc_spawn_stdin(struct th_proc *p, const char *const argv[], int in_fd)
{
	return proc_spawn(p, argv, ERR_PIPE, false, NULL, in_fd);
}

/* Wait up to TIMEOUT_MS for output (and for the exit when WITH_EXIT), then
 * drain the pipes. 1 if something happened, 0 on timeout, -EPIPE when
 * there is nothing left to wait for, or another negative errno. */
static int proc_poll(struct th_proc *p, int timeout_ms, int with_exit)
{
	struct pollfd pfd[3];
	int n = 0, rc, moved;

	if (p->out.fd >= 0)
		pfd[n++] = (struct pollfd){.fd = p->out.fd, .events = POLLIN};
	if (p->err.fd >= 0)
		pfd[n++] = (struct pollfd){.fd = p->err.fd, .events = POLLIN};
	if (with_exit && p->pid > 0) {
		if (p->pidfd >= 0)
			pfd[n++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
		else if (timeout_ms > 20)
			timeout_ms = 20; /* no pidfd: look at waitpid again soon */
	}
	if (n == 0 && !(with_exit && p->pid > 0))
		return -EPIPE;
	rc = poll(pfd, (nfds_t)n, timeout_ms);
	if (rc < 0 && errno != EINTR)
		return -errno;
	moved = rc > 0;
	for (int i = 0; i < 2; i++) {
		int d = buf_drain(i ? &p->err : &p->out);
		if (d < 0)
			return d;
		moved |= d;
	}
	return moved;
}

int th_proc_pump(struct th_proc *p, unsigned timeout_ms)
{
	int rc = proc_poll(p, (int)timeout_ms, 0);

	return rc < 0 ? rc : rc ? 0 : -ETIMEDOUT;
}

int th_proc_wait_stderr(struct th_proc *p, size_t from, const char *needle, unsigned timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;

	for (;;) {
		if (p->err.data && from <= p->err.len && strstr(p->err.data + from, needle))
			return 0;
		if (p->err.fd < 0)
			return -EPIPE;
		if (th_ms_left(deadline) == 0)
			return -ETIMEDOUT;
		int rc = proc_poll(p, th_ms_left(deadline), 0);
		if (rc < 0 && rc != -EPIPE)
			return rc;
	}
}

int th_proc_wait_ready(struct th_proc *p, unsigned timeout_ms)
{
	static const char key[] = "listening on ";
	const char *s, *colon = NULL;
	unsigned long port;
	char *end;
	int rc;

	/* Wait for the whole line, not just its start. */
	rc = th_proc_wait_stderr(p, 0, key, timeout_ms);
	if (rc < 0)
		return rc;
	s = strstr(p->err.data, key) + sizeof key - 1;
	for (int64_t deadline = th_now_ms() + timeout_ms; !strchr(s, '\n');) {
		if (p->err.fd < 0 || th_ms_left(deadline) == 0)
			return -EPROTO;
		rc = proc_poll(p, th_ms_left(deadline), 0);
		if (rc < 0 && rc != -EPIPE)
			return rc;
		s = strstr(p->err.data, key) + sizeof key - 1;
	}
	for (const char *c = s; *c && *c != ' ' && *c != '\n'; c++)
		if (*c == ':')
			colon = c;
	if (!colon)
		return -EPROTO;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || (*end != ' ' && *end != '\n' && *end != '\0') ||
	    port == 0 || port > 65535)
		return -EPROTO;
	return (int)port;
}

int th_proc_signal(struct th_proc *p, int sig)
{
	if (p->pid <= 0)
		return -ESRCH;
	return kill(p->pid, sig) < 0 ? -errno : 0;
}

/* Reap the program if it has exited: 1 if reaped (now or before), 0 if not. */
static int proc_reap(struct th_proc *p)
{
	pid_t r;

	if (p->pid <= 0)
		return 1;
	do
		r = waitpid(p->pid, &p->status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	p->pid = 0;
	if (p->pidfd >= 0) {
		close(p->pidfd);
		p->pidfd = -1;
	}
	return 1;
}

int th_proc_wait_exit(struct th_proc *p, unsigned timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;

	while (!proc_reap(p)) {
		if (th_ms_left(deadline) == 0)
			return -ETIMEDOUT;
		int rc = proc_poll(p, th_ms_left(deadline), 1);
		if (rc < 0 && rc != -EPIPE)
			return rc;
	}
	/* Collect the last output; a grandchild holding the pipes must not
	 * keep us here past the deadline. */
	while ((p->out.fd >= 0 || p->err.fd >= 0) && th_ms_left(deadline) > 0)
		if (proc_poll(p, th_ms_left(deadline), 0) < 0)
			break;
	return 0;
}

int th_proc_exit_code(const struct th_proc *p)
{
	if (p->pid > 0)
		return -1;
	if (WIFEXITED(p->status))
		return WEXITSTATUS(p->status);
	if (WIFSIGNALED(p->status))
		return 128 + WTERMSIG(p->status);
	return -1;
}

int th_proc_run(struct th_proc *p, const char *const argv[], unsigned timeout_ms)
{
	int rc = th_proc_spawn(p, argv);

	if (rc < 0)
		return rc;
	rc = th_proc_wait_exit(p, timeout_ms);
	return rc < 0 ? rc : th_proc_exit_code(p);
}

const char *th_proc_sanitizer_report(const struct th_proc *p)
{
	static const char *const markers[] = {
		"WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "runtime error:",
		"LeakSanitizer", "ERROR: ThreadSanitizer",
	};

	if (!p->err.data)
		return NULL;
	for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
		if (strstr(p->err.data, markers[i]))
			return markers[i];
	return NULL;
}

void th_proc_cleanup(struct th_proc *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
			;
		p->pid = 0;
	}
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
	for (int i = 0; i < 2; i++) {
		struct th_buf *b = i ? &p->err : &p->out;
		if (b->fd >= 0)
			close(b->fd);
		free(b->data);
		buf_init(b);
	}
}

/* ---- cgroups --------------------------------------------------------------- */

/* Whether the v2 root delegates CONTROLLER: a whole word of its
 * cgroup.subtree_control ("cpu" is not "cpuset"). */
static bool v2_delegates(const char *controller)
{
	char controls[256] = "", *save;
	FILE *f = fopen("/sys/fs/cgroup/cgroup.subtree_control", "re");

	if (!f)
		return false;
	if (!fgets(controls, sizeof controls, f))
		controls[0] = '\0';
	fclose(f);
	for (char *w = strtok_r(controls, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
		if (strcmp(w, controller) == 0)
			return true;
	return false;
}

/* Remove the cgroups in ROOT that tests of processes now gone left: a
 * test that timed out was killed before it could remove its own. Only
 * empty ones go (rmdir refuses the others). */
static void sweep_stale_cgroups(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		long pid;
		unsigned n;

		if (sscanf(e->d_name, "poolecho-test-%ld-%u", &pid, &n) != 2 || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof path, "%s/%s", root, e->d_name);
		rmdir(path);
	}
	closedir(d);
}

int th_cgroup_make(const char *controller, char *dir, size_t size)
{
	static unsigned made;
	char root[128], procs[160];

	snprintf(root, sizeof root, "/sys/fs/cgroup/%s", controller);
	snprintf(procs, sizeof procs, "%s/cgroup.procs", root);
	if (access(procs, W_OK) < 0) {
		int err = errno; /* EACCES: v1's, not ours to write */

		if (!v2_delegates(controller))
			return -err;
		snprintf(root, sizeof root, "/sys/fs/cgroup");
	}
	sweep_stale_cgroups(root);
	snprintf(dir, size, "%s/poolecho-test-%ld-%u", root, (long)getpid(), made++);
	return mkdir(dir, 0755) == 0 ? 0 : -errno;
}

int th_cgroup_set(const char *dir, const char *name, const char *value)
{
	char path[PATH_MAX];
	FILE *f;
	int err = 0;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (!(f = fopen(path, "we")))
		return -errno;
	if (fprintf(f, "%s\n", value) < 0)
		err = errno;
	if (fclose(f) != 0 && !err)
		err = errno;
	return -err;
}

int th_cgroup_set_cpu_quota(const char *dir, unsigned quota_us)
{
	char path[PATH_MAX], value[32];
	int rc;

	snprintf(path, sizeof path, "%s/cpu.max", dir);
	if (access(path, F_OK) == 0) {
		snprintf(value, sizeof value, "%u 100000", quota_us);
		return th_cgroup_set(dir, "cpu.max", value);
	}
	snprintf(value, sizeof value, "%u", quota_us);
	if ((rc = th_cgroup_set(dir, "cpu.cfs_period_us", "100000")) < 0)
		return rc;
	return th_cgroup_set(dir, "cpu.cfs_quota_us", value);
}

int th_cgroup_remove(const char *dir)
{
	for (int64_t deadline = th_now_ms() + 10000;; poll(NULL, 0, 10)) {
		if (rmdir(dir) == 0)
			return 0;
		if (errno != EBUSY || th_ms_left(deadline) == 0)
			return -errno;
	}
}

/* ---- documentation ------------------------------------------------------- */

/* Read $TOP_SRCDIR/RELPATH with man-page escapes dropped: "\-" becomes
 * "-" and font changes ("\fB", "\fR", ...) vanish. Returns a malloc'd
 * string or NULL with errno set. */
static char *read_doc_plain(const char *relpath)
{
	const char *top = getenv("TOP_SRCDIR");
	char path[4096];
	FILE *f;
	char *text;
	size_t n = 0;
	int c;

	snprintf(path, sizeof path, "%s/%s", top && *top ? top : ".", relpath);
	if (!(f = fopen(path, "r")))
		return NULL;
	if (fseek(f, 0, SEEK_END) < 0 || !(text = malloc((size_t)ftell(f) + 1))) {
		fclose(f);
		errno = ENOMEM;
		return NULL;
	}
	rewind(f);
	while ((c = getc(f)) != EOF) {
		if (c == '\\') {
			int next = getc(f);
			if (next == 'f') {
				(void)getc(f); /* the font letter */
				continue;
			}
			c = next == EOF ? '\\' : next;
		}
		text[n++] = (char)c;
	}
	text[n] = '\0';
	fclose(f);
	return text;
}

static int is_option_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Whether TEXT holds "--NAME" (LEN bytes) not followed by more of a name. */
static int mentions_option(const char *text, const char *name, size_t len)
{
	for (const char *p = text; (p = strstr(p, name)); p += len)
		if (!is_option_char(p[len]))
			return 1;
	return 0;
}

int th_doc_lists_options(const char *help, const char *relpath, char *missing, size_t size)
{
	char *doc = read_doc_plain(relpath);
	int rc = 0;

	if (!doc)
		return -errno;
	for (const char *p = help; rc == 0 && (p = strstr(p, "--")); p += 2) {
		size_t len = 2;

		if ((p > help && is_option_char(p[-1])) || !(p[2] >= 'a' && p[2] <= 'z'))
			continue;
		while (is_option_char(p[len]))
			len++;
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)len, p);
		if (!mentions_option(doc, name, len)) {
			snprintf(missing, size, "%s", name);
			rc = -ENOENT;
		}
	}
	free(doc);
	return rc;
}

int th_doc_mentions(const char *relpath, const char *text)
{
	char *doc = read_doc_plain(relpath);
	int found;

	if (!doc)
		return -errno;
	found = strstr(doc, text) != NULL;
	free(doc);
	return found;
}

char *th_doc_entry(const char *relpath, const char *head)
{
	char *doc = read_doc_plain(relpath), *start, *end, *entry;
	char want[128];

	if (!doc)
		return NULL;
	snprintf(want, sizeof want, ".TP\n.B %s\n", head);
	if (!(start = strstr(doc, want))) {
		free(doc);
		errno = ENOENT;
		return NULL;
	}
	start += strlen(want);
	for (end = start; *end; end++)
		if (end[0] == '\n' && (strncmp(end + 1, ".TP", 3) == 0 ||
		                        strncmp(end + 1, ".PP", 3) == 0 ||
		                        strncmp(end + 1, ".SS", 3) == 0))
			break;
	entry = strndup(start, (size_t)(end - start));
	free(doc);
	if (!entry)
		errno = ENOMEM;
	return entry;
}

/* Whether LINE (up to its newline) heads an option's entry: in a man page
 * only the line after ".TP" (a text line may start with an option once
 * its font escapes are gone); elsewhere an option at the left margin
 * (continuation lines are indented further, and may start with an option
 * they refer to). */
static int heads_entry(const char *line, const char *prev, int man)
{
	size_t blanks = strspn(line, " ");

	if (man)
		return prev && strncmp(prev, ".TP\n", 4) == 0;
	return blanks <= 6 && line[blanks] == '-' &&
	       ((line[blanks + 1] >= 'a' && line[blanks + 1] <= 'z') || line[blanks + 1] == '-');
}

static int ends_entry(const char *line)
{
	return line[0] == '\n' || line[0] == '\0' || strncmp(line, ".TP", 3) == 0 ||
	       strncmp(line, ".SH", 3) == 0 || strncmp(line, ".SS", 3) == 0;
}

static const char *next_line(const char *line)
{
	line += strcspn(line, "\n");
	return *line ? line + 1 : line;
}

/* Whether the text from FROM up to TO holds WHAT as a whole: "1 to 256" is
 * not in "1 to 2560" nor "11 to 256", nor "0 to 9" in "0.0 to 9". */
static int holds_whole(const char *from, const char *to, const char *what)
{
	size_t len = strlen(what);

	for (const char *p = from; (p = strstr(p, what)) && p + len <= to; p++) {
		char before = p > from ? p[-1] : ' ', after = p[len];

		if (!isdigit((unsigned char)before) && before != '.' && !isalnum((unsigned char)after))
			return 1;
	}
	return 0;
}

int th_entry_mentions(const char *text, const char *option, const char *what)
{
	int man = strncmp(text, ".TH ", 4) == 0 || strstr(text, "\n.TH ") != NULL;
	const char *line, *prev = NULL, *head = NULL;
	size_t optlen = strlen(option);

	for (line = text; *line; prev = line, line = next_line(line)) {
		if (head && (ends_entry(line) || heads_entry(line, prev, man)))
			break;
		if (!head && heads_entry(line, prev, man)) {
			char first[512];

			snprintf(first, sizeof first, "%.*s", (int)strcspn(line, "\n"), line);
			if (mentions_option(first, option, optlen))
				head = line;
		}
	}
	return head ? holds_whole(head, line, what) : -ENOENT;
}

int th_doc_entry_mentions(const char *relpath, const char *option, const char *what)
{
	char *doc = read_doc_plain(relpath);
	int rc;

	if (!doc)
		return -errno;
	rc = th_entry_mentions(doc, option, what);
	free(doc);
	return rc;
}

int th_range_documented(const char *help, const char *option, const char *range,
                        const char *const *docs, size_t ndocs, char *why, size_t size)
{
	int rc = th_entry_mentions(help, option, range);

	if (rc != 1) {
		snprintf(why, size, "--help's entry for %s lacks '%s'%s", option, range,
		         rc == -ENOENT ? " (no entry found)" : "");
		return -1;
	}
	for (size_t d = 0; d < ndocs; d++) {
		rc = th_doc_entry_mentions(docs[d], option, range);
		if (rc != 1) {
			snprintf(why, size, "%s's entry for %s lacks '%s'%s%s", docs[d], option, range,
			         rc < 0 ? ": " : "", rc < 0 ? strerror(-rc) : "");
			return -1;
		}
	}
	return 0;
}

size_t th_widest_line(const char *text, const char **line)
{
	size_t widest = 0;

	while (*text) {
		size_t len = strcspn(text, "\n");

		if (len > widest) {
			widest = len;
			if (line)
				*line = text;
		}
		text += len + (text[len] == '\n');
	}
	return widest;
}

bool th_utf8_whole(const char *text)
{
	const unsigned char *p = (const unsigned char *)text;

	while (*p) {
		int more = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2
		         : (*p & 0xF8) == 0xF0 ? 3 : -1;

		if (more < 0)
			return false; /* a continuation byte alone, or no UTF-8 lead */
		for (p++; more > 0; more--, p++)
			if ((*p & 0xC0) != 0x80)
				return false;
	}
	return true;
}

int th_built_with_tsan(const char *path)
{
	static const char mark[] = "__tsan_init";
	char buf[1 << 16];
	size_t keep = 0, got;
	int found = 0;
	FILE *f = path ? fopen(path, "rb") : NULL;

	if (!f)
		return -1;
	while (!found && (got = fread(buf + keep, 1, sizeof buf - keep, f)) > 0) {
		size_t len = keep + got;

		found = memmem(buf, len, mark, sizeof mark - 1) != NULL;
		/* Carry the tail over: the mark may straddle two reads. */
		keep = sizeof mark - 1 < len ? sizeof mark - 1 : len;
		memmove(buf, buf + len - keep, keep);
	}
	fclose(f);
	return found;
}
