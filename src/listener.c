/*
 * listener.c -- the accept loop. It accepts on the listening socket (which
 * server.c opens, and closes once this loop returns), hands each accepted
 * socket to the queue, and applies the overflow policy when the queue is
 * full. The listening socket is non-blocking: under load accept4()
 * succeeds straight away, and poll(2) is only entered when there is nothing
 * to accept, watching the stop pipe too.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "errlimit.h"
#include "listener.h"
#include "monotonic.h"
#include "net.h"

/* How long to stay away from accept(2) after running out of descriptors or
 * memory: the kernel backlog keeps clients waiting meanwhile, and a worker
 * finishing frees a descriptor. */
#define BACKOFF_MS 100
/* A recurring accept error is logged at most this often: ten seconds. A
 * variable, not a constant, only so that a test can shorten the wait for a
 * count falling due (each Criterion test is a process of its own); hidden
 * like the rest of libpecore, never set by the library. */
int64_t pe_listener_log_interval_ms = 10000;

/* Refusals over the per-source limit, or with the queue full under
 * PE_OVERFLOW_REJECT, each kind apart: a warning names a refused client at
 * most every pe_listener_log_interval_ms, and those not named are counted, in
 * the next warning or in a line of their own when the interval is over. */
struct source_refusals {
	int named;               /* a warning has named a client */
	int64_t named_at;        /* when */
	unsigned long unsaid;    /* refused since, neither named nor counted */
};

/* What the accept loop holds back from its log, to report in time. */
struct accept_log {
	struct pe_errlimit errors;
	struct source_refusals refusals;
	struct source_refusals queue_full;
};

/* How many accept errors were not logged, named by their own error. */
static void log_held(pe_server *srv, struct pe_errlimit_held held, const char *then)
{
	if (held.count)
		pe_server_logf(srv, PE_LOG_WARN, "accept: %s: %lu more since the last report%s",
		               strerror(held.err), held.count, then);
}

/* When the count of refusals held back is due: -1 when none is held. */
static int64_t refusals_due_at(const struct source_refusals *r)
{
	return r->unsaid ? r->named_at + pe_listener_log_interval_ms : -1;
}

/* Every count of accept errors that is due (or, at the end, every count
 * left), THEN ending their lines. */
static void log_errors_due(pe_server *srv, struct accept_log *lg, int at_end, const char *then)
{
	struct pe_errlimit_held held;
	int64_t now;

	if (!pe_errlimit_holding(&lg->errors))
		return;
	now = pe_now_ms();
	while ((held = at_end ? pe_errlimit_flush(&lg->errors)
	                      : pe_errlimit_due(&lg->errors, now)).count)
		log_held(srv, held, then);
}

/* The count of R's refusals, WHY, if it is due. */
static void log_refusals_due(pe_server *srv, struct source_refusals *r, int at_end,
                             const char *why)
{
	int64_t due = refusals_due_at(r);

	if (due >= 0 && (at_end || pe_now_ms() >= due)) {
		pe_server_logf(srv, PE_LOG_WARN, "rejected %lu more connection(s) %s since the "
		               "last report", r->unsaid, why);
		r->unsaid = 0;
	}
}

/* Those, and the counts of refusals if they are due: a burst of refusals then
 * quiet is not left unsaid. The next refusal is named, as the count names
 * no client. Not called as a client is accepted, so that a steady flood's
 * count rides on the warning that names its next refusal. */
static void log_due(pe_server *srv, struct accept_log *lg, int at_end)
{
	log_errors_due(srv, lg, at_end, "");
	log_refusals_due(srv, &lg->refusals, at_end, "over the per-source limit");
	log_refusals_due(srv, &lg->queue_full, at_end, "with the queue full");
}

/* How long the accept loop may sleep before a held count is due: -1 (for
 * ever) when nothing is held back. */
