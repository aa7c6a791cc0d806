/*
 * echo.c -- the blocking echo loop. Bytes are bytes: whatever recv(2)
 * returns is written back in full, looping over short writes and EINTR.
 * The timeouts come from SO_RCVTIMEO/SO_SNDTIMEO, so an idle or stuck
 * client costs no extra system call per message. SO_SNDTIMEO is a slice
 * of the idle timeout, so that a blocked write can tell a client that
 * reads slowly from one that stopped (write_stalled).
 *
 * Two refinements, both measured (see bench/RESULTS.md):
 * - busy polling: while few connections are open, a worker whose socket
 *   is empty spins briefly (recv with MSG_DONTWAIT, yielding the CPU)
 *   before it sleeps. The next message of a ping-pong client usually
 *   arrives within that time, and the cross-CPU wake-up of a sleeping
 *   thread -- the largest cost of a small echo -- is skipped. A client
 *   that lets a spin run out stops being spun for until it hurries again,
 *   so a paced client does not cost a spin per message.
 * - splice: once a read brings PE_ECHO_STREAM_READ bytes (or fills a
 *   smaller buffer) the client is streaming, and on Linux the stream moves
 *   through a pipe with splice(2), never copied through user space. It
 *   busy-polls as the copying loop does (on a peek: splice cannot be told
 *   not to sleep on a socket). One 16 KiB stream ran 13% faster spliced,
 *   but eight on one CPU, where nobody spins, ran up to 14% slower; so by
 *   default (PE_SPLICE_AUTO) a stream is spliced only while busy polling
 *   is allowed (few connections), and copied otherwise.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cloexec_pipe.h"
#include "echo.h"
#include "monotonic.h"
#include "net.h"

#ifdef HAVE_LINUX_SOCKIOS_H
#include <linux/sockios.h> /* SIOCOUTQ */
#elif defined(__linux__) && defined(TIOCOUTQ)
#define SIOCOUTQ TIOCOUTQ /* as <linux/sockios.h> has it; <sys/ioctl.h> has TIOCOUTQ */
#endif

void pe_echo_worker_init(struct pe_echo_worker *w, struct pe_worker_counters *counters)
{
	w->buf = NULL;
	w->size = 0;
	w->pipe[0] = w->pipe[1] = -1;
	w->pipes_held = NULL;
	w->counters = counters;
}

static void close_pipe(struct pe_echo_worker *w)
{
	if (w->pipe[0] >= 0) {
		close(w->pipe[0]);
		close(w->pipe[1]);
		if (w->pipes_held)
			atomic_fetch_sub(w->pipes_held, 1);
	}
	w->pipe[0] = w->pipe[1] = -1;
	w->pipes_held = NULL;
}

void pe_echo_worker_free(struct pe_echo_worker *w)
{
	close_pipe(w);
}

/* With more open connections than CPUs, the CPU has better things to do
 * than spin: another worker is ready to run. */
static int may_spin(const struct pe_echo_policy *p)
{
	return p->busy_poll_us &&
	       atomic_load_explicit(p->active, memory_order_relaxed) <= p->busy_poll_max;
}

/*
 * Whether a client is worth spinning for is kept per connection in *SPIN:
 * a spin that runs out clears it, so a client that pauses longer than the
 * busy-poll time does not cost a spin per message; a wait without a spin
 * that ends within the busy-poll time sets it again.
 */

/* Try to receive without sleeping for up to the busy-poll time. Returns
 * as recv(2) does; -1 with EAGAIN means "nothing yet: block". */
static ssize_t recv_polling(int fd, char *buf, size_t size, const struct pe_echo_policy *p,
                            int flags, int *spin)
{
	long long deadline;
	int last = 0;
	ssize_t n;

	if (!*spin || !may_spin(p)) {
		errno = EAGAIN;
		return -1;
	}
	deadline = pe_now_us() + p->busy_poll_us;
	for (;;) {
		n = recv(fd, buf, size, MSG_DONTWAIT | flags);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return n;
		if (last) {
			*spin = 0;   /* ran out with nothing: this client pauses longer */
			break;
		}
		sched_yield();
		if (!may_spin(p))
			break;   /* more clients came: their workers need the CPU */
		last = pe_now_us() >= deadline;   /* one more look for what came meanwhile */
	}
	errno = EAGAIN;
	return -1;
}

