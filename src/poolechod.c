/*
 * poolechod.c -- the echo daemon: parse the command line, raise the
 * descriptor limit, start the server, and turn signals into stops and
 * stats lines. Signals are taken by sigwait(3) on a thread of their own,
 * so no handler ever runs inside the server's code.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <poolecho/server.h>

#include "activation.h"
#include "cgroup.h"
#include "cpus.h"
#include "daemon_cli.h"
#include "log.h"
#include "monotonic.h"
#include "net.h"
#include "sdnotify.h"
#include "sigstate.h"
#include "stdfds.h"
#include "sysfile.h"
#include "thread_limits.h"

/* A state notification for a service manager: the state and the log
 * line, as STATUS=. */
#define STATE_MESSAGE_MAX 448
/* How long STOPPING=1 waits for a manager whose queue is full: the stop
 * goes on without it. */
#define STOPPING_NOTIFY_MS 1000
/* How long the stop's last lines wait, in all, for a log reader that fell
 * behind: as long as a terminal's writer thread gets at exit. */
#define STOP_LOG_MS 1000

struct signal_thread {
	pthread_t thread;
	sigset_t set;
	pe_server *server;
	const struct daemon_options *opt;
	int64_t stats_due_ns;       /* CLOCK_MONOTONIC: when the next interval line is due */
	atomic_int done;            /* set by main before it wakes us with SIGUSR2 */
	char ready[STATE_MESSAGE_MAX]; /* READY=1 for a service manager, sent first */
	struct pe_sd_notifier notifier;
};

static void log_stats(pe_server *srv, const char *prefix)
{
	struct pe_server_stats s;
	char line[PE_STATS_LINE_MAX];

	pe_server_stats(srv, &s);
	pe_server_stats_format(&s, line, sizeof line);
	pe_log(PE_LOG_INFO, "%s%s", prefix, line);
}

/* The next signal, or 0 when an interval line is due. Its due time is
 * fixed on CLOCK_MONOTONIC, start + k * interval, so a signal, which ends
 * sigtimedwait early, cannot push it back. */
static int next_signal(struct signal_thread *st)
{
	int64_t interval_ns = (int64_t)st->opt->stats_interval_ms * 1000000;
	int64_t now, left;
	struct timespec ts;
	int sig;

	if (!interval_ns) {
		if (sigwait(&st->set, &sig) != 0)
			return -1;
		return sig;
	}
	now = pe_now_ns();
	if (now >= st->stats_due_ns) {
		/* After a stall of more than an interval (SIGSTOP), the next due
		 * time after now: one line, not a burst of stale ones. */
		st->stats_due_ns += ((now - st->stats_due_ns) / interval_ns + 1) * interval_ns;
		return 0;
	}
	left = st->stats_due_ns - now;
	ts = pe_timespec_from_ns(left);
	/* A timeout (EAGAIN) returns nothing: the clock, checked on the next
	 * call, decides whether the line is due. */
	return sigtimedwait(&st->set, NULL, &ts);
}

/* The signals that stop the daemon gracefully. SIGHUP is one of them:
 * with no configuration file to reload, a hangup (the terminal closed, a
 * supervisor's SIGHUP) can only sensibly mean "stop", and its default
 * action would end the process without the grace or the last stats line. */
static const char *stop_signal_name(int sig)
{
	switch (sig) {
	case SIGINT:
		return "SIGINT";
	case SIGHUP:
		return "SIGHUP";
	default:
		return "SIGTERM";
	}
}

/* What a $NOTIFY_SOCKET that pe_sd_notify_open refused (RC, -EINVAL)
 * should have been: "Invalid argument" alone says not what to set. */
static const char *notify_expected(const struct pe_sd_notifier *n, int rc)
{
	if (n->fd >= 0 || rc != -EINVAL)
		return "";
	return ": expected an absolute path (/...) of at most 107 bytes, or an abstract "
	       "name (@...) of at most 108";
}

/* Log a change of the daemon's state at info, and make in MESSAGE the
 * notification of STATE for a service manager (systemd's Type=notify) with
 * the same line as STATUS=, which "systemctl status" shows. */
static void vlog_state(char message[STATE_MESSAGE_MAX], const char *state, const char *fmt,
                       va_list ap) __attribute__((format(printf, 3, 0)));
