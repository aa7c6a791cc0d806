/*
 * server.c -- the server's life cycle: create (listen, queue, pool), run
 * (the accept loop, then the graceful stop), and the worker's handler that
 * echoes one connection at a time.
 *
 * A stop closes the queue (waking everyone), lets outstanding connections
 * run until they end or the grace deadline passes, then shuts down the
 * sockets still open -- shutdown(2) wakes a worker blocked in read -- and
 * joins every worker.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cloexec_pipe.h"
#include "cpus.h"
#include "echo.h"
#include "listener.h"
#include "log.h"
#include "monotonic.h"
#include "net.h"
#include "parse.h"
#include "quiet_thread.h"
#include "server_internal.h"

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

/* The server whose worker or run thread this is, if any: a wait called
 * there (from the log callback) would wait for its own thread. */
static _Thread_local const pe_server *own_thread_of;

void pe_server_config_init(struct pe_server_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->bind_address = NULL;
	cfg->port = PE_DEFAULT_PORT;
	cfg->workers = PE_DEFAULT_WORKERS;
	cfg->queue_capacity = PE_DEFAULT_QUEUE;
	cfg->backlog = PE_DEFAULT_BACKLOG;
	cfg->overflow = PE_OVERFLOW_WAIT;
	cfg->per_source = 0;
	cfg->idle_timeout_ms = PE_DEFAULT_IDLE_TIMEOUT_MS;
	cfg->grace_ms = PE_DEFAULT_GRACE_MS;
	cfg->buffer_size = PE_DEFAULT_BUFFER_SIZE;
	cfg->stack_size = PE_DEFAULT_STACK_SIZE;
	cfg->busy_poll_us = PE_DEFAULT_BUSY_POLL_US;
	cfg->splice = PE_SPLICE_AUTO;
	cfg->batch_scheduling = 1;
	cfg->log_level = PE_LOG_INFO;
}

