/*
 * client_load.c -- load mode. A few threads, each owning a share of the
 * connections and an epoll set of its own (edge-triggered, non-blocking
 * sockets), so one process can hold 10,000 connections without a thread
 * per connection and without any lock on the hot path.
 *
 * Every connection sends a stream taken from a shared pseudo-random pattern
 * (with zero bytes in it) at an offset no other connection starts at
 * (load_stream_start); message i is bytes [i*size, (i+1)*size) of that
 * stream, so an echoed byte is checked by its stream offset alone, whatever
 * the chunking. When the size is a multiple of the pattern's length, each
 * message starts one byte further on in it (stream_pos).
 */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_load.h"
#include "cpus.h"
#include "monotonic.h"
#include "parse.h"
#include "sigstate.h"

#define PATTERN_LEN LOAD_PATTERN_LEN
_Static_assert(CLIENT_MAX_CONNECTIONS < PATTERN_LEN && LOAD_STREAM_STRIDE % PATTERN_LEN != 0,
               "stream starts would repeat");
/* Every 64-byte message holds at least one zero byte. */
#define PATTERN_ZERO_EVERY 61u
#define RECV_BUF (256u * 1024)
#define MAX_EVENTS 256
/* Connects in progress per thread: more would overflow a listen backlog
 * and cost SYN retransmits of a whole second. */
#define MAX_CONNECTING 64u
/* Times are CLOCK_MONOTONIC in nanoseconds, latencies to the nanosecond. */
#define NS_PER_US 1000
#define NS_PER_MS 1000000
#define NS_PER_S 1000000000
/* Timeout checks (as often as a shorter --timeout); epoll_wait never sleeps longer. */
#define TICK_NS (100 * NS_PER_MS)
/* After a signal, how long the echoes in flight are still awaited: a signal
 * means the user wants the report now, whatever --timeout allows. */
#define INTERRUPT_GRACE_NS NS_PER_S
#define FD_SPARE 32u   /* descriptors beyond the connections: epoll, stdio, ... */

enum conn_state {
	CONN_IDLE,       /* not started yet (ramp-up), or churn between cycles */
	CONN_CONNECTING,
	CONN_ACTIVE,
	CONN_DRAINING,   /* write side shut, waiting for the close (churn: and the echo) */
	CONN_DONE,
	CONN_FAILED
};

enum fail_kind { FAIL_CONNECT, FAIL_MISMATCH, FAIL_EARLY, FAIL_TIMEOUT, FAIL_OTHER };

struct conn {
	int fd;
	enum conn_state state;
	bool rate_wait;      /* waiting for due_ns before the next message or connect */
	bool timer_held;     /* rate: waiting for the next slot alone, not for the server */
	unsigned index;      /* across the whole run, for messages */
	uint32_t start;      /* this stream's offset into the pattern */
	uint64_t snt, rcv;   /* stream bytes sent, received and verified */
	uint64_t issued;     /* messages allowed out so far (this cycle, in churn) */
	uint64_t echoed;     /* messages whose echo is complete */
	uint64_t cycles;     /* churn: connections completed */
	int64_t progress_ns; /* last time the connection moved */
	int64_t due_ns;      /* rate: the slot waited for */
	int64_t sched_ns;    /* rate: slot 0 of this connection's schedule */
	int64_t held_ns;     /* rate: when the last message (churn: connect) that went on
	                        its own time, not held by the server, went */
	uint64_t slots;      /* rate: slots taken, messages (churn: connects) */
	int64_t connect_ns;  /* churn: when the connect began, or its slot */
	int64_t first_issue_ns, first_echo_ns; /* the first message's origin, its first echo byte */
	int64_t *issue_ns;   /* pipeline ring: each message in flight's latency origin */
	unsigned char *late; /* rate: pipeline ring: whether each one was counted in
	                        slots_late (NULL without --rate) */
};

struct load;

struct lthread {
	pthread_t tid;
	struct load *L;
	int epfd;
	struct conn *conns;
	int64_t *issue_ring;
	unsigned char *late_ring;
	unsigned nconns;
	unsigned next_start;  /* ramp-up: the next connection to start */
	unsigned connecting;
	bool connects_held;   /* due churn connects wait for fewer in flight */
	unsigned live;        /* connections not yet DONE or FAILED */
	bool stopping;
	int64_t interrupt_ns; /* when this thread saw the stop eventfd, 0 if it did not */
	int64_t min_due_ns;   /* earliest rate_wait, INT64_MAX if none */
	int64_t last_echo_ns; /* when an echo last came back whole, 0 if never: part of
	                         one whose message then failed is no echo that came back */
	int64_t last_fail_ns; /* when work last ended in a failure, 0 if it never did */
	unsigned char *rbuf;
	struct histogram hist;
	/* Read by the main thread for the progress line; written only here. */
	_Atomic uint64_t a_opened, a_echoed, a_bytes_echoed, a_errors;
	uint64_t failed, pending, unserved, abandoned, msgs_sent, bytes_sent, mismatches, early, timeouts, other;
	uint64_t slots_late, slots_unused; /* rate: see load_result */
	double cpu_s, run_s;  /* this thread's CPU time and run time */
	char first_error[512];
	int64_t first_error_ns; /* when it came: the report names the earliest of all threads */
};

struct load {
	const struct client_config *cfg;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char target[PE_NET_ADDRLEN];       /* for messages: control characters as \xNN */
	char target_exact[PE_NET_ADDRLEN]; /* first_error's and the report's: they escape it */
	unsigned char *pattern;
	int stop_fd;   /* eventfd in every epoll set: readable means stop */
	int done_fd;   /* eventfd: each thread adds 1 when it ends */
	/* Established connections open now, and the most ever at once: shared,
	 * but touched once per connect and close, never per message. */
	atomic_uint open_now, peak_open;
	int64_t start_ns, deadline_ns;
	int64_t stop_ns;  /* when a signal stopped the run, 0 if none did */
	int64_t wake_grain_ns; /* waits are rounded up to this (see wake_grain) */
	struct load_schedule schedule; /* --rate's, when there is one */
	bool shift_messages;   /* the size is a multiple of PATTERN_LEN: see stream_pos */
	bool unreachable;      /* the first connect failed (see probe_server) */
	struct lthread *threads;
	unsigned nthreads;
};

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned char *pattern_create(void)
{
	unsigned char *p = malloc(PATTERN_LEN);
	uint64_t state = 0x706f6f6c6563686full, r = 0;
	unsigned i;

	if (!p)
		return NULL;
	for (i = 0; i < PATTERN_LEN; i++) {
		if (i % 8 == 0)
			r = splitmix64(&state);
		p[i] = i % PATTERN_ZERO_EVERY == 0 ? 0 : (unsigned char)(r >> (8 * (i % 8)));
	}
	return p;
}

/* Where stream byte X of C is in the pattern, and in *SPAN how many bytes
 * from there, at most LEFT, follow on in it. A size that is a multiple of
 * the pattern's length would make every message the same, and a server
 * that echoed an earlier message again would pass: then message i starts i
 * bytes further on, so no two of fewer than PATTERN_LEN messages apart
 * match. Other sizes keep the plain stream: a shift would make sizes one
 * short of a multiple repeat instead. */
static size_t stream_pos(const struct lthread *t, const struct conn *c, uint64_t x,
                         uint64_t left, size_t *span)
{
	const uint64_t size = t->L->cfg->size;
	const uint64_t shift = t->L->shift_messages ? x / size : 0;
	const size_t pos = (size_t)((c->start + x + shift) % PATTERN_LEN);
	uint64_t n = PATTERN_LEN - pos;

	if (t->L->shift_messages && n > size - x % size)
		n = size - x % size; /* the next message jumps on */
	*span = (size_t)(n < left ? n : left);
	return pos;
}

/* ---- failures ------------------------------------------------------------ */

/* A connect completed or was given up: one more may start. */
static void connect_ended(struct lthread *t)
{
	t->connecting--;
	if (t->connects_held)
		t->min_due_ns = 0; /* scan now: a held churn connect is due */
}

static void conn_close(struct lthread *t, struct conn *c)
{
	if (c->fd >= 0) {
		close(c->fd); /* also leaves the epoll set */
		c->fd = -1;
		if (c->state == CONN_ACTIVE || c->state == CONN_DRAINING)
			atomic_fetch_sub_explicit(&t->L->open_now, 1, memory_order_relaxed);
	}
	if (c->state == CONN_CONNECTING)
		connect_ended(t);
}

/* Take back the messages of C's pipeline let out but not begun: how many.
 * One that was let out late goes out neither late nor at all, so it leaves
 * slots_late too. */
static uint64_t forget_unsent(struct lthread *t, struct conn *c)
{
	const struct client_config *cfg = t->L->cfg;
	const uint64_t begun = c->snt / cfg->size + (c->snt % cfg->size != 0);
	uint64_t dropped;

	if (cfg->mode == CLIENT_CHURN || c->issued <= begun)
		return 0;
	dropped = c->issued - begun;
	for (uint64_t k = begun; c->late && k < c->issued; k++)
		t->slots_late -= c->late[k % cfg->pipeline];
	c->issued = begun;
	return dropped;
}

