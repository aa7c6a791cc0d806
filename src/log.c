/*
 * log.c -- timestamped, levelled lines on stderr for both programs, or
 * lines in sd-daemon(3)'s form when stderr is systemd's journal. Each line
 * is formatted into one buffer and written under a lock, which keeps lines
 * from many worker threads whole.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "monotonic.h"
#include "parse.h"

static const char *program = "poolecho";
static enum pe_log_level threshold = PE_LOG_INFO;
/* Where lines go: stderr, or our own non-blocking description of it. */
static int log_fd = STDERR_FILENO;
static bool log_to_socket;
static bool log_poll_first; /* stderr could not be opened again: poll before each write */
static atomic_ulong lines_dropped;
/* Why the last line dropped for a failure, not a reader's delay, was
 * (ENOSPC, EFBIG, EIO; EPIPE for a pipe whose reader went): the count says
 * so. 0 when none was. */
static atomic_int drop_errno;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
/* What standard error has yet to take of the last line, which it took
 * part of (a terminal or a socket may): it goes out before any other line,
 * as soon as there is room, and the lines logged meanwhile are dropped, so
 * that no two lines are ever joined and no thread waits for the reader.
 * Under write_lock. */
static char line_rest[2 * PE_LOG_LINE_MAX]; /* as long as any line */
static size_t line_rest_len;
/* Until then (CLOCK_MONOTONIC, ms) a line waits for room rather than being
 * dropped: see pe_log_wait_for_reader. Not under write_lock, which a
 * terminal's writer thread holds while its reader does not read. */
static _Atomic int64_t wait_until_ms;
/* stderr is the journal: "<N>message", the journal records the rest. */
static bool journal_format;

/* A terminal we may not open again (another user's): poll(2) says it has
 * room as soon as it has a byte, and with output processing on (ONLCR, as
 * a login leaves it) a blocking write(2) waits until the whole line has
 * room. Its lines go out from a thread of their own, the only one that
 * waits for the reader; the others queue a line, and when ASYNC_LINES wait
 * already the oldest of them is dropped and counted: the lines kept are the
 * last ones (a stop's, the "stopped:" line), which at exit have
 * ASYNC_FLUSH_MS to go out to a reader that reads again. */
#define ASYNC_LINES 64
#define ASYNC_FLUSH_MS 1000
static bool log_async;
static pthread_mutex_t async_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t async_more = PTHREAD_COND_INITIALIZER;
static struct async_line {
	size_t len;
	unsigned long lost_before; /* lines dropped just before it, the queue full */
	char text[1024];
} async_lines[ASYNC_LINES];
static unsigned async_head, async_count;
static bool async_writing; /* the writer holds a line it took */

void pe_log_set_program(const char *name) { program = name; }
void pe_log_set_level(enum pe_log_level level) { threshold = level; }

const char *pe_log_level_name(enum pe_log_level level)
{
	switch (level) {
	case PE_LOG_ERROR: return "error";
	case PE_LOG_WARN: return "warning";
	case PE_LOG_INFO: return "info";
	case PE_LOG_DEBUG: return "debug";
	}
	return "?";
}

void pe_log_vformat(char *msg, size_t size, const char *fmt, va_list ap)
{
	/* Larger than any line (PE_LOG_LINE_MAX): a text cut here is cut
	 * again, with "...", when shown into MSG. */
	char text[2 * PE_LOG_LINE_MAX];
	int n = vsnprintf(text, sizeof text, fmt, ap);

	/* One line: a newline in a -b value cannot forge a line of its own. */
	pe_parse_shown(text, n < 0 ? 0 : (size_t)n, msg, size);
}

/* VALUE, all decimal digits, into *OUT: false when it is not that. */
static bool parse_decimal(const char *value, const char *end, unsigned long long *out)
{
	char *stop;

	if (value == end || *value < '0' || *value > '9')
		return false;
	errno = 0;
	*out = strtoull(value, &stop, 10);
	return errno == 0 && stop == end;
}

bool pe_log_detect_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	const char *colon = env ? strchr(env, ':') : NULL;
	unsigned long long dev, ino;
	struct stat st;

	/* systemd sets it for a unit whose stdout or stderr is the journal, and
	 * a child inherits it with its stderr redirected: only when it names
	 * fd 2 itself do lines go to the journal. */
	journal_format = colon && parse_decimal(env, colon, &dev) &&
	                 parse_decimal(colon + 1, colon + strlen(colon), &ino) &&
	                 fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	                 (unsigned long long)st.st_ino == ino;
	return journal_format;
}