/* Format one event for CFG's log callback, if it takes LEVEL. */
static void config_vlogf(const struct pe_server_config *cfg, enum pe_log_level level,
                         const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void config_vlogf(const struct pe_server_config *cfg, enum pe_log_level level,
                         const char *fmt, va_list ap)
{
	char msg[512];

	if (!cfg->log || level > cfg->log_level)
		return;
	/* The callback is promised one line, and a cut one says so: its end
	 * is not taken for the end of a value. */
	pe_log_vformat(msg, sizeof msg, fmt, ap);
	cfg->log(cfg->log_ctx, level, msg);
}

void pe_server_logf(pe_server *srv, enum pe_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_vlogf(&srv->cfg, level, fmt, ap);
	va_end(ap);
}

int pe_server_hand_off_begin(pe_server *srv, const struct pe_accepted *acc, unsigned *held)
{
	int rc = 0;

	*held = 0;
	pthread_mutex_lock(&srv->lock);
	if (srv->cfg.per_source)
		rc = pe_sources_take(&srv->sources, &acc->peer.sa, acc->peer_len, held);
	if (rc == 0)
		srv->outstanding++;
	pthread_mutex_unlock(&srv->lock);
	return rc;
}

/* ACC is finished (or dropped unserved): wake a stop that waits. */
static void finish_locked(pe_server *srv, const struct pe_accepted *acc)
{
	if (srv->cfg.per_source)
		pe_sources_release(&srv->sources, &acc->peer.sa, acc->peer_len);
	srv->outstanding--;
	if (srv->stopping)
		pthread_cond_broadcast(&srv->drained);
}

void pe_server_hand_off_cancel(pe_server *srv, const struct pe_accepted *acc)
{
	pthread_mutex_lock(&srv->lock);
	finish_locked(srv, acc);
	pthread_mutex_unlock(&srv->lock);
}

/* STOPPED: a hard stop had shut the connection down before its worker let
 * go of it (its shutdown(2) looks like the client's close). */
static void log_close(pe_server *srv, const char *peer, enum pe_echo_end end, int err,
                      int stopped)
{
	if (stopped)
		pe_server_logf(srv, PE_LOG_DEBUG, "closed %s: the server stopped", peer);
	else if (end == PE_ECHO_EOF)
		pe_server_logf(srv, PE_LOG_DEBUG, "closed %s: closed by client", peer);
	else if (end == PE_ECHO_TIMEOUT)
		pe_server_logf(srv, PE_LOG_DEBUG, "closed %s: idle timeout: nothing received", peer);
	else if (end == PE_ECHO_UNREAD)   /* however much the client was sending */
		pe_server_logf(srv, PE_LOG_DEBUG, "closed %s: idle timeout: echo not read", peer);
	else
		pe_server_logf(srv, PE_LOG_DEBUG, "closed %s: error: %s", peer,
		               err ? strerror(err) : "unknown");
}

/* The peer of ACC for the -v log: as accept(2) gave it (a client that
 * reset while queued has none left for getpeername), else asked of ACC's fd. */
static void accepted_peer(const pe_server *srv, const struct pe_accepted *acc,
                          char peer[PE_NET_ADDRLEN])
{
	if (srv->item_size == sizeof *acc && acc->peer_len > 0)
		pe_net_format(&acc->peer.sa, acc->peer_len, peer);
	else
		pe_net_peer_name(acc->fd, peer);
}

/* A connection the stop closes before any worker took it up: said at -v
 * like every other close, and counted as "dropped" in the stats. Call it
 * while ACC's fd is still open. */
void pe_server_log_dropped(pe_server *srv, const struct pe_accepted *acc)
{
	char peer[PE_NET_ADDRLEN];

	if (!pe_server_logs(srv, PE_LOG_DEBUG))
		return;
	accepted_peer(srv, acc, peer);
	pe_server_logf(srv, PE_LOG_DEBUG, "closed %s: dropped unserved, the server stopped", peer);
}

/* Relaxed: fork(2) copies the memory at one instant, and one thread at a
 * time writes the field (see run_held_fd). */
void pe_server_hold(pe_server *srv, int fd)
{
	atomic_store_explicit(&srv->run_held_fd, fd, memory_order_relaxed);
}

void pe_server_close_held(pe_server *srv, int fd)
{
	atomic_store_explicit(&srv->run_held_fd, -1, memory_order_relaxed);
	close(fd);
}

/* The idle timeout on FD: whole for reads, a slice for writes (echo.h).
 * With none, a silent client is kept for good, and so was one whose host
 * went away with nothing in flight (pulled cable, destroyed VM), holding a
 * worker forever: TCP keepalive finds it (a live client's system answers
 * the probes) and the blocked recv(2) fails with ETIMEDOUT. */
static int set_idle_timeout(const pe_server *srv, int fd)
{
	long long idle_us = srv->echo_policy.idle_us;

	if (idle_us == 0)
		return pe_net_set_keepalive(fd, PE_KEEPALIVE_IDLE_S, PE_KEEPALIVE_INTERVAL_S,
		                            PE_KEEPALIVE_COUNT);
	return pe_net_set_timeouts_us(fd, (unsigned long long)idle_us,
	                              (unsigned long long)pe_echo_send_slice_us(idle_us));
}

void pe_server_set_connection_options(const pe_server *srv, int fd)
{
	set_idle_timeout(srv, fd);
	pe_net_set_echo_options(fd);
}

unsigned pe_server_busy_poll_us(const struct pe_server_config *cfg)
{
	long long slice = pe_echo_send_slice_us(cfg->idle_timeout_ms * 1000LL);

	if (cfg->idle_timeout_ms && cfg->busy_poll_us > slice)
		return (unsigned)slice;
	return cfg->busy_poll_us;
}

/* The pool's handler: echo one accepted socket until it ends. */
static void serve_connection(void *ctx, unsigned worker, void *item)
{
	pe_server *srv = ctx;
	struct pe_worker_slot *slot = &srv->slots[worker];
	/* Copied out: without the connection log or per_source an item is
	 * only the int (queue_item_size), shorter than ACC. */
	struct pe_accepted acc;
	int fd, err = 0;
	int unserved;   /* a hard stop came first: closed without an echo */
	enum pe_echo_end end = PE_ECHO_ERROR;
	int logs_connections = pe_server_logs(srv, PE_LOG_DEBUG);
	char peer[PE_NET_ADDRLEN];

	own_thread_of = srv;
	memcpy(&acc, item, srv->item_size);
	fd = acc.fd;
	pthread_mutex_lock(&srv->lock);
	unserved = srv->hard_stop;
	if (!unserved)
		slot->fd = fd;   /* now a hard stop can shut it down */
	/* Until the close below, whatever the slot's fd says: a log line
	 * written before it may take long, and a child forked meanwhile
	 * must still find the connection to close its copy. */
	slot->held_fd = fd;
	pthread_mutex_unlock(&srv->lock);

	if (!unserved) {
		if (logs_connections) {
			accepted_peer(srv, &acc, peer);
			pe_server_logf(srv, PE_LOG_DEBUG, "connection from %s", peer);
		}
		if (!srv->options_inherited)
			set_idle_timeout(srv, fd);
		atomic_fetch_add_explicit(&srv->active, 1, memory_order_relaxed);
		end = pe_echo_serve(fd, &slot->echo, &srv->echo_policy, &err);
		atomic_fetch_sub_explicit(&srv->active, 1, memory_order_relaxed);
		/* Logged, the slot lets go of the fd in the same hold of the
		 * lock that reads hard_stop: a hard stop either came first,
		 * shut it down and counts it among those it closed, and the log
		 * says so, or comes after and leaves it alone, and the log gives
		 * how it really ended. Read apart, a stop between the two would
		 * count a connection the log says the client closed. Unlogged,
		 * there is nothing to agree with: no extra hold of the lock. */
		if (logs_connections) {
			int stopped; /* a hard stop shut it down mid-echo */

			pthread_mutex_lock(&srv->lock);
			stopped = srv->hard_stop;
			slot->fd = -1;
			pthread_mutex_unlock(&srv->lock);
			log_close(srv, peer, end, err, stopped);
		}
	} else {
		pe_server_log_dropped(srv, &acc);
	}
	/* Counted under the lock with the slot's fd cleared (in this hold, or
	 * in the one above when logged), which a stats line reads under it
	 * too: the connection is then active or counted, never both (between
	 * the two holds, neither: one of those moving places), and never more
	 * timeouts than connections served. */
	pthread_mutex_lock(&srv->lock);
	pe_counter_add(unserved ? &slot->counters.dropped : &slot->counters.served, 1);
	if (!unserved && (end == PE_ECHO_TIMEOUT || end == PE_ECHO_UNREAD))
		pe_counter_add(&slot->counters.timeouts, 1);
	slot->fd = -1;       /* before close(), so a hard stop never shuts down a reused number */
	slot->held_fd = -1;
	finish_locked(srv, &acc);
	pthread_mutex_unlock(&srv->lock);
	close(fd);
}

/* Log which setting of CFG is bad, its value and what it may be; -EINVAL.
 * -EINVAL alone would leave the caller to guess which of a dozen fields. */
static int bad_setting(const struct pe_server_config *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad_setting(const struct pe_server_config *cfg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_vlogf(cfg, PE_LOG_ERROR, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* The bytes each queued connection takes in the queue: its socket, and at
 * the -v log level or with per_source also the peer's address (struct
 * pe_accepted). */
static size_t queue_item_size(const struct pe_server_config *cfg)
{
	if (cfg->per_source || (cfg->log && cfg->log_level >= PE_LOG_DEBUG))
		return sizeof(struct pe_accepted);
	return sizeof(int);
}

/* CFG's settings, but for where to listen when GIVEN (a socket the caller
 * passes): bind_address, port and backlog are not used then. */
static int check_config(const struct pe_server_config *cfg, int given)
{
	char hint[256], shown[PE_PARSE_SHOWN_MAX];
	const char *expected;

	if (!cfg)
		return -EINVAL;
	/* First, and said whatever the bad level would filter: every later
	 * check's error goes through it. */
	if ((unsigned)cfg->log_level > PE_LOG_DEBUG) {
		struct pe_server_config said = *cfg;

		said.log_level = PE_LOG_ERROR;
		return bad_setting(&said, "pe_server_config.log_level is %d: expected PE_LOG_ERROR, "
		                   "PE_LOG_WARN, PE_LOG_INFO or PE_LOG_DEBUG", (int)cfg->log_level);
	}
	/* "[::1]" or "host:port" would only fail to resolve, after asking DNS. */
	if (!given && cfg->bind_address && (expected = pe_parse_host_misform(cfg->bind_address,
	                                      "in pe_server_config.port", hint, sizeof hint)))
		return bad_setting(cfg, "pe_server_config.bind_address is '%s': expected %s",
		                   pe_parse_shown(cfg->bind_address, strlen(cfg->bind_address), shown,
		                                  sizeof shown), expected);
	if (cfg->workers < 1 || cfg->workers > PE_MAX_WORKERS)
		return bad_setting(cfg, "pe_server_config.workers is %u: expected 1 to %u",
		                   cfg->workers, PE_MAX_WORKERS);
	if (cfg->queue_capacity < 1)
		return bad_setting(cfg, "pe_server_config.queue_capacity is 0: expected 1 or more");
	/* A queue of more bytes than a size_t holds cannot be made at all. */
	if (cfg->queue_capacity > SIZE_MAX / queue_item_size(cfg))
		return bad_setting(cfg, "pe_server_config.queue_capacity is %zu: expected 1 to %zu",
		                   cfg->queue_capacity, SIZE_MAX / queue_item_size(cfg));
	if (!given && cfg->backlog < 1)
		return bad_setting(cfg, "pe_server_config.backlog is %d: expected 1 or more",
		                   cfg->backlog);
	if (!given && cfg->port > 65535)
		return bad_setting(cfg, "pe_server_config.port is %u: expected 0 to 65535",
		                   cfg->port);
	if (cfg->buffer_size < 1)
		return bad_setting(cfg, "pe_server_config.buffer_size is 0: expected 1 or more");
	if (cfg->overflow != PE_OVERFLOW_WAIT && cfg->overflow != PE_OVERFLOW_REJECT)
		return bad_setting(cfg, "pe_server_config.overflow is %d: expected "
		                   "PE_OVERFLOW_WAIT or PE_OVERFLOW_REJECT", (int)cfg->overflow);
	if (cfg->splice != PE_SPLICE_NEVER && cfg->splice != PE_SPLICE_ALWAYS &&
	    cfg->splice != PE_SPLICE_AUTO)
		return bad_setting(cfg, "pe_server_config.splice is %d: expected "
		                   "PE_SPLICE_NEVER, PE_SPLICE_ALWAYS or PE_SPLICE_AUTO",
		                   (int)cfg->splice);
	return 0;
}

/* Close the server's descriptors and free its memory, all but the queue,
 * the lock, the condition variable and SRV itself. */
static void release_resources(pe_server *srv)
{
	if (srv->slots)
		for (unsigned i = 0; i < srv->cfg.workers; i++)
			pe_echo_worker_free(&srv->slots[i].echo);
	free(srv->slots);
	pe_sources_free(&srv->sources);
	if (srv->buffers)
		munmap(srv->buffers, srv->buffers_len);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->wake[0] >= 0)
		close(srv->wake[0]);
	if (srv->wake[1] >= 0)
		close(srv->wake[1]);
	free(srv->bind_address);
}

static void server_free(pe_server *srv)
{
	release_resources(srv);
	pe_queue_destroy(srv->queue);
	pthread_cond_destroy(&srv->drained);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

/* Every worker's buffer in one mapping, reserved at start: a worker's first
 * connection then costs no malloc(3) that 10,000 workers serialise on a
 * few arena locks (about 30% of the server's CPU time while 10,000 clients
 * connected at once). Only the pages reads reach become resident. */
static int reserve_buffers(pe_server *srv)
{
	size_t stride = (srv->cfg.buffer_size + 63) & ~(size_t)63; /* a cache line apart */
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;

	if (stride < srv->cfg.buffer_size || stride > SIZE_MAX / srv->cfg.workers)
		return -ENOMEM;
#ifdef MAP_NORESERVE
	flags |= MAP_NORESERVE;
#endif
	srv->buffers_len = stride * srv->cfg.workers;
	srv->buffers = mmap(NULL, srv->buffers_len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (srv->buffers == MAP_FAILED) {
		srv->buffers = NULL;
		return -ENOMEM;
	}
#ifdef MADV_NOHUGEPAGE
	/* A huge page would make 2 MiB resident for the first byte a worker reads. */
	madvise(srv->buffers, srv->buffers_len, MADV_NOHUGEPAGE);
#endif
	for (unsigned i = 0; i < srv->cfg.workers; i++) {
		srv->slots[i].echo.buf = srv->buffers + (size_t)i * stride;
		srv->slots[i].echo.size = srv->cfg.buffer_size;
	}
	return 0;
}

/* Log that CALL failed on the listening socket; -errno. */
static int listener_failed(pe_server *srv, const char *call)
{
	int e = errno;

	pe_server_logf(srv, PE_LOG_ERROR, "cannot set up the listening socket: %s: %s", call,
	               strerror(e));
	return -e;
}

/* Log why descriptor FD cannot be a server's listening socket; RC. */
static int not_listening(pe_server *srv, int fd, int rc, const char *why)
{
	pe_server_logf(srv, PE_LOG_ERROR, "descriptor %d is not a listening TCP socket: %s", fd,
	               why);
	return rc;
}

/* Whether FD, given by the caller, is what the accept loop needs: a TCP
 * socket of IPv4 or IPv6, listening. 0 or a negative errno, logged. */
static int check_given_socket(pe_server *srv, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(int), addr_len = sizeof ss;
	int type, value;

	if (fd < 0)
		return not_listening(srv, fd, -EBADF, "expected a descriptor, 0 or more");
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return not_listening(srv, fd, -errno, strerror(errno));
	if (type != SOCK_STREAM)
		return not_listening(srv, fd, -EINVAL, type == SOCK_DGRAM ? "it is a datagram "
		                     "(UDP) socket" : "it is not a stream socket");
	if (getsockname(fd, (struct sockaddr *)&ss, &addr_len) < 0)
		return not_listening(srv, fd, -errno, strerror(errno));
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return not_listening(srv, fd, -EAFNOSUPPORT, ss.ss_family == AF_UNIX ?
		                     "it is a Unix-domain socket, not IPv4 or IPv6" :
		                     "its address family is not IPv4 or IPv6");
#ifdef SO_PROTOCOL
	len = sizeof value;
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &value, &len) == 0 && value != IPPROTO_TCP) {
		char why[64];

		/* 262 is IPPROTO_MPTCP, which older headers lack. */
		snprintf(why, sizeof why, "its protocol is %s, not TCP", value == 262 ? "MPTCP" :
		         value == IPPROTO_SCTP ? "SCTP" : "another stream protocol");
		return not_listening(srv, fd, -EPROTONOSUPPORT, why);
	}
#endif
#ifdef SO_ACCEPTCONN
	len = sizeof value;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) == 0 && !value)
		return not_listening(srv, fd, -EINVAL, "listen(2) was not called on it");
#endif
	return 0;
}