static void conn_fail(struct lthread *t, struct conn *c, enum fail_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void conn_fail(struct lthread *t, struct conn *c, enum fail_kind kind, const char *fmt, ...)
{
	va_list ap;

	switch (kind) {
	case FAIL_CONNECT: t->failed++; break;
	case FAIL_MISMATCH: t->mismatches++; break;
	case FAIL_EARLY: t->early++; break;
	case FAIL_TIMEOUT: t->timeouts++; break;
	case FAIL_OTHER: t->other++; break;
	}
	atomic_fetch_add_explicit(&t->a_errors, 1, memory_order_relaxed);
	/* Work that failed ended then; a close that never came ended nothing. */
	if (!(c->state == CONN_DRAINING && c->rcv == c->snt))
		t->last_fail_ns = pe_now_ns();
	if (t->first_error[0] == '\0') {
		/* Counted from 1, as --source-ip's addresses are. */
		int n = snprintf(t->first_error, sizeof t->first_error,
		                 "connection %u of %lu to %s: ", c->index + 1,
		                 t->L->cfg->connections, t->L->target_exact);

		t->first_error_ns = pe_now_ns();

		va_start(ap, fmt);
		if (n > 0 && (size_t)n < sizeof t->first_error)
			vsnprintf(t->first_error + n, sizeof t->first_error - (size_t)n, fmt, ap);
		va_end(ap);
	}
	forget_unsent(t, c);
	conn_close(t, c);
	c->state = CONN_FAILED;
	c->rate_wait = false;
	t->live--;
}

static void conn_done(struct lthread *t, struct conn *c)
{
	conn_close(t, c);
	c->state = CONN_DONE;
	c->rate_wait = false;
	t->live--;
}

/* ---- connecting ---------------------------------------------------------- */

static bool wants_more(const struct lthread *t, const struct conn *c)
{
	const struct client_config *cfg = t->L->cfg;
	uint64_t count = cfg->mode == CLIENT_CHURN ? c->cycles : c->issued;

	return !t->stopping && (cfg->messages == 0 || count < cfg->messages);
}

/* With --rate, message (or churn connect) K of a connection owns slot K of
 * a fixed schedule, 1/rate apart. */
static int64_t slot_ns(const struct lthread *t, const struct conn *c, uint64_t k)
{
	return c->sched_ns + (int64_t)load_slot_ns(&t->L->schedule, k);
}

/* Slots due by NOW that a stopped run never used: what a stalled server
 * held back at the end, as the late ones count what it held back before. */
static uint64_t slots_unused(const struct lthread *t, const struct conn *c, int64_t now)
{
	const struct client_config *cfg = t->L->cfg;
	uint64_t due;

	if (!cfg->rate || now < c->sched_ns)
		return 0;
	due = load_slots_due(&t->L->schedule, (uint64_t)(now - c->sched_ns));
	if (cfg->messages && due > cfg->messages)
		due = cfg->messages;
	return due > c->slots ? due - c->slots : 0;
}

/* True when the next message (or churn connect) may go now; ORIGIN gets
 * where its latency starts. Unpaced, that is now. Paced, it goes at its
 * slot: a slot missed because the server held the connection up (echoes
 * still due, the previous churn connection not ended) is used as soon as
 * possible and its latency counts from the slot, so a stall shows in every
 * message it delayed, not only in the one in flight. The client's own
 * lateness in waking for a slot is not the server's, so a message that
 * only waited for its slot counts from when it went. */
static bool rate_allows(struct lthread *t, struct conn *c, int64_t now, int64_t *origin)
{
	int64_t slot;

	*origin = now;
	if (!t->L->cfg->rate)
		return true;
	slot = slot_ns(t, c, c->slots);
	if (now < slot) {
		c->rate_wait = true;
		c->timer_held = true;
		c->due_ns = slot;
		if (slot < t->min_due_ns)
			t->min_due_ns = slot;
		return false;
	}
	if (now >= slot_ns(t, c, c->slots + 1))
		t->slots_late++;
	/* Held by the server from its slot, but no earlier than the server
	 * had something of ours to hold: a slot that passed while the client
	 * itself was late (descheduled, stopped) before the message it waits
	 * on went out is the client's lateness, not the server's. */
	if (c->timer_held)
		c->held_ns = now; /* went on its own time: what waits on it now waits on the server */
	else
		*origin = slot > c->held_ns ? slot : c->held_ns;
	c->slots++;
	return true;
}

static void conn_pump(struct lthread *t, struct conn *c, int64_t now);

/* The connect completed: count the connection as opened. */
static void conn_opened(struct lthread *t, struct conn *c, int64_t now)
{
	struct load *L = t->L;
	unsigned open = atomic_fetch_add_explicit(&L->open_now, 1, memory_order_relaxed) + 1;
	unsigned peak = atomic_load_explicit(&L->peak_open, memory_order_relaxed);

	while (open > peak && !atomic_compare_exchange_weak_explicit(&L->peak_open, &peak, open,
	                                                             memory_order_relaxed,
	                                                             memory_order_relaxed)) {
		/* PEAK now holds the current value: try again while ours is higher. */
	}
	connect_ended(t);
	c->state = CONN_ACTIVE;
	c->progress_ns = now;
	/* Ping-pong's schedule starts once the connection is up: the connect
	 * is not a message's latency. */
	if (t->L->cfg->mode != CLIENT_CHURN && c->sched_ns < now)
		c->sched_ns = now;
	atomic_fetch_add_explicit(&t->a_opened, 1, memory_order_relaxed);
}

static void conn_connected(struct lthread *t, struct conn *c, int64_t now)
{
	conn_opened(t, c, now);
	conn_pump(t, c, now);
}

/* The --source-ip address (its index) that connection C binds to this
 * cycle: a churn connection moves on to the next with every cycle. */
static unsigned conn_source(const struct load *L, const struct conn *c)
{
	return (unsigned)((c->index + c->cycles) % L->cfg->nsources);
}

/* EADDRNOTAVAIL is the ports running out, or no address of this host
 * reaching the server any more (the probe connected, but an address can be
 * removed, or its interface taken down, during the run), which the errno
 * does not tell apart: a UDP connect does (pe_net_ports_ran_out). Churn's
 * own closes fill the ports with TIME_WAIT; ping-pong closes none before
 * the end, and its open connections hold one port each. */
static void conn_connect_failed(struct lthread *t, struct conn *c, int err)
{
	const struct load *L = t->L;
	const struct sockaddr *source = NULL;
	socklen_t source_len = 0;
	const char *why = "";
	char from[NI_MAXHOST + 8] = "";

	/* Of several sources, the one this connection had is the suspect;
	 * named only in a thread's first error, the one told. */
	if (L->cfg->nsources) {
		unsigned k = conn_source(L, c);
		char host[NI_MAXHOST];

		source = (const struct sockaddr *)&L->cfg->sources[k];
		source_len = L->cfg->source_lens[k];
		if (t->first_error[0] == '\0')
			snprintf(from, sizeof from, " from %s",
			         pe_net_format_host(source, source_len, host));
	}
	/* Only a thread's first error is told, so only its cause is sought. A
	 * check that could not be made (its socket finding the descriptors
	 * exhausted) leaves the ports, by far the likelier cause. */
	if (err == EADDRNOTAVAIL && t->first_error[0] == '\0' &&
	    pe_net_ports_ran_out((const struct sockaddr *)&L->addr, L->addrlen, source, source_len) == 0)
		why = " (no address of this host reaches the server any more: was one removed, "
		      "or its interface taken down, during the run?)";
	else if (err == EADDRNOTAVAIL)
		why = L->cfg->mode == CLIENT_CHURN ?
		      " (the local ephemeral ports are exhausted, most likely held in TIME_WAIT "
		      "by connections this client closed: see net.ipv4.ip_local_port_range, add "
		      "--source-ip addresses, or lower --rate or -c)" :
		      " (the local ephemeral ports are exhausted: each open connection holds one, "
		      "and TIME_WAIT holds those of connections closed in the last minute: see "
		      "net.ipv4.ip_local_port_range, add --source-ip addresses, or lower -c)";
	else if (t->first_error[0] == '\0')
		why = pe_net_source_hint(source, (const struct sockaddr *)&L->addr, -err);
	conn_fail(t, c, FAIL_CONNECT, "cannot connect%s: %s%s", from, strerror(err), why);
}

/* Connect; ORIGIN is where a churn cycle's latency starts (now, or its slot). */
static void conn_connect(struct lthread *t, struct conn *c, int64_t now, int64_t origin)
{
	struct load *L = t->L;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
	                         .data.ptr = c};
	int fd, rc;

	fd = pe_net_socket((const struct sockaddr *)&L->addr,
	                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		conn_fail(t, c, fd == -EMFILE || fd == -ENFILE ? FAIL_OTHER : FAIL_CONNECT,
		          "cannot create a socket: %s", strerror(-fd));
		return;
	}
	c->fd = fd;
	c->state = CONN_CONNECTING;
	t->connecting++;
	c->connect_ns = origin;
	c->progress_ns = now;
	c->snt = c->rcv = c->issued = c->echoed = 0;
	/* Small messages must leave at once, not wait for Nagle; and a byte the
	 * server sends as urgent data must be read in its place and checked,
	 * not skipped by recv(2), which would pass an extra one unseen. */
	rc = pe_net_set_echo_options(fd);
	if (rc < 0) {
		conn_fail(t, c, FAIL_OTHER, "setsockopt: %s", strerror(-rc));
		return;
	}
	/* From one source, churn waits for its own ports to leave TIME_WAIT;
	 * each source has a port range of its own. A churn connection moves
	 * on to the next source with every cycle, so that all of them serve
	 * even when -c is below their number. */
	if (L->cfg->nsources) {
		unsigned k = conn_source(L, c);

		rc = pe_net_bind_source(fd, (const struct sockaddr *)&L->cfg->sources[k],
		                        L->cfg->source_lens[k]);
		if (rc < 0) {
			conn_fail(t, c, FAIL_CONNECT, "cannot bind to --source-ip #%u: %s", k + 1,
			          strerror(-rc));
			return;
		}
	}
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		conn_fail(t, c, FAIL_OTHER, "epoll_ctl: %s", strerror(errno));
		return;
	}
	if (connect(fd, (const struct sockaddr *)&L->addr, L->addrlen) == 0)
		conn_connected(t, c, now);
	else if (errno != EINPROGRESS)
		conn_connect_failed(t, c, errno);
}