static void vlog_state(char message[STATE_MESSAGE_MAX], const char *state, const char *fmt,
                       va_list ap)
{
	char line[384];

	vsnprintf(line, sizeof line, fmt, ap);
	pe_log(PE_LOG_INFO, "%s", line);
	snprintf(message, STATE_MESSAGE_MAX, "%s%sSTATUS=%s", state, *state ? "\n" : "", line);
}

static void log_state_into(char message[STATE_MESSAGE_MAX], const char *state,
                           const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void log_state_into(char message[STATE_MESSAGE_MAX], const char *state,
                           const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_state(message, state, fmt, ap);
	va_end(ap);
}

/* Whether a stop signal (SIGINT, SIGTERM, SIGHUP) is pending, to be taken
 * then as usual: a wait for the manager ends. SIGUSR1 and an outside
 * SIGUSR2, which is ignored, do not end it. */
static int stop_pending(void *ctx)
{
	static const int stops[] = {SIGINT, SIGTERM, SIGHUP};
	struct signal_thread *st = ctx;
	sigset_t pending;

	if (sigpending(&pending) != 0)
		return 0;
	for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++)
		if (sigismember(&st->set, stops[i]) == 1 && sigismember(&pending, stops[i]) == 1)
			return 1;
	return 0;
}

/* Whether READY=1 (or a second stop's STATUS=) waits no longer: main has
 * ended, or a stop signal is pending. */
static int ready_given_up(void *ctx)
{
	struct signal_thread *st = ctx;

	return atomic_load(&st->done) || stop_pending(ctx);
}

/* The same, then STOP the server, then send it to the manager, a second
 * at most and until GIVE_UP says so: the stop does not wait for a busy
 * manager, and goes on without it, with a warning. */