#ifdef __linux__
/* Set on the listening socket FD the options its connections inherit, and
 * say which of those accepted next do not have them: Linux copies a
 * listener's options to a connection as its handshake ends, so those
 * already in the backlog (a client that came before a service manager
 * started us, or between our listen(2) and now) had the options of before.
 * They are counted after the options are set; but a handshake that copied
 * them just before, on another CPU, may join the queue just after the
 * count. A CPU completes one handshake at a time (softirqs off), so there
 * are fewer such stragglers than CPUs, and they come next in the queue
 * unless their CPU stalls (a paused vCPU) while others queue connections
 * ahead of them: best effort, that many more connections are given the
 * options one by one too (setting them twice costs nothing but the calls). */
static void set_inherited_options(pe_server *srv, int fd)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	unsigned waiting = 0; /* set when 0 is returned; gcc -O3 -flto cannot tell */

	if (set_idle_timeout(srv, fd) < 0 || pe_net_set_echo_options(fd) < 0 ||
	    pe_net_listen_queue(fd, &waiting, NULL) < 0)
		return; /* each connection is given them, as elsewhere */
	srv->options_inherited = 1;
	srv->backlog_without_options = (unsigned long)waiting + (cpus > 0 ? (unsigned long)cpus : 1);
}
#endif