static int held_timeout_ms(const struct accept_log *lg)
{
	int64_t due = pe_errlimit_due_at(&lg->errors), left;
	int64_t refusals[2] = {refusals_due_at(&lg->refusals), refusals_due_at(&lg->queue_full)};

	for (int i = 0; i < 2; i++)
		if (due < 0 || (refusals[i] >= 0 && refusals[i] < due))
			due = refusals[i];
	if (due < 0)
		return -1;
	left = due - pe_now_ms();
	return left < 0 ? 0 : (int)left;
}

/* Log an accept error, but the same error at most every pe_listener_log_interval_ms. */
static void log_accept_error(pe_server *srv, struct accept_log *lg, int err)
{
	struct pe_errlimit_held held;

	pe_counter_add(&srv->listener.accept_errors, 1);
	if (!pe_errlimit_note(&lg->errors, err, pe_now_ms(), &held))
		return;
	if (held.count && held.err == err) {
		pe_server_logf(srv, PE_LOG_WARN, "accept: %s (and %lu more since the last report)",
		               strerror(err), held.count);
	} else {
		log_held(srv, held, "");
		pe_server_logf(srv, PE_LOG_WARN, "accept: %s", strerror(err));
	}
	if (err == EMFILE || err == ENFILE)
		pe_server_logf(srv, PE_LOG_WARN,
		               "out of file descriptors: pausing accept for %d ms at a time "
		               "(raise the descriptor limit: 'ulimit -n', or LimitNOFILE= under "
		               "systemd; or use fewer workers or a shorter queue)", BACKOFF_MS);
}

/* Wait until a connection is pending (if WATCH_LISTENER), a stop is
 * requested, or TIMEOUT_MS passes. Returns 1 to stop, 0 otherwise. */
static int wait_for(pe_server *srv, int watch_listener, int timeout_ms)
{
	struct pollfd pfd[2] = {
		{.fd = srv->wake[0], .events = POLLIN},
		{.fd = srv->listen_fd, .events = POLLIN},
	};

	if (poll(pfd, watch_listener ? 2 : 1, timeout_ms) < 0 && errno != EINTR) {
		/* ENOMEM: back off rather than spin through accept4 and poll. */
		poll(pfd, 1, BACKOFF_MS);
		return atomic_load(&srv->stop_requested);
	}
	return pfd[0].revents != 0 || atomic_load(&srv->stop_requested);
}

/* Accept into ACC, with the peer's address: always, though a queue item
 * below -v keeps only the fd, as a client refused here is named from it
 * and one that reset in the backlog has none left for getpeername(2). */
static int accept_one(int listen_fd, struct pe_accepted *acc)
{
	struct sockaddr *peer = &acc->peer.sa;
	socklen_t *peer_len = &acc->peer_len;

	acc->peer_len = sizeof acc->peer;
#ifdef HAVE_ACCEPT4
	return acc->fd = accept4(listen_fd, peer, peer_len, SOCK_CLOEXEC);
#else
	int fd = acc->fd = accept(listen_fd, peer, peer_len), rc;

	if (fd < 0)
		return fd;
	/* BSDs let accepted sockets inherit O_NONBLOCK; workers need blocking ones. */
	rc = fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ? -errno : pe_net_set_nonblocking(fd, 0);
	if (rc < 0) {
		/* A nonblocking socket would end its echo at the first EAGAIN:
		 * drop it, and let the caller log why. */
		close(fd);
		errno = -rc;
		return acc->fd = -1;
	}
	return fd;
#endif
}

/* The level to name a refusal of R's kind at: a warning at most every
 * pe_listener_log_interval_ms, at -v too, where the refusals between are each
 * said at debug: "journalctl -p warning" must show a client refused
 * whatever the level. Below -v those between are counted, and the next
 * warning says how many in MORE. */