/* Churn: the rate paces connects, so every one of them, the first and
 * those after a rate wait included, must take its turn from rate_allows();
 * one that may not go yet is started by thread_scan() when it is due. */
static void churn_connect(struct lthread *t, struct conn *c, int64_t now)
{
	int64_t origin;

	if (rate_allows(t, c, now, &origin)) {
		c->timer_held = false; /* the next slot waits for this cycle to end */
		conn_connect(t, c, now, origin);
	}
}

static void conn_check_connect(struct lthread *t, struct conn *c, int64_t now)
{
	int soerr = 0;
	socklen_t len = sizeof soerr;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	/* Only a connection that was made can be reset (one never made is
	 * refused): the server reset it before we looked, an early close as
	 * it would be had we looked a moment sooner, not a failed connect. */
	if (soerr == ECONNRESET || soerr == EPIPE) {
		conn_opened(t, c, now);
		conn_fail(t, c, FAIL_EARLY, "early close: the server reset the connection as "
		          "soon as it was made, before anything was sent");
	} else if (soerr) {
		conn_connect_failed(t, c, soerr);
	} else {
		conn_connected(t, c, now);
	}
}

/* The system gave the connection up (errno E, found by CALL; see
 * pe_net_gave_up): the server went silent or away, a timeout, not an
 * "other" error. Only --timeout=0, or one longer than those, lets it come. */
static void system_timeout(struct lthread *t, struct conn *c, const char *call, int e)
{
	conn_fail(t, c, FAIL_TIMEOUT, "timed out: the server stopped acknowledging and the "
	          "system gave the connection up (%s: %s) (%llu of %llu bytes sent were echoed)",
	          call, strerror(e), (unsigned long long)c->rcv, (unsigned long long)c->snt);
}

/* ---- sending ------------------------------------------------------------- */

static void conn_issue(struct lthread *t, struct conn *c, int64_t now)
{
	const struct client_config *cfg = t->L->cfg;
	bool churn = cfg->mode == CLIENT_CHURN;

	while (c->issued < c->echoed + cfg->pipeline && (churn ? c->issued == 0 : wants_more(t, c))) {
		int64_t origin = c->connect_ns;
		const uint64_t late = t->slots_late;

		/* In churn the rate was applied to the connect itself. */
		if (!churn && !rate_allows(t, c, now, &origin))
			break;
		if (c->late)
			c->late[c->issued % cfg->pipeline] = t->slots_late != late;
		/* Nothing was due until now (a rate wait, an idle connection): the
		 * server's time to answer starts here, not at the last echo. */
		if (c->issued == c->echoed)
			c->progress_ns = now;
		c->issue_ns[c->issued % cfg->pipeline] = origin;
		if (c->issued == 0)
			c->first_issue_ns = origin;
		c->issued++;
	}
	/* A full pipeline: the next slot waits for an echo, not for the clock. */
	if (!churn && c->issued == c->echoed + cfg->pipeline)
		c->timer_held = false;
}

/* Send what has been issued; 0, or -1 when the connection failed. */
static int conn_send(struct lthread *t, struct conn *c)
{
	const struct client_config *cfg = t->L->cfg;
	uint64_t goal = c->issued * cfg->size;

	while (c->snt < goal) {
		size_t span, pos = stream_pos(t, c, c->snt, goal - c->snt, &span);
		ssize_t n = send(c->fd, t->L->pattern + pos, span, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0; /* EPOLLOUT will come */
			if (errno == EPIPE || errno == ECONNRESET)
				conn_fail(t, c, FAIL_EARLY, "early close: the server %s after %llu of %llu "
				          "bytes sent were echoed", errno == EPIPE ? "closed the connection" :
				          "reset the connection", (unsigned long long)c->rcv,
				          (unsigned long long)c->snt);
			else if (pe_net_gave_up(errno))
				system_timeout(t, c, "send", errno);
			else
				conn_fail(t, c, FAIL_OTHER, "send: %s", strerror(errno));
			return -1;
		}
		t->msgs_sent += (c->snt + (uint64_t)n) / cfg->size - c->snt / cfg->size;
		t->bytes_sent += (uint64_t)n;
		c->snt += (uint64_t)n;
	}
	return 0;
}

/* Issue and send what may go now. Then half-close, and the server's close
 * after the rest of the echo tells us it is done: in churn as soon as the
 * one message is out, otherwise once nothing more is wanted and all came
 * back. Our FIN goes first, so we are the active closer and each closed
 * connection holds one of our ephemeral ports in TIME_WAIT for a minute:
 * that, not the server, bounds churn against a non-loopback address (Linux
 * reuses TIME_WAIT ports only towards loopback). */
static void conn_pump(struct lthread *t, struct conn *c, int64_t now)
{
	if (c->state != CONN_ACTIVE)
		return;
	conn_issue(t, c, now);
	if (conn_send(t, c) < 0)
		return;
	if (t->L->cfg->mode == CLIENT_CHURN ? c->snt == t->L->cfg->size :
	    c->echoed == c->issued && c->snt == c->rcv && !c->rate_wait && !wants_more(t, c)) {
		if (shutdown(c->fd, SHUT_WR) < 0) {
			/* ENOTCONN: a reset came in (a server that rejects does that).
			 * Anything else is ours, not the server's doing. */
			if (errno == ENOTCONN)
				conn_fail(t, c, FAIL_EARLY, "early close: the server reset the "
				          "connection after %llu of %llu bytes sent were echoed "
				          "(shutdown: %s)", (unsigned long long)c->rcv,
				          (unsigned long long)c->snt, strerror(errno));
			else
				conn_fail(t, c, FAIL_OTHER, "cannot half-close the connection "
				          "(shutdown): %s", strerror(errno));
			return;
		}
		c->state = CONN_DRAINING;
		c->progress_ns = now;
	}
}

/* ---- receiving ----------------------------------------------------------- */

/* Check N received bytes against the stream from c->rcv on: how many of
 * them match before the first that differs (N if none does), and in *BAD
 * whether one differs. */
static size_t conn_verify(const struct lthread *t, const struct conn *c, const unsigned char *got,
                          size_t n, bool *bad)
{
	const unsigned char *pattern = t->L->pattern;
	size_t done = 0;

	*bad = false;
	while (done < n) {
		size_t span, pos = stream_pos(t, c, c->rcv + done, n - done, &span);

		if (memcmp(pattern + pos, got + done, span) != 0) {
			while (pattern[pos] == got[done]) {
				pos++;
				done++;
			}
			*bad = true;
			return done;
		}
		done += span;
	}
	return done;
}

static void conn_received(struct lthread *t, struct conn *c, size_t n, int64_t now)
{
	const struct client_config *cfg = t->L->cfg;
	uint64_t done_msgs;

	if (c->rcv == 0)
		c->first_echo_ns = now;
	c->rcv += n;
	c->progress_ns = now;
	atomic_fetch_add_explicit(&t->a_bytes_echoed, n, memory_order_relaxed);
	done_msgs = c->rcv / cfg->size;
	while (c->echoed < done_msgs) {
		int64_t lat = now - c->issue_ns[c->echoed % cfg->pipeline];

		histogram_record(&t->hist, lat > 0 ? (uint64_t)lat : 0);
		c->echoed++;
		atomic_fetch_add_explicit(&t->a_echoed, 1, memory_order_relaxed);
		/* The measured period runs to the last whole echo: bytes of one
		 * whose message then fails (a stall, a close) after a deadline
		 * must not stretch it, as the failure itself does not. */
		t->last_echo_ns = now;
	}
}