/* Before a wait that may sleep: the time to measure it from, or 0 when the
 * worker spun first (SPIN_TRIED) or may not spin at all. */
static long long wait_begins(const struct pe_echo_policy *p, int spin_tried)
{
	return !spin_tried && may_spin(p) ? pe_now_us() : 0;
}

/* After it, N bytes having come: a client back within the busy-poll time
 * is worth spinning for again. Leaves errno alone when N < 1. */
static void wait_ends(const struct pe_echo_policy *p, long long began, ssize_t n, int *spin)
{
	if (began && n > 0 && pe_now_us() - began <= (long long)p->busy_poll_us)
		*spin = 1;
}

/* How far a blocked write to the client has come. */
struct write_progress {
	long long last;  /* when bytes last moved; 0: none since the write began */
	int unacked;     /* our bytes the client had not acknowledged at the last
	                    look (SIOCOUTQ), -1 when not looked at since LAST */
};

/* Bytes moved by the write itself (a short send or splice): now. */
static void write_moved(struct write_progress *wp)
{
	wp->last = pe_now_us();
	wp->unacked = -1;
}

/* A write to FD, the client, said EAGAIN: its SO_SNDTIMEO slice ran out
 * with nothing written. True once nothing has moved for the whole idle
 * timeout. A write blocked on a full send buffer is woken only once a
 * third or so of it is free, which a slow reader may take longer than the
 * timeout to free; so the bytes the client acknowledged since the last
 * slice count as moved too, or a client reading steadily would be timed
 * out for not reading. */
static int write_stalled(int fd, const struct pe_echo_policy *p, struct write_progress *wp)
{
	long long now = pe_now_us();

	if (!p->idle_us)
		return 0; /* no timeout: EAGAIN cannot mean one (a stray SO_SNDTIMEO) */
	if (!wp->last)
		wp->last = now - pe_echo_send_slice_us(p->idle_us);
#ifdef SIOCOUTQ
	int unacked;

	if (ioctl(fd, SIOCOUTQ, &unacked) == 0) {
		if (wp->unacked >= 0 && unacked < wp->unacked)
			wp->last = now;
		wp->unacked = unacked;
	}
#else
	(void)fd;
#endif
	return now - wp->last >= p->idle_us;
}

/* A wait for the client (a read, or a write's slice) was interrupted:
 * a stop (SIGSTOP, a debugger, a cgroup freezer) ends a recv(2) or send(2)
 * on a socket with a timeout in EINTR, and the next one would wait a whole
 * SO_RCVTIMEO again. So the time is kept across the restarts: true once
 * the wait counted from *SINCE (0: from now, the first interruption) has
 * lasted the idle timeout. */
static int wait_expired(const struct pe_echo_policy *p, long long *since)
{
	long long now = pe_now_us();

	if (!p->idle_us)
		return 0;
	if (!*since)
		*since = now;
	return now - *since >= p->idle_us;
}

/* As write_stalled, for a write interrupted before its slice ran out: the
 * time since bytes last moved counts, never a slice that did not pass. */
static int write_interrupted(int fd, const struct pe_echo_policy *p, struct write_progress *wp)
{
	if (!wp->last) {
		wp->last = pe_now_us();
		wp->unacked = -1;
	}
	return write_stalled(fd, p, wp);
}

/* Send all LEN bytes, or time out once the client has read nothing for
 * the idle timeout: 0, -EAGAIN, or another negative errno. *SENT gets the
 * bytes sent. The clock is read only when a send(2) came back short. */
static int send_all(int fd, const char *buf, size_t len, size_t *sent,
                    const struct pe_echo_policy *p)
{
	struct write_progress wp = {.last = 0, .unacked = -1};
	size_t done = 0;
	int rc = 0;

	while (done < len) {
		ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);

		if (n > 0) {
			done += (size_t)n;
			if (done < len)
				write_moved(&wp);   /* it moved bytes, then waited a slice */
			continue;
		}
		if (n < 0 && errno == EINTR) {
			if (!write_interrupted(fd, p, &wp))
				continue;
			rc = -EAGAIN;
			break;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!write_stalled(fd, p, &wp))
				continue;
			rc = -EAGAIN;
		} else {
			rc = n < 0 ? -errno : -EIO;
		}
		break;
	}
	*sent = done;
	return rc;
}