/* Make the listening socket what the accept loop needs, the caller's given
 * one too: last of all, once nothing else can fail, so that a create that
 * fails leaves that socket as it came. */
static int prepare_listener(pe_server *srv, int given)
{
	int fd = srv->listen_fd, flags = fcntl(fd, F_GETFL), e;

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return listener_failed(srv, "fcntl O_NONBLOCK");
	/* Ours now: a program the embedder starts must not inherit it. */
	if (given && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		e = listener_failed(srv, "fcntl FD_CLOEXEC");
		fcntl(fd, F_SETFL, flags);
		return e;
	}
#ifdef __linux__
	/* Set once here rather than on every connection; not a failure when
	 * they cannot be, as each connection is then given them. (Checked by
	 * the idle-timeout and urgent-data tests.) */
	set_inherited_options(srv, fd);
#endif
	return 0;
}

/* Listen as the config says, or on *GIVEN_FD, a caller's socket. */
static int open_listener(pe_server *srv, const int *given_fd)
{
	char err[PE_NET_ERRLEN] = "";
	unsigned unused = 0;
	int fd;

	if (given_fd)
		fd = *given_fd; /* checked by create() */
	else if ((fd = pe_net_listen_counted(srv->bind_address, srv->cfg.port,
	                                       srv->cfg.backlog, err, &unused)) < 0) {
		pe_server_logf(srv, PE_LOG_ERROR, "%s", err);
		return fd;
	}
	srv->listen_fd = fd;
	srv->addr_len = sizeof srv->addr;
	if (getsockname(fd, (struct sockaddr *)&srv->addr, &srv->addr_len) < 0)
		return listener_failed(srv, "getsockname");
	/* "localhost" is often 127.0.0.1 and ::1: a client of the other one
	 * would be refused, so say which one is served. */
	if (unused) {
		char where[PE_NET_ADDRLEN];

		pe_net_format((struct sockaddr *)&srv->addr, srv->addr_len, where);
		/* ERR holds why an address before it could not be bound. */
		pe_server_logf(srv, PE_LOG_WARN, "'%s' has %u more address%s, not listened on: "
		               "listening on %s only%s%s%s", srv->bind_address, unused,
		               unused == 1 ? "" : "es", where, *err ? " (" : "", err, *err ? ")" : "");
	}
	return 0;
}