static void conn_eof(struct lthread *t, struct conn *c, int64_t now)
{
	/* The close came with the last echo, before our half-close: nothing
	 * was owed, and if nothing more was wanted, the work is done. */
	const bool all_back = c->rcv == c->snt && c->echoed == c->issued;

	if (c->state == CONN_ACTIVE && all_back && !wants_more(t, c))
		c->state = CONN_DRAINING;
	/* Nothing sent yet: a paced first message waits for its slot, and a
	 * server that limits a client's connections closes the connection
	 * before it comes. Nothing was echoed "all" of. */
	if (c->state == CONN_ACTIVE && c->snt == 0) {
		conn_fail(t, c, FAIL_EARLY, "early close: the server closed the connection before "
		          "anything was sent");
		return;
	}
	if (c->state == CONN_ACTIVE && all_back) {
		conn_fail(t, c, FAIL_EARLY, "early close: the server closed the connection after "
		          "echoing all %llu bytes sent, with more to send", (unsigned long long)c->snt);
		return;
	}
	if (c->state != CONN_DRAINING || c->rcv != c->snt) {
		conn_fail(t, c, FAIL_EARLY, "early close: the server closed the connection after "
		          "%llu of %llu bytes sent were echoed", (unsigned long long)c->rcv,
		          (unsigned long long)c->snt);
		return;
	}
	if (t->L->cfg->mode != CLIENT_CHURN) {
		conn_done(t, c);
		return;
	}
	/* Churn: one cycle done; the next starts now or when the rate allows. */
	conn_close(t, c);
	c->cycles++;
	c->state = CONN_IDLE;
	c->start = (uint32_t)((c->start + 104729u) % PATTERN_LEN);
	if (!wants_more(t, c))
		conn_done(t, c);
	else
		churn_connect(t, c, now);
}

/* Edge-triggered: read until the socket is drained. A read shorter than
 * the buffer took all that was queued, and data arriving during or after
 * it reports a new edge, so the recv(2) that would only say EAGAIN is
 * skipped: a third of a ping-pong's system calls. An end, an error or an
 * urgent mark (where recv(2) stops short) already in EVENTS brings no new
 * edge, so then the reading goes on until recv(2) says EAGAIN or the end.
 * *NOW becomes the time each read returned: bytes read on in the same pass
 * may have come long after the event (a client held up, a big echo), and
 * an echo ends no sooner than its last byte was read. */
static void conn_read(struct lthread *t, struct conn *c, uint32_t events, int64_t *now)
{
	const bool ending = events & (EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR);

	for (;;) {
		ssize_t n = recv(c->fd, t->rbuf, RECV_BUF, 0);

		if (n > 0) {
			*now = pe_now_ns();
			/* What was due first: an extra byte after an intact echo
			 * leaves that echo counted, and a wrong one its offset. */
			size_t due = c->snt - c->rcv < (uint64_t)n ? (size_t)(c->snt - c->rcv) : (size_t)n;

			bool bad;
			size_t span, good = conn_verify(t, c, t->rbuf, due, &bad);

			/* The bytes before a wrong one came back intact: counted,
			 * so that bytes_echoed is the mismatch's offset. */
			if (good > 0)
				conn_received(t, c, good, *now);
			if (bad) {
				conn_fail(t, c, FAIL_MISMATCH, "echo differs at byte offset %llu: sent "
				          "0x%02x, received 0x%02x", (unsigned long long)c->rcv,
				          t->L->pattern[stream_pos(t, c, c->rcv, 1, &span)], t->rbuf[good]);
				return;
			}
			if (due < (size_t)n) {
				conn_fail(t, c, FAIL_MISMATCH, "the server sent back more than it was "
				          "sent: %llu bytes sent, at least %llu received",
				          (unsigned long long)c->snt,
				          (unsigned long long)(c->rcv + ((size_t)n - due)));
				return;
			}
			if ((size_t)n < RECV_BUF && !ending)
				return;
			continue;
		}
		if (n == 0) {
			conn_eof(t, c, *now);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == ECONNRESET && c->state == CONN_DRAINING && c->rcv == c->snt)
			conn_fail(t, c, FAIL_EARLY, "early close: the server reset the connection "
			          "instead of closing it, after all %llu bytes sent were echoed",
			          (unsigned long long)c->snt);
		else if (errno == ECONNRESET && c->snt == 0)
			conn_fail(t, c, FAIL_EARLY, "early close: the server reset the connection before "
			          "anything was sent");
		else if (errno == ECONNRESET)
			conn_fail(t, c, FAIL_EARLY, "early close: the server reset the connection after "
			          "%llu of %llu bytes sent were echoed", (unsigned long long)c->rcv,
			          (unsigned long long)c->snt);
		else if (pe_net_gave_up(errno))
			system_timeout(t, c, "recv", errno);
		else
			conn_fail(t, c, FAIL_OTHER, "recv: %s", strerror(errno));
		return;
	}
}

static void conn_event(struct lthread *t, struct conn *c, uint32_t events, int64_t now)
{
	if (c->state == CONN_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		/* On with what came with the answer (bytes, a close): edge
		 * triggered, it gets no event of its own. */
		conn_check_connect(t, c, now);
	}
	if (c->state != CONN_ACTIVE && c->state != CONN_DRAINING)
		return;
	/* Read what came, then send what the echo made due. */
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR))
		conn_read(t, c, events, &now);
	conn_pump(t, c, now);
}

/* ---- the thread's loop --------------------------------------------------- */

/* Paced: the connection's next slot waits on the server (an echo or the
 * previous churn connection still due), not only on the clock. */
static bool held_by_server(const struct lthread *t, const struct conn *c)
{
	if (c->rate_wait && c->timer_held)
		return false;
	if (t->L->cfg->mode == CLIENT_CHURN)
		return c->state == CONN_CONNECTING || c->state == CONN_ACTIVE ||
		       c->state == CONN_DRAINING || (c->state == CONN_IDLE && c->rate_wait);
	return c->state == CONN_ACTIVE;
}

/* Whether what C waits for has come (its connect answered, an echo, the
 * server's close), whether or not this thread's epoll loop has got to it:
 * poll(2)'s count, 1 if so. */
static int conn_answered_now(const struct conn *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = c->state == CONN_CONNECTING ? POLLOUT : POLLIN};

	return poll(&pfd, 1, 0);
}

/* A connect the server has not answered yet, as opposed to one whose
 * answer this thread's epoll loop has not got to. */
static bool connect_unanswered(const struct conn *c)
{
	return conn_answered_now(c) == 0;
}

/* An open connection the server has left waiting: its first message went
 * out in the first half of the run and not a byte of it came back by CUT,
 * the stop (as when a server has fewer workers than there are connections
 * and queues the rest). A slow echo is not this: it has begun. The echo may
 * have come since: another thread's stop may have freed a worker. A churn
 * connection is this new each cycle: never counted. */
static bool unserved(const struct lthread *t, const struct conn *c, int64_t cut)
{
	const int64_t half = t->L->start_ns + (cut - t->L->start_ns) / 2;

	return t->L->cfg->mode != CLIENT_CHURN && c->issued > 0 && c->first_issue_ns <= half &&
	       (c->rcv == 0 || c->first_echo_ns > cut);
}

/* Echo bytes sent and not yet back, or messages issued and not yet whole.
 * A churn connection half-closes before its echo, so draining may owe too. */
static bool conn_owes(const struct conn *c)
{
	return (c->state == CONN_ACTIVE || c->state == CONN_DRAINING) &&
	       (c->snt > c->rcv || c->issued > c->echoed);
}

/* Waiting on the server: for its answer to the connect, its close, or echoes. */
static bool conn_awaits(const struct conn *c)
{
	return c->state == CONN_CONNECTING || c->state == CONN_DRAINING || conn_owes(c);
}

/* The grace after a signal ran out: the user asked for the report, and the
 * server has not broken --timeout, so this is no error; the report says how
 * many connections still owed echoes. A close not yet come owes nothing. */
static void conn_give_up(struct lthread *t, struct conn *c)
{
	if (conn_owes(c))
		t->abandoned++;
	conn_done(t, c);
}

/* At the stop, the messages of C's pipeline not yet begun are not sent:
 * those in flight are awaited (their bytes are on their way), but the rest
 * would be sent after the deadline, a GiB for 16 of 64 MiB and 256 GiB for
 * --pipeline=4096, minutes to hours past -d. Their slots, when paced, came
 * due and went unused: how many. */
static uint64_t drop_unsent(struct lthread *t, struct conn *c)
{
	uint64_t dropped;

	if (c->state != CONN_ACTIVE)
		return 0;
	/* One let out late never went out: counted unused, not late too. */
	dropped = forget_unsent(t, c);
	return t->L->cfg->rate ? dropped : 0;
}