const char *pe_log_prefix(enum pe_log_level level)
{
	/* syslog's LOG_ERR, LOG_WARNING, LOG_INFO and LOG_DEBUG */
	static const char *const prefix[] = {"<3>", "<4>", "<6>", "<7>"};

	if (!journal_format || (unsigned)level >= sizeof prefix / sizeof prefix[0])
		return "";
	return prefix[level];
}

static int start_async_writer(void);

int pe_log_never_block(void)
{
	struct stat st;
	int fd;

	if (fstat(STDERR_FILENO, &st) < 0)
		return -errno;
	if (S_ISSOCK(st.st_mode)) {
		/* A socket cannot be opened again: each send says MSG_DONTWAIT. */
		log_to_socket = true;
		return 0;
	}
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		return 0; /* a file: its writes do not wait on a reader */
	/* A description of our own, so O_NONBLOCK does not reach the shell's
	 * or the supervisor's, which share stderr's. */
	fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		/* A pipe or terminal of another user, kept across a change of
		 * user (runit's chpst, setpriv, su): EACCES. A terminal gets a
		 * writer thread (see log_async). A pipe is looked at before
		 * each write instead: one that polls writable has a page free,
		 * and a line (under PIPE_BUF) goes into it whole without
		 * waiting, unless another process fills it between the two
		 * calls. */
		if (S_ISCHR(st.st_mode) && start_async_writer() == 0)
			return 0;
		log_poll_first = true;
		return 0;
	}
	log_fd = fd;
	return 0;
}

/* The error a write would meet where poll(2) gave REVENTS, 0 if none: a
 * pipe whose reader has gone (POLLERR, without POLLOUT while it is full),
 * a terminal hung up, a descriptor closed. Those never clear: waiting for
 * room would poll at once, over and over. */
static int poll_failure(short revents)
{
	if (revents & POLLNVAL)
		return EBADF;
	if (revents & POLLERR)
		return EPIPE;
	return revents & POLLHUP ? EIO : 0; /* a terminal hung up: what write(2) says */
}

/* One try at writing N bytes of P, never waiting where pe_log_never_block
 * set that up. */
static ssize_t put(const char *p, size_t n)
{
	struct pollfd pfd = {.fd = log_fd, .events = POLLOUT};

	if (log_to_socket)
		return send(STDERR_FILENO, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (log_poll_first) {
		int ready = poll(&pfd, 1, 0);

		/* Said as the write's error, so that the count of lines
		 * dropped says why, and the stop waits for no reader. */
		if (ready == 1 && poll_failure(pfd.revents)) {
			errno = poll_failure(pfd.revents);
			return -1;
		}
		if (ready != 1 || !(pfd.revents & POLLOUT)) {
			errno = EAGAIN;
			return -1;
		}
	}
	return write(log_fd, p, n);
}

/* Write what standard error takes now of the LEN bytes at P: all of them
 * while pe_log_wait_for_reader's time lasts, else without waiting. How
 * many bytes went. */
static size_t write_now(const char *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = put(p + done, len - done);
		struct pollfd pfd = {.fd = log_to_socket ? STDERR_FILENO : log_fd, .events = POLLOUT};
		int64_t until = atomic_load(&wait_until_ms);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			atomic_store(&drop_errno, errno);
			break;
		}
		if (until == 0 || pe_now_ms() >= until || poll(&pfd, 1, 10) < 0)
			break;
		if (poll_failure(pfd.revents)) {
			atomic_store(&drop_errno, poll_failure(pfd.revents));
			break;
		}
	}
	return done;
}

void pe_log_wait_for_reader(unsigned ms)
{
	atomic_store(&wait_until_ms, pe_now_ms() + (int64_t)ms);
}

/* Whether LINE went out, whole or begun: the rest of one that standard
 * error took part of follows before any other line (see line_rest), and
 * until it has gone a line is dropped. */
static bool write_line(const char *line, size_t len)
{
	size_t done = 0;
	bool went = false;

	pthread_mutex_lock(&write_lock);
	if (line_rest_len > 0) {
		done = write_now(line_rest, line_rest_len);
		memmove(line_rest, line_rest + done, line_rest_len - done);
		line_rest_len -= done;
	}
	if (line_rest_len == 0) {
		done = write_now(line, len);
		went = done > 0;
		if (went && done < len && len - done <= sizeof line_rest) {
			memcpy(line_rest, line + done, len - done);
			line_rest_len = len - done;
		} else if (went && done < len) {
			line_rest[0] = '\n'; /* never so long; if it were, end it at least */
			line_rest_len = 1;
		}
	}
	pthread_mutex_unlock(&write_lock);
	return went;
}

/* One line: timestamp, program, PID, level, MSG; for the journal, the
 * level's priority prefix and MSG. Its length. */