static void shut_down(pe_server *srv);

/* pe_server_create(), or pe_server_create_on_socket() on *GIVEN_FD. */
static int create(pe_server **out, const struct pe_server_config *cfg, const int *given_fd)
{
	struct pe_pool_config pc = {0};
	pe_server *srv;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((rc = check_config(cfg, given_fd != NULL)) < 0)
		return rc;
	srv = calloc(1, sizeof *srv);
	if (!srv)
		return -ENOMEM;
	srv->cfg = *cfg;
	srv->owner = getpid();
	srv->listen_fd = srv->wake[0] = srv->wake[1] = -1;
	/* A lock the system cannot make is logged here: unlogged, an EAGAIN
	 * would read to the caller as a refused worker thread. */
	if ((rc = pthread_mutex_init(&srv->lock, NULL)) != 0) {
		pe_server_logf(srv, PE_LOG_ERROR, "cannot make the server's lock: %s", strerror(rc));
		free(srv);
		return -rc;
	}
	/* The grace deadline is on CLOCK_MONOTONIC: a clock step must not move it. */
	if ((rc = pe_cond_init_monotonic(&srv->drained)) != 0) {
		pe_server_logf(srv, PE_LOG_ERROR, "cannot make the server's condition variable: %s",
		               strerror(rc));
		pthread_mutex_destroy(&srv->lock);
		free(srv);
		return -rc;
	}
	atomic_init(&srv->stop_requested, 0);
	atomic_init(&srv->run_held_fd, -1);
	if (cfg->bind_address && !(srv->bind_address = strdup(cfg->bind_address))) {
		rc = -ENOMEM;
		goto fail;
	}
	srv->cfg.bind_address = srv->bind_address;
	/* Before this opens a descriptor of its own, which could take the
	 * number of one the caller closed too early. */
	if (given_fd && (rc = check_given_socket(srv, *given_fd)) < 0)
		goto fail;
	/* calloc promises 16-byte alignment; the slots want their cache lines. */
	if (posix_memalign((void **)&srv->slots, _Alignof(struct pe_worker_slot),
	                   cfg->workers * sizeof *srv->slots) != 0) {
		srv->slots = NULL;
		rc = -ENOMEM;
		goto fail;
	}
	memset(srv->slots, 0, cfg->workers * sizeof *srv->slots);
	for (unsigned i = 0; i < cfg->workers; i++) {
		srv->slots[i].fd = srv->slots[i].held_fd = -1;
		pe_echo_worker_init(&srv->slots[i].echo, &srv->slots[i].counters);
	}
	/* -ENOMEM is left to the caller, which names the settings to lower. */
	if ((rc = reserve_buffers(srv)) < 0)
		goto fail;
	/* Every connection queued or echoed, and the one being accepted: a
	 * place for each address that can hold one, so that
	 * pe_sources_take() never finds the table full (the listener counts
	 * on it: a refusal is always over the limit). */
	if (cfg->per_source &&
	    (rc = pe_sources_init(&srv->sources, cfg->workers + cfg->queue_capacity + 1,
	                          cfg->per_source)) < 0)
		goto fail;
	atomic_init(&srv->active, 0);
	srv->echo_policy.idle_us = cfg->idle_timeout_ms * 1000LL;
	srv->echo_policy.busy_poll_us = pe_server_busy_poll_us(cfg);
	/* A spinning worker spends quota: spin only on CPUs it leaves whole. */
	srv->echo_policy.busy_poll_max = pe_whole_cpus();
	srv->echo_policy.active = &srv->active;
	srv->echo_policy.splice = cfg->splice;
	atomic_init(&srv->pipes_held, 0);
	srv->echo_policy.pipes_held = &srv->pipes_held;
	srv->echo_policy.fds_reserved = (unsigned long long)cfg->workers + cfg->queue_capacity +
	                                PE_SERVER_SPARE_FDS;
	if (pe_cloexec_pipe(srv->wake) < 0) {
		rc = -errno;
		pe_server_logf(srv, PE_LOG_ERROR, "cannot make the stop pipe (%s): %s",
		               PE_CLOEXEC_PIPE_CALL, strerror(-rc));
		goto fail;
	}
	/* Blocking, a stop pipe filled by repeated stops would hang pe_server_stop. */
	if ((rc = pe_net_set_nonblocking(srv->wake[1], 1)) < 0) {
		pe_server_logf(srv, PE_LOG_ERROR, "cannot make the stop pipe nonblocking: %s",
		               strerror(-rc));
		goto fail;
	}
	if ((rc = open_listener(srv, given_fd)) < 0)
		goto fail;
	srv->item_size = queue_item_size(cfg);
	if ((rc = pe_queue_create(&srv->queue, cfg->queue_capacity, srv->item_size)) < 0) {
		/* Only its lock or conditions give EAGAIN; its memory (-ENOMEM)
		 * is the caller's to report, with -q to lower. */
		if (rc == -EAGAIN)
			pe_server_logf(srv, PE_LOG_ERROR, "cannot make the queue's lock or condition "
			               "variables: %s", strerror(-rc));
		goto fail;
	}

	pc.workers = cfg->workers;
	pc.stack_size = cfg->stack_size;
	pc.batch_scheduling = cfg->batch_scheduling;
	pc.queue = srv->queue;
	pc.handler = serve_connection;
	pc.ctx = srv;
	if ((rc = pe_pool_start(&srv->pool, &pc)) < 0) {
		/* The system refusing a thread (or memory) is the caller's to
		 * report, in one line with the limits that bind and the setting
		 * to lower, which only it can name. */
		if (rc == -EINVAL) /* pe_pool_start's only EINVAL left: the stack */
			pe_server_logf(srv, PE_LOG_ERROR, "pe_server_config.stack_size is %zu: "
			               "the system takes no thread stack of that size", cfg->stack_size);
		else if (rc != -EAGAIN && rc != -ENOMEM)
			pe_server_logf(srv, PE_LOG_ERROR, "cannot start %u worker threads: %s",
			               cfg->workers, strerror(-rc));
		goto fail;
	}
	if ((rc = prepare_listener(srv, given_fd != NULL)) < 0) {
		shut_down(srv);
		goto fail;
	}
	*out = srv;
	return 0;
fail:
	if (given_fd)
		srv->listen_fd = -1; /* still the caller's */
	server_free(srv);
	return rc;
}