#ifdef HAVE_SPLICE
static int splice_wanted(const struct pe_echo_policy *p)
{
	return p->splice == PE_SPLICE_ALWAYS || (p->splice == PE_SPLICE_AUTO && may_spin(p));
}

/* Echo the stream through the worker's pipe until the connection ends
 * (returns 0, *END set), or splicing is no longer wanted or finds nothing
 * to move (returns 1, with the pipe empty: go back to copying), or the
 * system cannot splice from this socket (returns 2: copy from now on). */
static int echo_splice(int fd, struct pe_echo_worker *w, const struct pe_echo_policy *p,
                       int *spin, enum pe_echo_end *end, int *err)
{
	size_t in_pipe = 0;
	struct write_progress wp;   /* as in send_all */
	long long waiting = 0;      /* see pe_echo_serve */

	for (;;) {
		int spin_tried = *spin;
		long long began;
		ssize_t n;
		char peek;

		if (!splice_wanted(p))
			return 1;
		/* splice(2) cannot be asked not to sleep on the socket: spin on a
		 * peek instead, as the copying loop spins on its recv(2). A peek
		 * that meets a reset takes its error from the socket, and the
		 * splice after it would see only the end of the stream: the
		 * reset must be said here, or it passes for the client's close. */
		n = recv_polling(fd, &peek, 1, p, MSG_PEEK, spin);
		if (n == 0)
			return 1;   /* the end of the stream: recv(2) sees it */
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			*end = PE_ECHO_ERROR;
			*err = errno;
			return 0;
		}
		began = wait_begins(p, spin_tried);
		n = splice(fd, NULL, w->pipe[1], NULL, 1 << 20, SPLICE_F_MOVE);
		wait_ends(p, began, n, spin);
		if (n == 0) {
			/* End of stream, or an urgent byte next: splice stops at the
			 * urgent mark. recv(2) reads it (SO_OOBINLINE) or sees the end. */
			return 1;
		}
		if (n < 0) {
			if (errno == EINTR && !wait_expired(p, &waiting))
				continue;
			if (errno == EINTR) {
				*end = PE_ECHO_TIMEOUT;
				*err = 0;
				return 0;
			}
			/* Nothing moved: the bytes wait in the socket, and copying
			 * echoes them as well. ENOMEM: no pipe pages to be had now;
			 * EINVAL: a socket splice(2) does not take. */
			if (errno == ENOMEM || errno == EINVAL)
				return 2;
			*end = errno == EAGAIN ? PE_ECHO_TIMEOUT : PE_ECHO_ERROR;
			*err = *end == PE_ECHO_ERROR ? errno : 0;
			return 0;
		}
		waiting = 0;
		pe_counter_add(&w->counters->bytes_in, (uint64_t)n);
		in_pipe = (size_t)n;
		wp.last = 0;
		wp.unacked = -1;
		while (in_pipe > 0) {
			ssize_t m = splice(w->pipe[0], NULL, fd, NULL, in_pipe, SPLICE_F_MOVE);
			if (m < 0) {
				/* splice(2) has no MSG_NOSIGNAL: EPIPE comes with a
				 * SIGPIPE for this thread, which the pool keeps
				 * blocked. It stays pending here until the thread
				 * ends; taking it (sigtimedwait) would take one sent
				 * to the whole process as well. */
				int e = errno;

				if (e == EINTR && !write_interrupted(fd, p, &wp))
					continue;
				if (e == EINTR)
					e = EAGAIN;
				if (e == EAGAIN && !write_stalled(fd, p, &wp))
					continue;
				*end = e == EAGAIN ? PE_ECHO_UNREAD : PE_ECHO_ERROR;
				*err = *end == PE_ECHO_ERROR ? e : 0;
				/* Bytes left in the pipe belong to this client alone:
				 * never let the next connection echo them. */
				close_pipe(w);
				return 0;
			}
			in_pipe -= (size_t)m;
			pe_counter_add_release(&w->counters->bytes_out, (uint64_t)m);
			/* As in send_all: a short splice may have moved its last
			 * bytes just now (a stopped or frozen process interrupts
			 * its wait), so it is timed from now, never earlier. It
			 * can wait two slices, not one: the close may come three
			 * sixteenths of the timeout late, as the documents say. */
			if (in_pipe > 0)
				write_moved(&wp);
		}
	}
}