static enum pe_log_level refusal_level(pe_server *srv, struct source_refusals *r,
                                       char *more, size_t size)
{
	int64_t now;

	if (!pe_server_logs(srv, PE_LOG_WARN))
		return PE_LOG_DEBUG;
	now = pe_now_ms();
	if (!r->named || now - r->named_at >= pe_listener_log_interval_ms) {
		if (r->unsaid)
			snprintf(more, size, " (and %lu more since the last report)", r->unsaid);
		r->named = 1;
		r->named_at = now;
		r->unsaid = 0;
		return PE_LOG_WARN;
	}
	if (!pe_server_logs(srv, PE_LOG_DEBUG))
		r->unsaid++;
	return PE_LOG_DEBUG;
}

/* Close ACC, refused by the per-source limit, its address holding HELD
 * connections. Said as in struct source_refusals, and at -v each one: a
 * client that keeps trying must not flood the log, nor go unnoticed. */
static void refuse_over_source_limit(pe_server *srv, struct source_refusals *r,
                                     const struct pe_accepted *acc, unsigned held)
{
	char peer[PE_NET_ADDRLEN], more[64] = "";
	enum pe_log_level level;

	pe_counter_add_release(&srv->listener.rejected, 1);
	pe_counter_add_release(&srv->listener.source_limited, 1);
	level = refusal_level(srv, r, more, sizeof more);
	pe_server_hold(srv, acc->fd);
	if (pe_server_logs(srv, level)) {
		pe_net_format(&acc->peer.sa, acc->peer_len, peer);
		pe_server_logf(srv, level, "rejected %s: %u connection(s) from its address "
		               "already, the per-source limit%s", peer, held, more);
	}
	pe_server_close_held(srv, acc->fd);
}

/* Close ACC, refused for the full queue under PE_OVERFLOW_REJECT. Said as
 * refusals over the per-source limit are: clients turned away for want of
 * capacity must not go unnoticed at the default level. */
static void refuse_queue_full(pe_server *srv, struct source_refusals *r,
                              const struct pe_accepted *acc)
{
	char peer[PE_NET_ADDRLEN], more[64] = "";
	enum pe_log_level level = refusal_level(srv, r, more, sizeof more);

	pe_server_hold(srv, acc->fd);
	if (pe_server_logs(srv, level)) {
		pe_net_format(&acc->peer.sa, acc->peer_len, peer);
		pe_server_logf(srv, level, "rejected %s: the queue is full%s", peer, more);
	}
	pe_server_close_held(srv, acc->fd);
	pe_counter_add_release(&srv->listener.rejected, 1);
}

/* Hand ACC to the workers, or apply the per-source limit or the overflow
 * policy. 1 to stop, else 0. */
static int hand_off(pe_server *srv, struct accept_log *lg, const struct pe_accepted *acc)
{
	int fd = acc->fd, rc;
	unsigned held;

	/* Only -EBUSY: the per-source table has a place for every connection
	 * the workers and the queue hold and the one being accepted, never
	 * -ENOSPC (see pe_server_create). */
	if (pe_server_hand_off_begin(srv, acc, &held) < 0) {
		/* An address holding every worker and queue slot leaves the
		 * queue full (only PE_OVERFLOW_REJECT accepts then): that is why
		 * it is refused, not a limit of -w plus -q or more, which limits
		 * nothing (as poolechod warns at start). */
		if (held >= srv->cfg.workers + srv->cfg.queue_capacity)
			refuse_queue_full(srv, &lg->queue_full, acc);
		else
			refuse_over_source_limit(srv, &lg->refusals, acc, held);
		return 0;
	}
	rc = pe_queue_try_push(srv->queue, acc);
	if (rc == 0)
		return 0;
	pe_server_hand_off_cancel(srv, acc);
	/* Only PE_OVERFLOW_REJECT sees EAGAIN: WAIT made room before accepting. */
	if (rc == -EAGAIN) {
		refuse_queue_full(srv, &lg->queue_full, acc);
		return 0;
	}
	/* -ESHUTDOWN: a stop closed the queue after this client was accepted. */
	pe_server_hold(srv, fd);
	pe_server_log_dropped(srv, acc);
	pe_server_close_held(srv, fd);
	pe_counter_add_release(&srv->listener.dropped, 1);
	return 1;
}