int pe_server_create(pe_server **out, const struct pe_server_config *cfg)
{
	return create(out, cfg, NULL);
}

int pe_server_create_on_socket(pe_server **out, const struct pe_server_config *cfg,
                               int listen_fd)
{
	return create(out, cfg, &listen_fd);
}

int pe_server_address(const pe_server *srv, struct sockaddr_storage *addr, socklen_t *len)
{
	memcpy(addr, &srv->addr, srv->addr_len);
	*len = srv->addr_len;
	return 0;
}

unsigned pe_server_port(const pe_server *srv)
{
	if (srv->addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&srv->addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&srv->addr)->sin_port);
}

/* Whether this is a child's copy of the server, made by fork(2): the
 * threads are the parent's alone, and the stop pipe and the sockets are
 * shared with it, so a byte written or a shutdown(2) made here would stop
 * the parent's server or end its connections. */
static int forked_copy(const pe_server *srv)
{
	return getpid() != srv->owner;
}

static void request_stop(pe_server *srv, int now)
{
	int first;

	if (!srv || forked_copy(srv))
		return;
	pthread_mutex_lock(&srv->lock);
	first = !srv->stopping;
	if (first) {
		srv->stopping = 1;
		clock_gettime(CLOCK_MONOTONIC, &srv->stop_time);
	}
	if (now)
		srv->stop_now = 1;
	pthread_cond_broadcast(&srv->drained);
	pthread_mutex_unlock(&srv->lock);
	atomic_store(&srv->stop_requested, 1);
	/* The pipe wakes a poll(2); closing the queue wakes a wait for space.
	 * Said once: a log callback that stops the server on this line must
	 * not recurse. */
	if (write(srv->wake[1], "", 1) < 0 && errno != EAGAIN && first)
		pe_server_logf(srv, PE_LOG_WARN, "stop: cannot wake the accept loop: %s",
		               strerror(errno));
	pe_queue_close(srv->queue);
}