static size_t format_line(char *line, size_t size, enum pe_log_level level, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	int n;

	if (journal_format) {
		n = snprintf(line, size, "%s%s\n", pe_log_prefix(level), msg);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s: %s\n",
		             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		             tm.tm_sec, ts.tv_nsec / 1000000L, program, (long)getpid(),
		             pe_log_level_name(level), msg);
	}
	if (n < 0)
		return 0;
	if ((size_t)n >= size) {
		n = (int)size - 1;
		line[n - 1] = '\n';
	}
	return (size_t)n;
}

/* Write LINE, after the count of lines dropped before it, if any. */
static void write_counted(const char *line, size_t len)
{
	unsigned long lost = atomic_exchange(&lines_dropped, 0);

	if (lost > 0) {
		int err = atomic_exchange(&drop_errno, 0);
		char note[192], notice[320];
		size_t nlen;

		snprintf(note, sizeof note, "%lu log line%s dropped: standard error was not "
		         "taking them%s%s%s", lost, lost == 1 ? "" : "s", err ? " (write: " : "",
		         err ? strerror(err) : "", err ? ")" : "");
		nlen = format_line(notice, sizeof notice, PE_LOG_WARN, note);
		if (!write_line(notice, nlen)) {
			/* Said with the next count, the reason too. */
			atomic_compare_exchange_strong(&drop_errno, &(int){0}, err);
			atomic_fetch_add(&lines_dropped, lost + 1);
			return;
		}
	}
	/* Nothing useful can be done if stderr is gone, but count it. */
	if (!write_line(line, len))
		atomic_fetch_add(&lines_dropped, 1);
}

static void *async_writer(void *arg)
{
	char line[sizeof async_lines[0].text];
	unsigned long lost;
	size_t len;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&async_lock);
		while (async_count == 0)
			pthread_cond_wait(&async_more, &async_lock);
		len = async_lines[async_head].len;
		lost = async_lines[async_head].lost_before;
		memcpy(line, async_lines[async_head].text, len);
		async_head = (async_head + 1) % ASYNC_LINES;
		async_count--;
		async_writing = true;
		pthread_mutex_unlock(&async_lock);
		/* Counted in place: the warning comes where the gap is. */
		atomic_fetch_add(&lines_dropped, lost);
		write_counted(line, len); /* may wait for the reader: only here */
		pthread_mutex_lock(&async_lock);
		async_writing = false;
		pthread_mutex_unlock(&async_lock);
	}
	return NULL;
}

/* At exit: let the lines queued go out, for ASYNC_FLUSH_MS at most. */
static void flush_async(void)
{
	for (int waited = 0; waited < ASYNC_FLUSH_MS; waited += 10) {
		bool idle;

		pthread_mutex_lock(&async_lock);
		idle = async_count == 0 && !async_writing;
		pthread_mutex_unlock(&async_lock);
		if (idle)
			return;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
	}
}

/* The writer thread, taking no signal (the program's threads take them):
 * 0, or -1 when it cannot be had (lines are then polled for, as a pipe's). */
static int start_async_writer(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t thread;
	int rc;

	if (pthread_attr_init(&attr) != 0)
		return -1;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&thread, &attr, async_writer, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return -1;
	log_async = true;
	atexit(flush_async);
	return 0;
}

static void emit(enum pe_log_level level, const char *msg)
{
	char line[sizeof async_lines[0].text];
	size_t len = format_line(line, sizeof line, level, msg);
	struct async_line *a;
	unsigned long lost = 0;

	if (len == 0)
		return;
	if (!log_async) {
		write_counted(line, len);
		return;
	}
	pthread_mutex_lock(&async_lock);
	if (async_count == ASYNC_LINES) {
		/* Full: the oldest line gives way, its count and its own go to
		 * the line after it, where the gap now is. */
		lost = async_lines[async_head].lost_before + 1;
		async_head = (async_head + 1) % ASYNC_LINES;
		async_count--;
		if (async_count > 0) {
			async_lines[async_head].lost_before += lost;
			lost = 0;
		}
	}
	a = &async_lines[(async_head + async_count) % ASYNC_LINES];
	memcpy(a->text, line, len);
	a->len = len;
	a->lost_before = lost;
	async_count++;
	pthread_cond_signal(&async_more);
	pthread_mutex_unlock(&async_lock);
}

void pe_log(enum pe_log_level level, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	if (level > threshold)
		return;
	va_start(ap, fmt);
	pe_log_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	emit(level, msg);
}

void pe_log_sink(void *ctx, enum pe_log_level level, const char *message)
{
	(void)ctx;
	if (level <= threshold)
		emit(level, message);
}