/* Whether a read of N bytes shows a stream. Not "fills the buffer": with a
 * buffer larger than what a client keeps in flight, no read would. */
static int streaming(const struct pe_echo_worker *w, size_t n)
{
	return n >= (w->size < PE_ECHO_STREAM_READ ? w->size : PE_ECHO_STREAM_READ);
}

/* Count one more pipe if the descriptor limit leaves room for it beyond
 * P->fds_reserved: a worker keeps its pipe between connections, and idle
 * workers' pipes must not take the descriptors the workers' and the
 * queue's clients need. The limit is read each time, as it can be changed
 * from outside (prlimit(1)). */
static int take_pipe_slot(const struct pe_echo_policy *p)
{
	unsigned long long allowed = UINT_MAX;
	struct rlimit rl;
	unsigned held;

	if (!p->pipes_held)
		return 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		allowed = rl.rlim_cur > p->fds_reserved ? (rl.rlim_cur - p->fds_reserved) / 2 : 0;
	held = atomic_load(p->pipes_held);
	do {
		if (held >= allowed)
			return 0;
	} while (!atomic_compare_exchange_weak(p->pipes_held, &held, held + 1));
	return 1;
}

/* Bulk stream: whether a pipe to splice through can be had (else copy). */
static int splice_ready(struct pe_echo_worker *w, const struct pe_echo_policy *p)
{
	if (w->pipe[0] >= 0)
		return 1;
	if (!take_pipe_slot(p))
		return 0;
	if (pe_cloexec_pipe(w->pipe) < 0) {
		if (p->pipes_held)
			atomic_fetch_sub(p->pipes_held, 1);
		return 0;
	}
	w->pipes_held = p->pipes_held;
	return 1;
}
#endif

enum pe_echo_end pe_echo_serve(int fd, struct pe_echo_worker *w, const struct pe_echo_policy *p,
                               int *err)
{
	/* Small messages are read into the stack, whose pages every thread
	 * already has: the worker's own buffer is touched, and so made
	 * resident, only once a read fills this one. */
	char first[PE_ECHO_FIRST_READ];
	char *buf = w->size > sizeof first ? first : w->buf;
	size_t size = w->size > sizeof first ? sizeof first : w->size;
	int spin = 1;   /* this client's messages come soon enough to spin for */
	/* The first interruption of this wait for the client, 0: none. Taken
	 * then, not before each wait, so that the clock is read only when a
	 * stop interrupts; the wait before it (under one timeout) is not
	 * counted, so such a client is timed out within twice the timeout. */
	long long waiting = 0;
#ifdef HAVE_SPLICE
	int may_splice = 1;
#endif

	*err = 0;
	for (;;) {
		int spin_tried = spin;
		ssize_t n = recv_polling(fd, buf, size, p, 0, &spin);
		size_t sent;
		int rc;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			long long began = wait_begins(p, spin_tried);

			n = recv(fd, buf, size, 0);
			wait_ends(p, began, n, &spin);
		}
		if (n == 0)
			return PE_ECHO_EOF;
		if (n < 0) {
			if (errno == EINTR && !wait_expired(p, &waiting))
				continue;
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				return PE_ECHO_TIMEOUT;
			*err = errno;
			return PE_ECHO_ERROR;
		}
		waiting = 0;
		pe_counter_add(&w->counters->bytes_in, (uint64_t)n);
		rc = send_all(fd, buf, (size_t)n, &sent, p);
		pe_counter_add_release(&w->counters->bytes_out, (uint64_t)sent);
		if (rc == -EAGAIN)
			return PE_ECHO_UNREAD;
		if (rc < 0) {
			*err = -rc;
			return PE_ECHO_ERROR;
		}
		if ((size_t)n == size && buf != w->buf) {
			buf = w->buf;   /* more is coming than the stack holds */
			size = w->size;
			continue;
		}
#ifdef HAVE_SPLICE
		if (may_splice && streaming(w, (size_t)n) && splice_wanted(p)) {
			enum pe_echo_end end;

			if (!splice_ready(w, p)) {
				may_splice = 0;   /* no pipe: copy, not a try per read */
				continue;
			}
			rc = echo_splice(fd, w, p, &spin, &end, err);
			if (rc == 0)
				return end;
			may_splice = rc == 1;
		}
#endif
	}
}