void pe_server_stop(pe_server *srv) { request_stop(srv, 0); }
void pe_server_stop_now(pe_server *srv) { request_stop(srv, 1); }

/* Wait, up to the grace deadline, for outstanding connections to end. */
static void wait_for_drain(pe_server *srv)
{
	struct timespec deadline;
	unsigned long open_now;
	int stop_now;

	pthread_mutex_lock(&srv->lock);
	open_now = srv->outstanding;
	stop_now = srv->stop_now;
	deadline = srv->stop_time;
	pthread_mutex_unlock(&srv->lock);
	pe_timespec_add_ms(&deadline, srv->cfg.grace_ms);
	/* Logged outside the lock: a log callback may ask for stats. The grace
	 * began at the stop request, so what is left of it is said. */
	if (open_now && !stop_now && srv->cfg.grace_ms) {
		int64_t left = (int64_t)deadline.tv_sec * 1000 + deadline.tv_nsec / 1000000 -
		               pe_now_ms();

		if (left < 0)
			left = 0;
		pe_server_logf(srv, PE_LOG_INFO, "stopping: %lu connection(s) open, waiting up to "
		               "%u.%03us, the rest of the %u.%03us grace", open_now,
		               (unsigned)(left / 1000), (unsigned)(left % 1000),
		               srv->cfg.grace_ms / 1000, srv->cfg.grace_ms % 1000);
	}

	pthread_mutex_lock(&srv->lock);
	/* drained waits on CLOCK_MONOTONIC: a clock step cannot cut the grace short. */
	while (srv->outstanding && !srv->stop_now &&
	       pthread_cond_timedwait(&srv->drained, &srv->lock, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&srv->lock);
}

/* Close what is still open, join the workers. Idempotent. */
static void shut_down(pe_server *srv)
{
	unsigned long closed = 0;
	pe_pool *pool;
	struct pe_accepted acc;

	/* Taken under the lock: only one caller joins the pool. */
	pthread_mutex_lock(&srv->lock);
	pool = srv->pool;
	srv->pool = NULL;
	if (!pool) {
		pthread_mutex_unlock(&srv->lock);
		return;
	}
	srv->hard_stop = 1;
	for (unsigned i = 0; i < srv->cfg.workers; i++)
		if (srv->slots[i].fd >= 0) {
			shutdown(srv->slots[i].fd, SHUT_RDWR);
			closed++;
		}
	pthread_mutex_unlock(&srv->lock);
	pe_queue_close(srv->queue);
	while (pe_queue_try_pop(srv->queue, &acc) == 0) {
		pe_server_hold(srv, acc.fd);
		pe_server_log_dropped(srv, &acc);
		pe_server_close_held(srv, acc.fd);
		pe_counter_add_release(&srv->listener.dropped, 1);
		pe_server_hand_off_cancel(srv, &acc);
		closed++;
	}
	pe_pool_join(pool);
	/* A worker freed by a shutdown above may have taken a queued
	 * connection before this loop did, and closed it unserved. */
	for (unsigned i = 0; i < srv->cfg.workers; i++)
		closed += pe_counter_get(&srv->slots[i].counters.dropped);
	if (closed)
		pe_server_logf(srv, PE_LOG_INFO, "stopping: closed %lu connection(s) still open", closed);
}

/* Whether this is the server's first run: a second one, or one beside a
 * started run, would close and join what the first is using. */
static int claim_run(pe_server *srv)
{
	int first;

	pthread_mutex_lock(&srv->lock);
	first = !srv->run_claimed;
	srv->run_claimed = 1;
	pthread_mutex_unlock(&srv->lock);
	return first;
}

/* pe_server_run's work, once claim_run let it begin. */
static int serve_until_stopped(pe_server *srv)
{
	int rc, listen_fd;

	own_thread_of = srv;
	rc = pe_listener_run(srv);

	/* Stop accepting at once: clients still in the backlog are refused
	 * rather than left waiting for a server that is leaving. The field is
	 * cleared first: a child forked between the two steps must not close,
	 * in its pe_server_destroy(), a descriptor of its own that took the
	 * number. */
	listen_fd = srv->listen_fd;
	srv->listen_fd = -1;
	close(listen_fd);
	if (rc < 0)
		request_stop(srv, 1);
	wait_for_drain(srv);
	shut_down(srv);
	own_thread_of = NULL; /* pe_server_run's caller goes on with other things */
	return rc;
}

int pe_server_run(pe_server *srv)
{
	return claim_run(srv) ? serve_until_stopped(srv) : -EALREADY;
}

static void *run_main(void *arg)
{
	pe_server *srv = arg;

	srv->run_rc = serve_until_stopped(srv);
	return NULL;
}

int pe_server_start(pe_server *srv)
{
	sigset_t old;
	int rc;

	if (!claim_run(srv))
		return -EALREADY;
	pe_quiet_signals(&old);
	rc = pthread_create(&srv->run_thread, NULL, run_main, srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_mutex_lock(&srv->lock);
		srv->run_claimed = 0; /* nothing ran: a later start or run may */
		pthread_mutex_unlock(&srv->lock);
		return -rc;
	}
	srv->run_started = 1;
	return 0;
}

int pe_server_wait(pe_server *srv)
{
	if (!srv)
		return -EINVAL; /* not -EDEADLK: NULL is also what own_thread_of is here */
	if (own_thread_of == srv)
		return -EDEADLK; /* the run would wait for this thread, or this is it */
	/* As waitpid(2) with no child: not -EINVAL, which a run may return. */
	if (!srv->run_started)
		return -ECHILD;
	pthread_join(srv->run_thread, NULL);
	srv->run_started = 0;
	return srv->run_rc;
}

/* A forked child's copy: close its descriptors, so that the child holds
 * neither the port nor a connection the parent closes, and free its
 * memory. Not its queue, lock or condition variable: the parent's threads
 * may have held or waited on them at the fork, and destroying a condition
 * variable waits for its waiters, who are not here. */
static void forked_copy_free(pe_server *srv)
{
	int run_held = atomic_load_explicit(&srv->run_held_fd, memory_order_relaxed);

	/* held_fd, not fd: at -v a worker lets go of the slot's fd before it
	 * logs the close, and one dropping a client unserved never sets it. */
	for (unsigned i = 0; i < srv->cfg.workers; i++)
		if (srv->slots[i].held_fd >= 0)
			close(srv->slots[i].held_fd);
	/* A client the run thread was refusing or dropping: its warning, at
	 * the default level, may be the line the fork came in. */
	if (run_held >= 0)
		close(run_held);
	release_resources(srv);
	free(srv);
}

void pe_server_destroy(pe_server *srv)
{
	if (!srv)
		return;
	if (forked_copy(srv)) {
		forked_copy_free(srv);
		return;
	}
	if (srv->run_started) {
		/* Started and never waited for: end the run as a hard stop would. */
		request_stop(srv, 1);
		pe_server_wait(srv);
	}
	if (srv->pool) {
		request_stop(srv, 1);
		shut_down(srv);
	}
	server_free(srv);
}