static void thread_stop(struct lthread *t, int64_t now)
{
	/* Slots count up to the deadline, not to a late wake after it. */
	const int64_t deadline = t->L->deadline_ns;
	const int64_t cut = deadline && deadline < now ? deadline : now;
	unsigned i;

	t->stopping = true;
	for (i = 0; i < t->nconns; i++) {
		struct conn *c = &t->conns[i];
		/* A paced churn connect come due but held back by the connects
		 * in flight (thread_scan's connects_held), as opposed to one
		 * still waiting for its slot. */
		const bool held_back = c->rate_wait && !c->timer_held;

		if (i < t->next_start && held_by_server(t, c))
			t->slots_unused += slots_unused(t, c, cut);
		c->rate_wait = false;
		switch (c->state) {
		case CONN_CONNECTING:
			/* Not an error of its own, but a connection that never got
			 * going, which the report counts (see load_result). A churn
			 * connection between two cycles has got going before. */
			if (c->cycles == 0 && connect_unanswered(c))
				t->pending++;
			conn_done(t, c);
			break;
		case CONN_IDLE:
			/* Never got going: not an error, just not needed any more.
			 * One that never began its connect was held back by the
			 * connects in flight (MAX_CONNECTING) the server had not
			 * answered: it did not connect either, so it is counted
			 * with them, or the report would lose it. So is a paced
			 * churn connection whose first connect came due and was
			 * held back so. */
			if (i >= t->next_start || (c->cycles == 0 && held_back))
				t->pending++;
			conn_done(t, c);
			break;
		case CONN_ACTIVE:
			if (unserved(t, c, cut))
				t->unserved++;
			t->slots_unused += drop_unsent(t, c);
			conn_pump(t, c, now); /* half-closes once the echo is all back */
			break;
		default:
			break;
		}
	}
	t->next_start = t->nconns;
}

/* Timeouts, due rate waits, and the ramp-up of new connections. */
static void thread_scan(struct lthread *t, int64_t now)
{
	const struct client_config *cfg = t->L->cfg;
	const int64_t limit = (int64_t)cfg->timeout_ms * NS_PER_MS;
	const bool grace_over = t->interrupt_ns && now - t->interrupt_ns >= INTERRUPT_GRACE_NS;
	unsigned i;

	t->min_due_ns = INT64_MAX;
	t->connects_held = false;
	for (i = 0; i < t->next_start; i++) {
		struct conn *c = &t->conns[i];

		if (c->rate_wait && c->due_ns > now) {
			if (c->due_ns < t->min_due_ns)
				t->min_due_ns = c->due_ns;
		} else if (c->rate_wait && c->state == CONN_IDLE && t->connecting >= MAX_CONNECTING) {
			/* A churn connect is due, but as many are in flight as
			 * a listen backlog should take: the next to end brings
			 * this scan back (connect_ended). Held by the server's
			 * slow handshakes, not by our timer. */
			t->connects_held = true;
			c->timer_held = false;
		} else if (c->rate_wait) {
			c->rate_wait = false;
			if (c->state == CONN_IDLE)
				churn_connect(t, c, now);
			else
				conn_pump(t, c, now);
		}
		/* Waiting on the rate or not, a connection may owe echoes (pipeline).
		 * A thread not scheduled for a while may come back past the limit
		 * to an answer epoll has yet to report: that is no timeout, and it
		 * is taken now. Left to epoll, an answer whose edge was missed
		 * (a recv(2) that said EAGAIN with bytes waiting) would be
		 * waited for by this scan for ever, --timeout and -d with it. A
		 * trickle of answers does not hold off the end of the grace. */
		if (!conn_awaits(c))
			continue;
		if (grace_over) {
			/* An answer already come while this thread was held up
			 * (stopped or frozen: its epoll_wait came back without it,
			 * past the grace) is taken first, as for --timeout below,
			 * though it may have come after the grace: when is not
			 * known. What is still owed is given up. */
			if (conn_answered_now(c) > 0)
				conn_event(t, c, c->state == CONN_CONNECTING ? EPOLLOUT : EPOLLIN, now);
			if (conn_awaits(c))
				conn_give_up(t, c);
		} else if (!limit || now - c->progress_ns <= limit)
			continue;
		else if (conn_answered_now(c) > 0)
			conn_event(t, c, c->state == CONN_CONNECTING ? EPOLLOUT : EPOLLIN, now);
		else if (c->state == CONN_CONNECTING)
			/* A connection that never opened: a connect failure, as
			 * the report's opened and failed counts must add up. */
			conn_fail(t, c, FAIL_CONNECT, "connect timed out after %.3f s",
			          (double)cfg->timeout_ms / 1000.0);
		else
			conn_fail(t, c, FAIL_TIMEOUT, "timed out: %s for %.3f s (%llu of %llu bytes "
			          "sent were echoed)",
			          /* Churn half-closes once its message is sent, so a
			           * draining connection may still owe its echo. */
			          c->state == CONN_DRAINING && c->rcv == c->snt ?
			          "no close from the server" : "no echo",
			          (double)cfg->timeout_ms / 1000.0, (unsigned long long)c->rcv,
			          (unsigned long long)c->snt);
	}
}

static void thread_ramp(struct lthread *t, int64_t now)
{
	const struct client_config *cfg = t->L->cfg;

	while (!t->stopping && t->next_start < t->nconns && t->connecting < MAX_CONNECTING) {
		struct conn *c = &t->conns[t->next_start++];

		/* Spread over one period: each connection's first message, or in
		 * churn its first connect, comes at its own offset. */
		if (cfg->rate)
			c->sched_ns = now + (int64_t)((uint64_t)c->index * NS_PER_S /
			                              ((uint64_t)cfg->connections * cfg->rate));
		/* Each its own time: the connects before it are not its latency. */
		if (cfg->mode == CLIENT_CHURN)
			churn_connect(t, c, pe_now_ns());
		else
			conn_connect(t, c, now, now);
	}
}

static double thread_cpu_s(void)
{
	struct timespec ts = {0, 0};

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How finely the event threads time their waits: a sixteenth of a paced
 * period, so no slot is late by more than that, but no finer than needed.
 * Every wake costs the client CPU and, as each message goes on its own,
 * the server a wake-up; at 1 ms (what milliseconds gave before), 10,000
 * connections at 1/s take a wake per millisecond per thread, not one per
 * slot. A microsecond at least, as when waits were timed in microseconds. */
static int64_t wake_grain(const struct client_config *cfg)
{
	int64_t grain = cfg->rate ? (int64_t)(NS_PER_S / cfg->rate) / 16 : NS_PER_MS;

	return grain < NS_PER_US ? NS_PER_US : grain > NS_PER_MS ? NS_PER_MS : grain;
}

/* epoll_wait(2) to the nanosecond where the system can (epoll_pwait2, Linux
 * 5.11): with milliseconds, rounded up so as not to spin, every paced slot
 * was up to a millisecond late, and a rate over 1,000/s fell far short. */
static int wait_events(struct lthread *t, struct epoll_event *evs, int64_t wait_ns)
{
#ifdef HAVE_EPOLL_PWAIT2
	static atomic_bool no_pwait2;

	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = pe_timespec_from_ns(wait_ns);
		int n = epoll_pwait2(t->epfd, evs, MAX_EVENTS, &ts, NULL);

		/* Missing, or refused by a seccomp filter that knows it not. */
		if (n >= 0 || (errno != ENOSYS && errno != EPERM))
			return n;
		atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
	}
#endif
	return epoll_wait(t->epfd, evs, MAX_EVENTS, (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS));
}