static void log_state(struct signal_thread *st, void (*stop)(pe_server *),
                      int (*give_up)(void *), const char *state,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void log_state(struct signal_thread *st, void (*stop)(pe_server *),
                      int (*give_up)(void *), const char *state, const char *fmt, ...)
{
	char message[STATE_MESSAGE_MAX];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vlog_state(message, state, fmt, ap);
	va_end(ap);
	stop(st->server);
	rc = pe_sd_notify_send(&st->notifier, message, STOPPING_NOTIFY_MS, give_up, st);
	if (rc < 0 && !(rc == -ECANCELED && atomic_load(&st->done)))
		pe_log(PE_LOG_WARN, "cannot tell the service manager that the server is stopping: "
		       "%s%s (NOTIFY_SOCKET=%s)", strerror(-rc), notify_expected(&st->notifier, rc),
		       getenv("NOTIFY_SOCKET"));
}

/* Tell a service manager that the daemon is ready, as long as it takes
 * one whose queue is full (a busy PID 1), while the server already serves;
 * meanwhile no signal is taken, stats lines wait, and a stop gives it up. */
static void send_ready(struct signal_thread *st)
{
	int rc = pe_sd_notify_send(&st->notifier, st->ready, -1, ready_given_up, st);

	if (rc == -ECANCELED && !atomic_load(&st->done))
		pe_log(PE_LOG_WARN, "the service manager had not taken READY=1 when a stop signal "
		       "came: it was not told that the server is ready (NOTIFY_SOCKET=%s)",
		       getenv("NOTIFY_SOCKET"));
	else if (rc < 0 && rc != -ECANCELED)
		/* The reason first: a long value is cut at the end of the line. */
		pe_log(PE_LOG_WARN, "cannot tell the service manager that the server is ready: "
		       "%s%s (NOTIFY_SOCKET=%s)", strerror(-rc), notify_expected(&st->notifier, rc),
		       getenv("NOTIFY_SOCKET"));
}

static void *signal_main(void *arg)
{
	struct signal_thread *st = arg;
	int stops = 0, first_stop = 0;

	send_ready(st);
	while (!atomic_load(&st->done)) {
		int sig = next_signal(st);

		switch (sig) {
		case 0:
			log_stats(st->server, "stats: ");
			break;
		case SIGUSR1:
			/* Marked, so the interval series stays regular for whoever
			 * reads rates from it. */
			log_stats(st->server, "stats (SIGUSR1): ");
			break;
		case SIGINT:
		case SIGTERM:
		case SIGHUP:
			if (stops++ == 0) {
				first_stop = sig;
				/* systemd's Type=notify: the stop has begun. A manager
				 * that cannot be told gets a warning; it waits for the
				 * exit anyway. */
				if (st->opt->server.grace_ms == 0)
					log_state(st, pe_server_stop, stop_pending, "STOPPING=1",
					          "%s received: stopping, closing every connection now "
					          "(--grace=0)", stop_signal_name(sig));
				else
					log_state(st, pe_server_stop, stop_pending, "STOPPING=1",
					          "%s received: stopping (grace %u.%03us; send it again "
					          "to stop at once)",
					          stop_signal_name(sig), st->opt->server.grace_ms / 1000,
					          st->opt->server.grace_ms % 1000);
			} else {
				char after[24] = " again";

				if (sig != first_stop)
					snprintf(after, sizeof after, " after %s",
					         stop_signal_name(first_stop));
				log_state(st, pe_server_stop_now, ready_given_up, "",
				          "%s received%s: closing every connection now",
				          stop_signal_name(sig), after);
			}
			break;
		default:
			break; /* SIGUSR2 from main, a timeout, or EINTR */
		}
	}
	return NULL;
}

/* Make sure every worker and queued connection can hold a descriptor, and
 * if the hard limit allows, every worker its splice pipe too (without one a
 * worker copies through user space instead). */
static void raise_fd_limit(const struct pe_server_config *cfg)
{
	rlim_t need = (rlim_t)cfg->workers + cfg->queue_capacity + PE_SERVER_SPARE_FDS;
#ifdef HAVE_SPLICE
	rlim_t want = need + (cfg->splice != PE_SPLICE_NEVER ? 2 * (rlim_t)cfg->workers : 0);
#else
	rlim_t want = need;
#endif
	struct rlimit rl;
	rlim_t old;
	char limit[96];

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		pe_log(PE_LOG_WARN, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return;
	old = rl.rlim_cur;
	rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ? want : rl.rlim_max;
	if (rl.rlim_cur > old && setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		pe_log(PE_LOG_WARN, "cannot raise the descriptor limit from %llu to %llu: %s",
		       (unsigned long long)old, (unsigned long long)rl.rlim_cur, strerror(errno));
		rl.rlim_cur = old;
	}
	if (rl.rlim_cur < need) {
		/* Short of NEED, a raise went as far as the hard limit: say it was
		 * raised, or the limit seen is not the one that was set. */
		if (rl.rlim_cur > old)
			snprintf(limit, sizeof limit, "raised from %llu to the hard limit, %llu",
			         (unsigned long long)old, (unsigned long long)rl.rlim_cur);
		else
			snprintf(limit, sizeof limit, "is %llu (hard limit %llu)",
			         (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
		pe_log(PE_LOG_WARN, "descriptor limit %s; %u worker%s and a queue of %zu need %llu: "
		       "accepting will pause when they run out (raise 'ulimit -n', or LimitNOFILE= "
		       "under systemd)", limit, cfg->workers, cfg->workers == 1 ? "" : "s",
		       cfg->queue_capacity, (unsigned long long)need);
		return;
	}
	if (rl.rlim_cur > old)
		pe_log(PE_LOG_INFO, "descriptor limit raised from %llu to %llu",
		       (unsigned long long)old, (unsigned long long)rl.rlim_cur);
	if (rl.rlim_cur < want)
		pe_log(PE_LOG_INFO, "descriptor limit %llu leaves splice pipes for %llu of the %u "
		       "workers (2 descriptors each): the others copy bulk streams",
		       (unsigned long long)rl.rlim_cur,
		       (unsigned long long)((rl.rlim_cur - need) / 2), cfg->workers);
}

/* Whether a descriptor is left for a connection once the server is set up:
 * with none, it would listen and never serve a client (Linux's accept(2)
 * fails with EMFILE), so it must not claim to be ready. */
static bool descriptor_left(void)
{
	int spare = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
	struct rlimit rl;
	char limit[48] = "";

	if (spare >= 0) {
		close(spare);
		return true;
	}
	if (errno != EMFILE)
		return true; /* not a shortage of ours: accept(2) will say */
	/* A limit that cannot be read is not said: RL would be garbage. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		snprintf(limit, sizeof limit, " %llu", (unsigned long long)rl.rlim_cur);
	pe_log(PE_LOG_ERROR, "no descriptor is left for a client: the server's own use all%s "
	       "the limit allows (raise 'ulimit -n', or LimitNOFILE= under systemd)", limit);
	return false;
}

/* The backlog listen(2) gets. Linux caps it at net.core.somaxconn without
 * a word, and a burst beyond the cap loses SYNs, whose clients wait a
 * second or more for the retry: an operator who asked for more must hear
 * that it was cut. */
static int backlog_in_effect(int backlog)
{
#ifdef __linux__
	long cap = pe_sysfile_number("/proc/sys/net/core/somaxconn");

	if (cap >= 0 && backlog > cap) {
		pe_log(PE_LOG_WARN, "listen backlog %d (--backlog) is capped at %ld by "
		       "net.core.somaxconn: a burst of more connects loses SYNs, retried a second "
		       "later (sysctl -w net.core.somaxconn=%d, then restart; or lower --backlog)",
		       backlog, cap, backlog);
		return (int)cap;
	}
#endif
	return backlog;
}

/* Whether the socket on SS, made from C's bind_address or passed as
 * GIVEN_FD (when >= 0), takes IPv4 clients too. */
static bool dual_stack(const struct pe_server_config *c, const struct sockaddr_storage *ss,
                       int given_fd)
{
	int v6only = 0;
	socklen_t len = sizeof v6only;

	if (given_fd < 0)
		return pe_net_dual_stack(c->bind_address, (const struct sockaddr *)ss);
	return getsockopt(given_fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) == 0 && !v6only;
}

/* With IPv6 turned off (net.ipv6.conf.all.disable_ipv6=1) "::" still
 * binds, and an IPv6-only socket on it (-b ::, or a socket unit's
 * BindIPv6Only=ipv6-only) then serves no one: IPv4 clients are refused,
 * and there are no IPv6 ones. Say so at start, as -b ::1 fails with "not
 * an address of this host". No IPv6 address is also what a network
 * namespace whose loopback is still down shows, with IPv6 on: the cause is
 * named only when the setting says it. */
static void warn_ipv6_off(pe_server *srv, const struct daemon_options *opt, int given_fd)
{
	struct sockaddr_storage ss;
	socklen_t len;

	pe_server_address(srv, &ss, &len);
	if (ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&ss)->sin6_addr) &&
	    !dual_stack(&opt->server, &ss, given_fd) && !pe_net_ipv6_has_an_address())
		pe_log(PE_LOG_WARN, "%s (no interface has an IPv6 address): [::], IPv6 only, "
		       "serves no one until one has (%s serves IPv4 too)",
		       pe_sysfile_number("/proc/sys/net/ipv6/conf/all/disable_ipv6") == 1 ?
		       "IPv6 is turned off on this host (net.ipv6.conf.all.disable_ipv6=1)" :
		       "IPv6 has no address on this host yet",
		       given_fd >= 0 ? "a socket unit with BindIPv6Only=both" : "without -b, poolechod");
}

/* Log the address and settings served, and make in READY the notification
 * that tells a service manager so (see vlog_state). BACKLOG
 * is our own socket's in effect; that of GIVEN_FD, when it is >= 0 (the
 * service manager's socket), is read from it. */
static void log_listening(pe_server *srv, const struct daemon_options *opt, int backlog,
                          int given_fd, char ready[STATE_MESSAGE_MAX])
{
	const struct pe_server_config *c = &opt->server;
	struct sockaddr_storage ss;
	socklen_t len;
	char where[PE_NET_ADDRLEN], backlog_text[48], per_source[16] = "off";
	const char *family = "";

	pe_server_address(srv, &ss, &len);
	pe_net_format((struct sockaddr *)&ss, len, where);
	/* "[::]" is the default's dual-stack socket or an IPv6-only one (-b ::):
	 * a client of 127.0.0.1 is served by one and refused by the other. */
	if (ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&ss)->sin6_addr))
		family = dual_stack(c, &ss, given_fd) ? " for IPv6 and IPv4" : " for IPv6 only";
	if (given_fd >= 0) {
		unsigned given_backlog = 0; /* set when 0 is returned; gcc -O3 -flto cannot tell */

		if (pe_net_listen_queue(given_fd, NULL, &given_backlog) == 0)
			snprintf(backlog_text, sizeof backlog_text, "backlog=%u (the socket unit's)",
			         given_backlog);
		else
			snprintf(backlog_text, sizeof backlog_text, "backlog: the socket unit's");
	} else if (backlog != c->backlog)
		snprintf(backlog_text, sizeof backlog_text, "backlog=%d (--backlog %d capped)",
		         backlog, c->backlog);
	else
		snprintf(backlog_text, sizeof backlog_text, "backlog=%d", backlog);
	if (c->per_source)
		snprintf(per_source, sizeof per_source, "%u", c->per_source);
	log_state_into(ready, "READY=1", "listening on %s%s%s (workers=%u queue=%zu overflow=%s "
	               "per-source=%s idle-timeout=%u.%03us grace=%u.%03us %s)",
	               where, family, given_fd >= 0 ? " on the socket the service manager passed" :
	               "", c->workers, c->queue_capacity,
	               c->overflow == PE_OVERFLOW_WAIT ? "wait" : "reject", per_source,
	               c->idle_timeout_ms / 1000, c->idle_timeout_ms % 1000,
	               c->grace_ms / 1000, c->grace_ms % 1000, backlog_text);
}

/* The library's log, counting its errors: a failure it has explained needs
 * no second, vaguer line from main. */
static atomic_uint server_errors_logged;

static void server_log(void *ctx, enum pe_log_level level, const char *message)
{
	if (level == PE_LOG_ERROR)
		atomic_fetch_add(&server_errors_logged, 1);
	pe_log_sink(ctx, level, message);
}

/* A 32-bit process has 4 GiB of address space at most, whatever the
 * limits say: there the workers' stacks or buffers (EACH bytes apiece) can
 * fill it with no limit set. What they take, for the error, when it is a
 * quarter of that space or more; else "". */
static const char *address_space_note(unsigned workers, size_t each, const char *option,
                                      char *buf, size_t size)
{
	*buf = '\0';
	if (sizeof(void *) < 8 && (unsigned long long)workers * each >= 1ULL << 30)
		snprintf(buf, size, "; a 32-bit process has at most 4 GiB of address space, and "
		         "%u workers' %s of %zu bytes take %llu MiB of it", workers, option, each,
		         (unsigned long long)workers * each >> 20);
	return buf;
}

/* Why pe_server_create() failed, in one line. The library explains a bad
 * setting or a socket's failure itself; a refused thread or a lack of
 * memory it leaves to us, who can name the limits and the options. An
 * error it logged is the whole story, whatever its errno: a socket(2)
 * without memory is not a matter of -w or --buffer-size. */
static void log_create_failure(const struct pe_server_config *cfg, int rc)
{
	char note[256];

	if (atomic_load(&server_errors_logged))
		return;
	if (rc == -EAGAIN) {
		char limits[512];

		thread_limits_describe(limits, sizeof limits);
		pe_log(PE_LOG_ERROR, "cannot start %u worker threads: %s (the system refused "
		       "one); lower -w/--workers or raise the limit that binds: %s%s",
		       cfg->workers, strerror(EAGAIN), *limits ? limits : "see 'ulimit -u'",
		       address_space_note(cfg->workers, cfg->stack_size, "--stack-size stacks",
		                          note, sizeof note));
	} else if (rc == -ENOMEM)
		/* The buffers are most of it, but the queue and the pool's
		 * tables come from the same memory. */
		pe_log(PE_LOG_ERROR, "cannot start %u workers with %zu-byte buffers and a "
		       "queue of %zu: %s; lower -w/--workers, --buffer-size or -q/--queue, "
		       "or raise 'ulimit -v'%s", cfg->workers, cfg->buffer_size,
		       cfg->queue_capacity, strerror(ENOMEM),
		       address_space_note(cfg->workers, cfg->buffer_size, "--buffer-size buffers",
		                          note, sizeof note));
	else
		pe_log(PE_LOG_ERROR, "cannot start: %s", strerror(-rc));
}

/* What a worker's thread costs beyond its buffer: the kernel's 16 KiB
 * stack and its task, and the pages of --stack-size it touches (2,000
 * idle workers took 64 MiB of a memory cgroup). */
enum { WORKER_THREAD_COST = 32 * 1024 };

/* A cgroup memory limit (systemd's MemoryMax=, docker's --memory) below
 * what the workers can make resident is not refused: the buffers are
 * resident only as reads reach them. But beyond it the kernel's OOM killer
 * ends the daemon with SIGKILL, at start or under load, and nothing of
 * ours can say why: say it now, before the workers start. */
static void warn_memory_limit(const struct pe_server_config *cfg)
{
#ifdef __linux__
	long long limit = pe_cgroup_memory_max("/proc/self/mountinfo", "/proc/self/cgroup");
	unsigned long long need = (unsigned long long)cfg->workers *
	                          ((unsigned long long)cfg->buffer_size + WORKER_THREAD_COST);

	if (limit < 0 || need <= (unsigned long long)limit)
		return;
	pe_log(PE_LOG_WARN, "cgroup memory limit %llu MiB (memory.max or memory.limit_in_bytes: "
	       "systemd MemoryMax=, docker --memory) is below the %llu MiB that %u workers with "
	       "%zu-byte buffers can take (with some 32 KiB a thread): past it the kernel's OOM "
	       "killer ends poolechod with SIGKILL and no log line; lower -w/--workers or "
	       "--buffer-size, or raise the limit", (unsigned long long)limit >> 20, need >> 20,
	       cfg->workers, cfg->buffer_size);
#else
	(void)cfg;
#endif
}

/* Start the signal thread on a stack of STACK_SIZE, the workers' own: the
 * default follows 'ulimit -s' (8 MiB, or a GiB where an operator set one),
 * address space that 'ulimit -v' (LimitAS=) counts, for a thread that needs
 * a few KiB. 0 or an error number. */
static int start_signal_thread(struct signal_thread *st, size_t stack_size)
{
	pthread_attr_t attr;
	int rc;

	if ((rc = pthread_attr_init(&attr)) != 0)
		return rc;
	/* Refused (below PTHREAD_STACK_MIN): the default, as before. */
	(void)pthread_attr_setstacksize(&attr, stack_size);
	rc = pthread_create(&st->thread, &attr, signal_main, st);
	pthread_attr_destroy(&attr);
	return rc;
}

/* Why the signal thread, the one beyond the workers, could not start: a
 * limit on threads (TasksMax= set to the workers and main) or on address
 * space binds as for a worker, and is named as for one. */
static void log_signal_thread_failure(const struct pe_server_config *cfg, int err)
{
	char limits[512];

	if (err != EAGAIN) {
		pe_log(PE_LOG_ERROR, "cannot start the signal thread: %s", strerror(err));
		return;
	}
	thread_limits_describe(limits, sizeof limits);
	pe_log(PE_LOG_ERROR, "cannot start the signal thread: %s (the system refused it, "
	       "beside the main thread and %u workers); lower -w/--workers or raise the limit "
	       "that binds: %s", strerror(err), cfg->workers, *limits ? limits : "see 'ulimit -u'");
}

/* Options that are accepted but cannot act as given: say so at start. */
static void warn_options_overruled(const struct daemon_options *opt)
{
	unsigned busy_poll_us = pe_server_busy_poll_us(&opt->server);

	if (busy_poll_us != opt->server.busy_poll_us)
		pe_log(PE_LOG_WARN, "--busy-poll %u us is cut to %u us, a sixteenth of "
		       "--idle-timeout, so that a spin cannot hold a silent client past it",
		       opt->server.busy_poll_us, busy_poll_us);
	if (busy_poll_us) {
		double quota = pe_cpu_quota();
		unsigned allowed = pe_allowed_cpus();
		unsigned whole = pe_cpus_within_quota(allowed, quota, false);
		bool auto_splice = opt->server.splice == PE_SPLICE_AUTO;

		/* Not a warning: the quota is as meant, and so is what it does. */
		if (quota >= 0 && whole == 0)
			pe_log(PE_LOG_INFO, "busy polling: the cgroup CPU quota of %.2f CPUs leaves "
			       "no whole CPU to spin on, so no worker spins%s", quota,
			       auto_splice ? " (and --splice=auto copies)" : "");
		else if (quota >= 0 && whole < allowed)
			pe_log(PE_LOG_INFO, "busy polling: the cgroup CPU quota of %.2f CPUs leaves "
			       "%u whole CPU%s to spin on, so workers spin%s only while no more than "
			       "%u client%s %s connected", quota, whole, whole == 1 ? "" : "s",
			       auto_splice ? " (and --splice=auto splices)" : "", whole,
			       whole == 1 ? "" : "s", whole == 1 ? "is" : "are");
	}
#ifndef HAVE_SPLICE
	if (opt->server.splice == PE_SPLICE_ALWAYS)
		pe_log(PE_LOG_WARN, "--splice=always: this system has no splice(2), so streams "
		       "are echoed by copying");
#endif
	/* An address holding workers + queue connections leaves no room for
	 * another anyway: --overflow=reject's extra client is closed either way. */
	if (opt->server.per_source &&
	    opt->server.per_source >= opt->server.workers + opt->server.queue_capacity)
		pe_log(PE_LOG_WARN, "--per-source %u limits nothing: %u worker%s and a queue of "
		       "%zu hold no more than that at once", opt->server.per_source,
		       opt->server.workers, opt->server.workers == 1 ? "" : "s",
		       opt->server.queue_capacity);
	/* At --log-level=error only an error line is seen. */
	if (opt->stats_interval_ms && opt->log_level < PE_LOG_INFO)
		pe_log(opt->log_level, "--stats-interval lines are logged at level info, which "
		       "--log-level=%s hides", pe_log_level_name(opt->log_level));
}

/* Block the signals that the signal thread takes into SET, before anything
 * else: until then a SIGUSR1 or a stop would find its default action, the
 * end of the process, and it would be too late once a thread has started
 * (each inherits the mask). Started with SIGINT or SIGHUP ignored (a
 * background job of a shell without job control, nohup), the daemon is
 * meant to outlive the terminal's Ctrl-C or hangup: those stay ignored,
 * and unblocked, as found. SIGTERM always stops. */
static void block_signals(sigset_t *set)
{
	static const int leave_if_ignored[] = {SIGINT, SIGHUP};
	sigset_t ignored;

	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	sigemptyset(&ignored);
	for (size_t i = 0; i < sizeof leave_if_ignored / sizeof leave_if_ignored[0]; i++) {
		if (pe_signal_ignored(leave_if_ignored[i])) {
			sigaddset(&ignored, leave_if_ignored[i]);
			sigdelset(set, leave_if_ignored[i]);
		}
	}
	pthread_sigmask(SIG_UNBLOCK, &ignored, NULL);
}

/* SIGQUIT's default action, for PID 1 of a PID namespace (a container
 * without an init): the kernel drops a signal left at its default there,
 * from inside the namespace or from outside, so "SIGQUIT ends it at once"
 * needs a handler. The status a shell shows for a death by SIGQUIT. */
static void quit_as_init(int sig)
{
	_exit(128 + sig);
}

/* daemon_cli_show as a pe_stdout_print_checked printer. */
static void show_help_or_version(FILE *out, const void *opt)
{
	daemon_cli_show(out, opt);
}

int main(int argc, char **argv)
{
	struct daemon_options opt;
	struct signal_thread st;
	pe_server *srv;
	char why[256];
	int rc, given_fd;

	block_signals(&st.set);
	/* So that every error, the command line's too, gets a priority:
	 * it only looks at fd 2 (fstat), and a closed one is no journal. */
	pe_log_detect_journal();
	/* Started with stderr closed, the stop pipe made below would take its
	 * number, and the first log line would stop the daemon. */
	if (pe_stdfds_guard("poolechod") != 0)
		return 1;
	/* A client that resets while we write must cost an EPIPE, not the
	 * process; so must `poolechod --help | true`. And a log file that meets
	 * a file-size limit (ulimit -f, LimitFSIZE=) an EFBIG: its lines are
	 * dropped and counted, as when standard error takes none. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	if (getpid() == 1 && !pe_signal_ignored(SIGQUIT))
		signal(SIGQUIT, quit_as_init);
	rc = daemon_cli_parse(argc, argv, &opt);
	if (rc == 0) { /* --help or --version */
		/* No signal thread will come to take a stop signal held
		 * since start-up: into a full output whose reader stalls,
		 * the text waits for room, and SIGTERM (timeout(1), a
		 * supervisor) must end that wait as it ends any program's.
		 * One ignored at start stays ignored. */
		sigset_t stops;

		sigemptyset(&stops);
		sigaddset(&stops, SIGINT);
		sigaddset(&stops, SIGTERM);
		sigaddset(&stops, SIGHUP);
		pthread_sigmask(SIG_UNBLOCK, &stops, NULL);
		return pe_stdout_print_checked("poolechod", show_help_or_version, &opt);
	}
	if (rc > 0)
		return rc;
	pe_log_set_program("poolechod");
	pe_log_set_level(opt.log_level);
	/* systemd's socket activation: a .socket unit listens for us. Before
	 * anything opens a descriptor, which would take the number 3 of a
	 * socket that was not passed. */
	rc = pe_activation_socket(&given_fd, why, sizeof why);
	if (rc == 0 && pe_activation_inetd(why, sizeof why) < 0) {
		pe_log(PE_LOG_ERROR, "%s", why);
		pe_activation_inetd_tell_waiting(why);
		return 1;
	}
	if (rc < 0) {
		pe_log(PE_LOG_ERROR, "%s", why);
		return 1;
	}
	if (rc > 0 && (rc = daemon_cli_check_socket_given(&opt)) != 0)
		return rc;
	rc = pe_log_never_block();
	if (rc < 0)
		pe_log(PE_LOG_WARN, "cannot examine standard error (fstat: %s): a reader "
		       "that stops reading will hold the server up", strerror(-rc));
	opt.server.log = server_log;
	opt.server.log_level = opt.log_level;

	raise_fd_limit(&opt.server);
	warn_memory_limit(&opt.server);
	rc = given_fd >= 0 ? pe_server_create_on_socket(&srv, &opt.server, given_fd) :
	     pe_server_create(&srv, &opt.server);
	if (rc < 0) {
		log_create_failure(&opt.server, rc);
		return 1;
	}
	/* The manager's socket before the check that a descriptor is left for
	 * a client, and before clients can take the last: READY=1 is sent once
	 * the server already serves (see send_ready). */
	(void)pe_sd_notify_open(&st.notifier);
	if (!descriptor_left()) {
		pe_sd_notify_close(&st.notifier);
		pe_server_destroy(srv);
		return 1;
	}
	warn_options_overruled(&opt);
	/* Under systemd's Type=notify the start job ends with READY=1, and the
	 * units ordered after ours start now: the socket listens, and only a
	 * start that got this far succeeded. The signal thread sends it before
	 * it takes a signal, so that STOPPING=1, for a stop signal already
	 * pending, comes after; the line is logged here, before any of the
	 * server's. */
	warn_ipv6_off(srv, &opt, given_fd);
	log_listening(srv, &opt, given_fd >= 0 ? 0 : backlog_in_effect(opt.server.backlog),
	              given_fd, st.ready);

	st.server = srv;
	st.opt = &opt;
	st.stats_due_ns = pe_now_ns() + (int64_t)opt.stats_interval_ms * 1000000;
	atomic_init(&st.done, 0);
	rc = start_signal_thread(&st, opt.server.stack_size);
	if (rc != 0) {
		log_signal_thread_failure(&opt.server, rc);
		pe_sd_notify_close(&st.notifier);
		pe_server_destroy(srv);
		return 1;
	}

	rc = pe_server_run(srv);

	atomic_store(&st.done, 1);
	pthread_kill(st.thread, SIGUSR2);
	pthread_join(st.thread, NULL);
	pe_sd_notify_close(&st.notifier);
	/* No thread but this one logs now, and no client waits for it: the
	 * last lines may wait a moment for a reader that fell behind (a pipe
	 * full under -v), rather than be lost with the count of those
	 * dropped before them. */
	pe_log_wait_for_reader(STOP_LOG_MS);
	log_stats(srv, "stopped: ");
	pe_server_destroy(srv);
	if (rc < 0) {
		/* The listener said why, as it gave up: the "stopped:" line stays
		 * the last, as for any stop. */
		if (!atomic_load(&server_errors_logged))
			pe_log(PE_LOG_ERROR, "accepting failed: %s", strerror(-rc));
		return 1;
	}
	return 0;
}