/* Wait policy: accept nothing we could not queue, so waiting clients stay
 * in the kernel's backlog, not in our hands. Counts of accept errors held
 * back fall due meanwhile, and are logged on time. 0, or -ESHUTDOWN. */
static int wait_for_space(pe_server *srv, struct accept_log *lg)
{
	int rc;

	while ((rc = pe_queue_wait_space_for(srv->queue, held_timeout_ms(lg))) == -ETIMEDOUT)
		log_due(srv, lg, 0);
	return rc;
}

static int accept_loop(pe_server *srv, struct accept_log *lg)
{
	/* Linux's accept(2) fails with EMFILE before it looks for a client: after
	 * a back-off, try again only once one is waiting, or every back-off
	 * with nobody there would count one more accept error. */
	bool backed_off = false;
	unsigned failed_in_a_row = 0;

	while (!atomic_load(&srv->stop_requested)) {
		struct pe_accepted acc;
		int fd;

		if (srv->cfg.overflow == PE_OVERFLOW_WAIT && wait_for_space(srv, lg) < 0)
			break;
		if (backed_off) {
			struct pollfd pfd = {.fd = srv->listen_fd, .events = POLLIN};

			if (poll(&pfd, 1, 0) == 0) {
				if (wait_for(srv, 1, held_timeout_ms(lg)))
					return 0;
				log_due(srv, lg, 0);
				continue;
			}
		}

		fd = accept_one(srv->listen_fd, &acc);
		if (fd < 0) {
			switch (errno) {
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				if (wait_for(srv, 1, held_timeout_ms(lg)))
					return 0;
				log_due(srv, lg, 0);
				continue;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;  /* the client went away before we took it */
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				log_accept_error(srv, lg, errno);
				backed_off = true;
				/* Not the listener: it stays readable while
				 * clients wait, and this would spin. */
				if (wait_for(srv, 0, BACKOFF_MS))
					return 0;
				log_due(srv, lg, 0);   /* other errors' counts too */
				continue;
			case EBADF:
			case EINVAL:
			case ENOTSOCK:
			case EFAULT: {
				int err = errno; /* the log sink may change errno */
				pe_server_logf(srv, PE_LOG_ERROR, "accept: %s: giving up", strerror(err));
				return -err;
			}
			default:
				/* Linux passes on pending network errors (ENETDOWN,
				 * EHOSTUNREACH, EOPNOTSUPP...): accept(2) says retry.
				 * But an error that comes back at once, with no client
				 * taken between (a security module refusing accept(2):
				 * EACCES, EPERM, before it looks for a client), would
				 * spin: pause as for EMFILE from the second one on. */
				log_accept_error(srv, lg, errno);
				if (++failed_in_a_row < 2)
					continue;
				if (wait_for(srv, 0, BACKOFF_MS))
					return 0;
				log_due(srv, lg, 0);
				continue;
			}
		}
		backed_off = false;
		failed_in_a_row = 0;
		pe_counter_add(&srv->listener.accepted, 1);
		/* A count said here is a warning, with the client in hand: a
		 * child forked during it must find the client to close. Most
		 * accepts hold no count, and store nothing. */
		if (pe_errlimit_holding(&lg->errors)) {
			pe_server_hold(srv, fd);
			log_errors_due(srv, lg, 0, "; accepting again");
			pe_server_hold(srv, -1);
		}
		if (srv->backlog_without_options) {
			srv->backlog_without_options--;
			pe_server_set_connection_options(srv, fd);
		} else if (!srv->options_inherited) {
			pe_net_set_echo_options(fd);
		}
		if (hand_off(srv, lg, &acc))
			break;
	}
	return 0;
}

int pe_listener_run(pe_server *srv)
{
	struct accept_log lg = {.refusals = {0}, .queue_full = {0}};
	int rc;

	pe_errlimit_init(&lg.errors, pe_listener_log_interval_ms);
	rc = accept_loop(srv, &lg);
	log_due(srv, &lg, 1);
	return rc;
}