static void *thread_main(void *arg)
{
	struct lthread *t = arg;
	struct load *L = t->L;
	struct epoll_event evs[MAX_EVENTS];
	/* A --timeout shorter than a tick is looked for as often as it runs:
	 * at a tick, a silence of 0.08 s went by a 0.01 s timeout. */
	const int64_t timeout_ns = (int64_t)L->cfg->timeout_ms * NS_PER_MS;
	const int64_t scan_ns = timeout_ns && timeout_ns < TICK_NS ? timeout_ns : TICK_NS;
	int64_t now = pe_now_ns(), next_scan = now + scan_ns;
	const int64_t began_ns = now;
	const double began_cpu_s = thread_cpu_s();
	uint64_t one = 1;

#ifdef PR_SET_TIMERSLACK
	/* The default slack, 50 us, may be more than a fine grain allows. */
	if (L->wake_grain_ns < 200 * NS_PER_US)
		prctl(PR_SET_TIMERSLACK, (unsigned long)L->wake_grain_ns / 4, 0UL, 0UL, 0UL);
#endif

	while (t->live > 0) {
		int64_t wait_ns;
		int n, i;

		thread_ramp(t, now);
		if (t->live == 0)
			break;
		wait_ns = next_scan - now;
		if (t->min_due_ns - now < wait_ns)
			wait_ns = t->min_due_ns - now;
		if (!t->stopping && L->deadline_ns && L->deadline_ns - now < wait_ns)
			wait_ns = L->deadline_ns - now;
		if (wait_ns < 0)
			wait_ns = 0;
		wait_ns = (wait_ns + L->wake_grain_ns - 1) / L->wake_grain_ns * L->wake_grain_ns;
		n = wait_events(t, evs, wait_ns);
		if (n < 0 && errno != EINTR) {
			/* A connection's failure may have come first: keep it. */
			if (t->first_error[0] == '\0') {
				snprintf(t->first_error, sizeof t->first_error, "epoll_wait: %s",
				         strerror(errno));
				t->first_error_ns = pe_now_ns();
			}
			t->other++;
			atomic_fetch_add_explicit(&t->a_errors, 1, memory_order_relaxed);
			break;
		}
		for (i = 0; i < n; i++) {
			/* Per event, not per batch: handling the events before this one
			 * took time that is not this echo's latency. */
			now = pe_now_ns();
			if (evs[i].data.ptr == NULL) {
				/* The stop eventfd stays readable: take it out of this set. */
				epoll_ctl(t->epfd, EPOLL_CTL_DEL, L->stop_fd, NULL);
				t->interrupt_ns = now;
				if (!t->stopping)
					thread_stop(t, now);
				continue;
			}
			conn_event(t, evs[i].data.ptr, evs[i].events, now);
		}
		now = pe_now_ns();
		if (!t->stopping && L->deadline_ns && now >= L->deadline_ns)
			thread_stop(t, now);
		if (now >= next_scan || now >= t->min_due_ns) {
			thread_scan(t, now);
			if (now >= next_scan)
				next_scan = now + scan_ns;
		}
	}
	/* Whatever is left (only after an epoll failure) goes down with us. */
	for (unsigned k = 0; k < t->nconns; k++)
		conn_close(t, &t->conns[k]);
	/* The CPU time is read within the run time's bounds: never the larger. */
	t->cpu_s = thread_cpu_s() - began_cpu_s;
	t->run_s = (double)(pe_now_ns() - began_ns) / 1e9;
	if (write(L->done_fd, &one, sizeof one) < 0) {
		/* An eventfd write of 1 cannot fail short of a bug; the join still happens. */
	}
	return NULL;
}

/* ---- setup --------------------------------------------------------------- */

static int raise_fd_limit(unsigned long conns, unsigned long need, char *err, size_t errlen)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		int e = errno;

		snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(e));
		return -e;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			int e = errno;

			snprintf(err, errlen, "cannot raise the open files limit (RLIMIT_NOFILE) to %llu: %s",
			         (unsigned long long)rl.rlim_max, strerror(e));
			return -e;
		}
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		snprintf(err, errlen, "%lu connections need about %lu open files, but the hard limit "
		         "(RLIMIT_NOFILE) is %llu: raise it (ulimit -Hn, limits.conf, LimitNOFILE=) "
		         "or use fewer connections", conns, need,
		         (unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	return 0;
}

/* Each --source-ip must be an address of this host's: say which is not
 * before the run, rather than fail every connection that uses it. */
static int check_sources(const struct client_config *cfg, char *err, size_t errlen)
{
	for (unsigned i = 0; i < cfg->nsources; i++) {
		int fd = pe_net_socket((const struct sockaddr *)&cfg->sources[i],
		                       SOCK_STREAM | SOCK_CLOEXEC), rc;
		char shown[NI_MAXHOST];

		rc = fd < 0 ? fd :
		     pe_net_bind_source(fd, (const struct sockaddr *)&cfg->sources[i],
		                        cfg->source_lens[i]);
		if (fd >= 0)
			close(fd);
		if (rc == 0)
			continue;
		snprintf(err, errlen, "cannot use --source-ip %s: %s%s",
		         pe_net_format_host((const struct sockaddr *)&cfg->sources[i],
		                            cfg->source_lens[i], shown),
		         strerror(-rc),
		         pe_net_address_hint((const struct sockaddr *)&cfg->sources[i], rc, 1));
		return rc;
	}
	return 0;
}

/* The longest the probe waits for the server to close it in turn. */
#define PROBE_CLOSE_MS 1000

/* End the probe on FD so that the server is done with it before the run
 * connects: a server that limits the connections of one address (poolechod
 * --per-source) counts the probe until it has seen it end, and refused a
 * run's last connection while it still did. Half-close, then wait for the
 * server's close (an echo server's answer to it, which poolechod sends once
 * it has stopped counting), within PROBE_CLOSE_MS and LIMIT_MS (the
 * probe's own bound, 0 for none). A signal on SIGFD ends the wait, and
 * the run before it began: true then, the signal left unread. */
static bool probe_close(int fd, int sigfd, unsigned long limit_ms)
{
	const int64_t limit = (int64_t)(limit_ms && limit_ms < PROBE_CLOSE_MS ? limit_ms :
	                                PROBE_CLOSE_MS) * NS_PER_MS;
	const int64_t end = pe_now_ns() + limit;
	char buf[256];

	if (shutdown(fd, SHUT_WR) < 0)
		return false;
	for (;;) {
		struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
		int64_t left = end - pe_now_ns();
		ssize_t n;

		if (left <= 0 || poll(fds, sigfd >= 0 ? 2 : 1, (int)((left + NS_PER_MS - 1) /
		                                                     NS_PER_MS)) <= 0)
			return false;
		if (sigfd >= 0 && fds[1].revents)
			return true;
		n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return false;
	}
}

/* The address the probe found, in both its forms. */
static void set_target(struct load *L)
{
	pe_net_format((struct sockaddr *)&L->addr, L->addrlen, L->target);
	pe_net_format_exact((struct sockaddr *)&L->addr, L->addrlen, L->target_exact);
}

/* Connect once to an address of LIST, from --source-ip K if any (the first
 * for the run's probe), to learn which one answers (localhost may be ::1 or
 * 127.0.0.1) and to fail early with a clear message. Within
 * --timeout, and within -d, as the run would be over by then; a signal on
 * SIGFD (SIGINT, SIGTERM) gives it up. */
static int probe_server(struct load *L, const struct addrinfo *list, unsigned k, int sigfd,
                        char *err, size_t errlen)
{
	const struct client_config *cfg = L->cfg;
	const struct sockaddr *first_source;
	const struct addrinfo *answered = NULL;
	unsigned long limit_ms = cfg->timeout_ms;
	bool by_duration = false;
	char nerr[PE_NET_ERRLEN];
	int fd;

	if (cfg->duration_ms && (!limit_ms || cfg->duration_ms < limit_ms)) {
		limit_ms = cfg->duration_ms;
		by_duration = true;
	}
	first_source = cfg->nsources ? (const struct sockaddr *)&cfg->sources[k] : NULL;
	fd = pe_net_connect_list_from(list, first_source, cfg->source_lens[k], limit_ms, sigfd,
	                              &answered, nerr);
	if (fd == -ECANCELED) {
		struct signalfd_siginfo si = {0};

		if (read(sigfd, &si, sizeof si) < 0) {
			/* The signal's name only: the run is given up all the same. */
		}
		snprintf(err, errlen, "interrupted by %s: %s before the run began",
		         si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT", nerr);
		return fd;
	}
	/* A probe reset as soon as it was made found the server all the same:
	 * had we looked a moment sooner it would have been connected. What the
	 * server does to the run's connections is for them to say. */
	if (fd == -ECONNRESET && answered) {
		memcpy(&L->addr, answered->ai_addr, answered->ai_addrlen);
		L->addrlen = answered->ai_addrlen;
		set_target(L);
		return 0;
	}
	if (fd < 0) {
		snprintf(err, errlen, "%s%s", nerr,
		         fd == -ETIMEDOUT && by_duration ? " (all of -d/--duration)" : "");
		L->unreachable = true;
		return fd;
	}
	L->addrlen = sizeof L->addr;
	if (getpeername(fd, (struct sockaddr *)&L->addr, &L->addrlen) < 0) {
		int e = errno;
		char host[200]; /* the scope may be an interface's name: control characters */

		snprintf(err, errlen, "cannot learn which address of %s port %s answered "
		         "(getpeername): %s", pe_parse_shown(cfg->host, strlen(cfg->host), host,
		                                             sizeof host),
		         cfg->port, strerror(e));
		close(fd);
		return -e;
	}
	if (probe_close(fd, sigfd, limit_ms)) {
		struct signalfd_siginfo si = {0};

		close(fd);
		if (read(sigfd, &si, sizeof si) < 0) {
			/* The signal's name only: the run is given up all the same. */
		}
		set_target(L);
		snprintf(err, errlen, "interrupted by %s before the run began (%s answered)",
		         si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT", L->target);
		return -ECANCELED;
	}
	close(fd);
	set_target(L);
	return 0;
}

/* The probe reached the server from the first --source-ip; each other one
 * is routed to it by the connect of a UDP socket, which sends nothing. One
 * that cannot reach it (a loopback source towards another interface:
 * EINVAL; no route from it: ENETUNREACH) stops the run before it starts,
 * as the probe would have from it, rather than fail every connection
 * that takes it. A check that cannot be made is left to those connects.
 * A UDP route is not a TCP one (policy routing can tell them apart: ip
 * rule ... ipproto tcp), so a source the UDP connect refuses is probed
 * as the first was, and only that probe's failure stops the run. */
static int check_source_routes(struct load *L, int sigfd, char *err, size_t errlen)
{
	const struct client_config *cfg = L->cfg;
	/* Ping-pong's connections take one source each, for the whole run:
	 * one that no connection takes stops nothing. Churn's take each in
	 * turn. */
	unsigned used = cfg->mode == CLIENT_CHURN || cfg->connections >= cfg->nsources ?
	                cfg->nsources : (unsigned)cfg->connections;

	for (unsigned i = 1; i < used; i++) {
		const struct sockaddr *source = (const struct sockaddr *)&cfg->sources[i];
		int fd = pe_net_socket(source, SOCK_DGRAM | SOCK_CLOEXEC), rc = 0;
		struct sockaddr_storage to;
		struct addrinfo ai = {.ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};

		if (fd < 0)
			continue;
		if (bind(fd, source, cfg->source_lens[i]) == 0 &&
		    connect(fd, (const struct sockaddr *)&L->addr, L->addrlen) < 0)
			rc = -errno;
		close(fd);
		if (rc != -EINVAL && rc != -ENETUNREACH && rc != -EHOSTUNREACH)
			continue;
		/* A copy: the probe sets L->addr from the address it answers on. */
		memcpy(&to, &L->addr, L->addrlen);
		ai.ai_family = to.ss_family;
		ai.ai_addr = (struct sockaddr *)&to;
		ai.ai_addrlen = L->addrlen;
		if ((rc = probe_server(L, &ai, i, sigfd, err, errlen)) < 0)
			return rc;
	}
	return 0;
}

static int threads_setup(struct load *L, char *err, size_t errlen)
{
	const struct client_config *cfg = L->cfg;
	unsigned long base = 0;
	unsigned i;

	L->threads = calloc(L->nthreads, sizeof *L->threads);
	if (!L->threads)
		goto nomem;
	for (i = 0; i < L->nthreads; i++)
		L->threads[i].epfd = -1;
	for (i = 0; i < L->nthreads; i++) {
		struct lthread *t = &L->threads[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		unsigned long n = cfg->connections / L->nthreads +
		                  (i < cfg->connections % L->nthreads ? 1 : 0);
		unsigned k;

		t->L = L;
		t->nconns = t->live = (unsigned)n;
		t->min_due_ns = INT64_MAX;
		histogram_init(&t->hist);
		t->conns = calloc(n, sizeof *t->conns);
		t->issue_ring = calloc(n * cfg->pipeline, sizeof *t->issue_ring);
		if (cfg->rate)
			t->late_ring = calloc(n * cfg->pipeline, sizeof *t->late_ring);
		t->rbuf = malloc(RECV_BUF);
		if (!t->conns || !t->issue_ring || (cfg->rate && !t->late_ring) || !t->rbuf)
			goto nomem;
		for (k = 0; k < n; k++) {
			struct conn *c = &t->conns[k];

			c->fd = -1;
			c->index = (unsigned)(base + k);
			c->start = load_stream_start(base + k);
			c->issue_ns = t->issue_ring + k * cfg->pipeline;
			if (t->late_ring)
				c->late = t->late_ring + k * cfg->pipeline;
		}
		base += n;
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (t->epfd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, L->stop_fd, &ev) < 0) {
			int e = errno; /* snprintf may change errno */

			snprintf(err, errlen, "cannot %s: %s",
			         t->epfd < 0 ? "create an epoll set" : "add the stop event to an epoll set",
			         strerror(e));
			return -e;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "cannot allocate memory for %lu connections: %s",
	         cfg->connections, strerror(ENOMEM));
	return -ENOMEM;
}

static void threads_free(struct load *L)
{
	unsigned i;

	for (i = 0; L->threads && i < L->nthreads; i++) {
		struct lthread *t = &L->threads[i];

		if (t->epfd >= 0)
			close(t->epfd);
		free(t->conns);
		free(t->issue_ring);
		free(t->late_ring);
		free(t->rbuf);
	}
	free(L->threads);
}

static void progress_snapshot(const struct load *L, struct load_progress *p, int64_t now)
{
	unsigned i;

	memset(p, 0, sizeof *p);
	p->elapsed_s = (double)(now - L->start_ns) / 1e9;
	for (i = 0; i < L->nthreads; i++) {
		const struct lthread *t = &L->threads[i];

		p->conns_opened += atomic_load_explicit(&t->a_opened, memory_order_relaxed);
		p->messages_echoed += atomic_load_explicit(&t->a_echoed, memory_order_relaxed);
		p->bytes_echoed += atomic_load_explicit(&t->a_bytes_echoed, memory_order_relaxed);
		p->errors += atomic_load_explicit(&t->a_errors, memory_order_relaxed);
	}
}

static void request_stop(struct load *L)
{
	uint64_t one = 1;

	if (write(L->stop_fd, &one, sizeof one) < 0) {
		/* The threads still stop at the deadline or when their work is done. */
	}
}

/* Wait for every thread to end, printing progress once a second. SIGINT
 * and SIGTERM arrive on SIGFD (blocked everywhere): the first one stops the
 * run gracefully, a second one kills. Whether one came. */
static bool wait_threads(struct load *L, int sigfd, load_progress_fn *progress, void *ctx)
{
	unsigned done = 0;
	int64_t next_tick = L->start_ns + NS_PER_S;
	bool signalled = false;

	while (done < L->nthreads) {
		struct pollfd fds[2] = {{.fd = L->done_fd, .events = POLLIN},
		                        {.fd = sigfd, .events = POLLIN}};
		int64_t wait_ms = progress ? (next_tick - pe_now_ns() + NS_PER_MS - 1) / NS_PER_MS :
		                  -1;
		int rc = poll(fds, sigfd >= 0 ? 2 : 1, wait_ms < 0 && progress ? 0 : (int)wait_ms);

		if (rc < 0 && errno != EINTR)
			break; /* cannot happen with valid descriptors; join anyway */
		if (rc > 0 && (fds[0].revents & POLLIN)) {
			uint64_t v;

			if (read(L->done_fd, &v, sizeof v) == (ssize_t)sizeof v)
				done += (unsigned)v;
		}
		if (rc > 0 && sigfd >= 0 && (fds[1].revents & POLLIN)) {
			struct signalfd_siginfo si;
			sigset_t set;

			if (read(sigfd, &si, sizeof si) < 0) {
				/* Nothing to learn: stop all the same. */
			}
			L->stop_ns = pe_now_ns();
			request_stop(L);
			signalled = true;
			sigemptyset(&set);
			sigaddset(&set, SIGINT);
			sigaddset(&set, SIGTERM);
			pthread_sigmask(SIG_UNBLOCK, &set, NULL);
			sigfd = -1;
		}
		if (progress && pe_now_ns() >= next_tick) {
			struct load_progress p;
			int64_t now = pe_now_ns();

			progress_snapshot(L, &p, now);
			progress(ctx, &p);
			/* Ticks missed (the client stopped, SIGSTOP or a busy
			 * machine) are skipped, not caught up one after another. */
			next_tick += NS_PER_S;
			if (next_tick <= now)
				next_tick = now + NS_PER_S;
		}
	}
	return signalled;
}

/* Which of SIGINT and SIGTERM take_one_signal sets back to their default:
 * those the run took from its signalfd (a SIGINT ignored at start stays
 * ignored). */
static volatile sig_atomic_t signals_to_reset[2];

static void take_one_signal(int sig)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};

	(void)sig;
	sigemptyset(&dfl.sa_mask);
	if (signals_to_reset[0])
		sigaction(SIGINT, &dfl, NULL);
	if (signals_to_reset[1])
		sigaction(SIGTERM, &dfl, NULL);
}

/* Unblock SIGINT and SIGTERM (those of SET) after a run that read them from
 * a signalfd: restore the mask OLD. If none was taken yet, the next must not
 * kill the client before its report is out (one already pending, or one
 * that comes while a slow output holds the report up): a handler takes it
 * and sets both back to their default, so that a second kills, whichever
 * it is, as during the run. Both stay blocked while it runs, so that the
 * other one, pending or arriving meanwhile, finds the default. */
static void give_signals_back(const sigset_t *set, bool taken, const sigset_t *old)
{
	if (!taken) {
		struct sigaction sa = {.sa_handler = take_one_signal, .sa_flags = SA_RESTART};
		const int sigs[] = {SIGINT, SIGTERM};

		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
			signals_to_reset[i] = sigismember(set, sigs[i]) == 1;
			if (signals_to_reset[i])
				sigaddset(&sa.sa_mask, sigs[i]);
		}
		for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
			if (signals_to_reset[i])
				sigaction(sigs[i], &sa, NULL);
	}
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* PART over WHOLE, at most 1: the two clocks are read apart, and the
 * monotonic one may be slewed, so a thread busy all the time could come
 * out a hair over. */
static double share(double part, double whole)
{
	if (whole <= 0)
		return 0;
	return part >= whole ? 1.0 : part / whole;
}

/* Whether every message -n asked for was echoed by AT: a stop that came
 * then (a deadline or a signal while the server's closes were awaited)
 * cut no work. */
static bool all_echoed_by(const struct load *L, unsigned started, int64_t at)
{
	uint64_t echoed = 0;

	if (!L->cfg->messages || started < L->nthreads)
		return false;
	for (unsigned i = 0; i < started; i++) {
		if (L->threads[i].last_echo_ns > at)
			return false;
		echoed += atomic_load(&L->threads[i].a_echoed);
	}
	return echoed >= (uint64_t)L->cfg->messages * L->cfg->connections;
}

static void collect(struct load *L, struct load_result *res)
{
	const struct lthread *first = NULL;   /* the thread whose first error came first */
	unsigned i, allowed;
	double busy, quota;

	for (i = 0; i < L->nthreads; i++) {
		struct lthread *t = &L->threads[i];

		res->conns_opened += atomic_load(&t->a_opened);
		res->conns_failed += t->failed;
		res->conns_pending += t->pending;
		res->conns_unserved += t->unserved;
		res->conns_abandoned += t->abandoned;
		res->messages_sent += t->msgs_sent;
		res->messages_echoed += atomic_load(&t->a_echoed);
		res->bytes_sent += t->bytes_sent;
		res->bytes_echoed += atomic_load(&t->a_bytes_echoed);
		res->mismatches += t->mismatches;
		res->early_closes += t->early;
		res->timeouts += t->timeouts;
		res->other_errors += t->other;
		res->slots_late += t->slots_late;
		res->slots_unused += t->slots_unused;
		histogram_merge(&res->latency, &t->hist);
		busy = share(t->cpu_s, t->run_s);
		res->cpu_s += t->cpu_s;
		if (t->run_s > res->run_s)
			res->run_s = t->run_s;
		if (busy > res->busiest)
			res->busiest = busy;
		if (t->first_error[0] != '\0' && (!first || t->first_error_ns < first->first_error_ns))
			first = t;
	}
	if (first)
		snprintf(res->first_error, sizeof res->first_error, "%s", first->first_error);
	res->errors = res->conns_failed + res->mismatches + res->early_closes + res->timeouts +
	              res->other_errors;
	/* The CPUs the threads could use: pe_allowed_cpus() counts those
	 * allowed, and a CPU quota (docker --cpus=0.5) the time they could have
	 * there: not pe_usable_cpus(), whose rounding up would hide a quota of
	 * whole CPUs (--cpus=1 on two) in cpus. */
	allowed = pe_allowed_cpus();
	res->cpus = L->nthreads < allowed ? L->nthreads : allowed;
	quota = pe_cpu_quota();
	res->cpu_quota = quota > 0 && quota < res->cpus ? quota : 0;
	res->cpu_share = share(res->cpu_s, res->run_s * (res->cpu_quota ? res->cpu_quota : res->cpus));
	/* A signal after the deadline cut only the wait for the last echoes;
	 * one after the last echo of -n, only the wait for the closes. */
	res->interrupted = L->stop_ns && (!L->deadline_ns || L->stop_ns < L->deadline_ns) &&
	                   !all_echoed_by(L, L->nthreads, L->stop_ns);
	res->peak_open = atomic_load(&L->peak_open);
}

/* The end of the measured period. A run stops at its deadline, at a
 * signal, or when every connection has done its -n messages (or failed).
 * In the last case the period runs to the last echo, or to a later failure:
 * a connection that timed out ended its work then, and a stalled server's
 * rate must not be taken over its echoes alone. After a deadline or a
 * signal, the messages in flight are awaited and counted (so that sent =
 * echoed), so the period runs on to the last of their echoes; one that
 * fails instead adds nothing, since its wait was not work. The wait for the
 * server's closes that follows is never part of it. */
static int64_t measured_end(const struct load *L, unsigned started, int64_t end)
{
	int64_t stop = L->deadline_ns, last_echo = 0, last_fail = 0;
	unsigned i;

	if (L->stop_ns && (!stop || L->stop_ns < stop))
		stop = L->stop_ns;
	for (i = 0; i < started; i++) {
		if (L->threads[i].last_echo_ns > last_echo)
			last_echo = L->threads[i].last_echo_ns;
		if (L->threads[i].last_fail_ns > last_fail)
			last_fail = L->threads[i].last_fail_ns;
	}
	if (stop && end > stop && !all_echoed_by(L, started, stop))
		return stop > last_echo ? stop : last_echo;
	if (last_fail > last_echo)
		return last_fail;
	return last_echo ? last_echo : end; /* all -n messages done: the last echo ended the work */
}

int client_load_run(const struct client_config *cfg, load_progress_fn *progress, void *ctx,
                    struct load_result *res, char *err, size_t errlen)
{
	struct load L = {.cfg = cfg, .stop_fd = -1, .done_fd = -1};
	struct addrinfo *list;
	char nerr[PE_NET_ERRLEN];
	sigset_t set, old;
	unsigned started = 0, i;
	int sigfd = -1, rc;
	bool signalled = false;
	int64_t end;

	memset(res, 0, sizeof *res);
	histogram_init(&res->latency);
	L.wake_grain_ns = wake_grain(cfg);
	if (cfg->rate)
		load_schedule_init(&L.schedule, cfg->rate);
	L.shift_messages = cfg->size % PATTERN_LEN == 0;
	L.nthreads = cfg->threads ? (unsigned)cfg->threads : pe_usable_cpus();
	if (L.nthreads > cfg->connections)
		L.nthreads = (unsigned)cfg->connections;

	rc = raise_fd_limit(cfg->connections, cfg->connections + 2 * L.nthreads + FD_SPARE,
	                    err, errlen);
	if (rc < 0)
		return rc;
	/* The lookup first: a signal meanwhile ends us as by default, where a
	 * blocked one would wait for a resolver that may take 30 s. */
	if ((rc = check_sources(cfg, err, errlen)) < 0)
		return rc;
	rc = pe_net_lookup_family(cfg->host, cfg->port,
	                          cfg->nsources ? cfg->sources[0].ss_family : AF_UNSPEC, &list, nerr);
	if (rc < 0) {
		snprintf(err, errlen, "%s%s", nerr, cfg->nsources ? " (the family of --source-ip)" : "");
		res->unreachable = true;
		return rc;
	}
	/* Signals go to our signalfd only, from the first connect on: the
	 * threads never see them. Without a signalfd they act as by default.
	 * A SIGINT ignored at start (a background job) stays ignored, as in
	 * poolechod. */
	sigemptyset(&set);
	if (!pe_signal_ignored(SIGINT))
		sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	rc = probe_server(&L, list, 0, sigfd, err, errlen);
	freeaddrinfo(list);
	if (rc == 0)
		rc = check_source_routes(&L, sigfd, err, errlen);
	signalled = rc == -ECANCELED;
	res->unreachable = L.unreachable;
	if (rc < 0)
		goto out;
	L.pattern = pattern_create();
	L.stop_fd = eventfd(0, EFD_CLOEXEC);
	L.done_fd = eventfd(0, EFD_CLOEXEC);
	if (!L.pattern || L.stop_fd < 0 || L.done_fd < 0) {
		rc = L.pattern ? -errno : -ENOMEM;
		snprintf(err, errlen, "cannot set up the run: %s", strerror(-rc));
		goto out;
	}
	rc = threads_setup(&L, err, errlen);
	if (rc < 0)
		goto out;

	L.start_ns = pe_now_ns();
	L.deadline_ns = cfg->duration_ms ? L.start_ns + (int64_t)cfg->duration_ms * NS_PER_MS : 0;
	for (i = 0; i < L.nthreads; i++) {
		rc = -pthread_create(&L.threads[i].tid, NULL, thread_main, &L.threads[i]);
		if (rc < 0) {
			snprintf(err, errlen, "cannot start thread %u of %u: %s", i + 1, L.nthreads,
			         strerror(-rc));
			request_stop(&L);
			break;
		}
		started++;
	}
	if (started == L.nthreads)
		signalled = wait_threads(&L, sigfd, progress, ctx);
	for (i = 0; i < started; i++)
		pthread_join(L.threads[i].tid, NULL);
	end = measured_end(&L, started, pe_now_ns());
	res->elapsed_s = (double)(end - L.start_ns) / 1e9;
	if (started == L.nthreads) {
		rc = 0;
		res->threads = L.nthreads;
		memcpy(res->target, L.target_exact, sizeof res->target);
		collect(&L, res);
	}
out:
	if (sigfd >= 0) {
		close(sigfd);
		give_signals_back(&set, signalled, &old);
	}
	threads_free(&L);
	if (L.stop_fd >= 0)
		close(L.stop_fd);
	if (L.done_fd >= 0)
		close(L.done_fd);
	free(L.pattern);
	return rc;
}
