/*
 * client_pipe.c -- pipe mode. One poll(2) loop moves input to the socket,
 * the echo to the output, and compares each echoed byte with the one sent,
 * so a large input never deadlocks with the server's echo.
 *
 * One ring buffer holds input bytes from the moment they are read until
 * their echo has been verified and written out: the echo is the same bytes,
 * so the output is written from the ring, not from what came back. On a
 * failure the verified bytes still in the ring are written out before
 * returning, so the output is always the whole verified prefix.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client_pipe.h"
#include "monotonic.h"
#include "net.h"
#include "parse.h"

#define RING_SIZE (1u << 20) /* bytes read but not yet echoed and written out */
#define RING_MASK (RING_SIZE - 1)
#define RECV_CHUNK (64u * 1024)

struct pipe {
	int in, out, sock;
	unsigned char *ring;
	unsigned char *chunk;
	/* Stream offsets: written out <= verified <= sent <= read from input. */
	uint64_t rd, snt, ver, outd;
	bool in_open, shut, sock_eof;
	bool out_failed; /* writing the output failed: no flush after a failure */
	int64_t block_ms, block_end_ms; /* the last write(2) to the output that blocked long */
	int64_t out_taken_ms; /* when the output last took bytes, or was last owed none */
	char peer[PE_NET_ADDRLEN];
	struct pipe_result *res;
};

static int fail(struct pipe *p, enum pipe_failure why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct pipe *p, enum pipe_failure why, const char *fmt, ...)
{
	va_list ap;

	p->res->failure = why;
	va_start(ap, fmt);
	vsnprintf(p->res->message, sizeof p->res->message, fmt, ap);
	va_end(ap);
	return -1;
}

/* A slow standard output holds the client up: blocked in write(2) it
 * neither sends nor reads, and with its ring full of bytes the output has
 * not taken it reads no more input, so it sends nothing. A server's idle
 * timeout (such as poolechod's -t) may then close it. When the close shows
 * up during such a hold, or right after, the message says so. */
#define OUTPUT_HINT_MS 500

static int early_close(struct pipe *p, const char *how)
{
	const bool unsent = p->in_open || p->snt < p->rd;
	const int64_t now = pe_now_ms();
	int64_t held = p->outd < p->ver ? now - p->out_taken_ms : 0;
	char hint[200] = "";

	if (p->block_ms > held && now - p->block_end_ms <= OUTPUT_HINT_MS)
		held = p->block_ms;
	if (held >= OUTPUT_HINT_MS)
		snprintf(hint, sizeof hint, "; a slow standard output had held the client up for "
		         "%.3f s, and an idle timeout of the server's may have closed it",
		         (double)held / 1000.0);
	return fail(p, PIPE_EARLY_CLOSE,
	            "early close: %s %s after echoing %llu of %llu bytes sent%s%s", p->peer, how,
	            (unsigned long long)p->ver, (unsigned long long)p->snt,
	            unsent ? " (input not yet all sent)" : "", hint);
}

/* The contiguous part of [from, to) inside the ring. */
static size_t ring_span(uint64_t from, uint64_t to)
{
	size_t pos = (size_t)(from & RING_MASK);
	uint64_t len = to - from;

	return len < RING_SIZE - pos ? (size_t)len : RING_SIZE - pos;
}

static int input_read(struct pipe *p)
{
	size_t pos = (size_t)(p->rd & RING_MASK);
	size_t room = RING_SIZE - (size_t)(p->rd - p->outd);
	ssize_t n;

	if (room > RING_SIZE - pos)
		room = RING_SIZE - pos;
	n = read(p->in, p->ring + pos, room);
	if (n > 0) {
		p->rd += (uint64_t)n;
	} else if (n == 0) {
		p->in_open = false;
	} else if (errno != EINTR && errno != EAGAIN) {
		return fail(p, PIPE_IO, "cannot read standard input: %s", strerror(errno));
	}
	return 0;
}

static int verify(struct pipe *p, const unsigned char *got, size_t n);

/* The connection is gone, found on the sending side (a reset, a close):
 * what the server echoed before is still in the receive queue. Verify it,
 * so that the output and the message count it. -1 when it differs. */
static int sock_drain(struct pipe *p)
{
	for (;;) {
		ssize_t n = recv(p->sock, p->chunk, RECV_CHUNK, MSG_DONTWAIT);

		if (n > 0 && verify(p, p->chunk, (size_t)n) < 0)
			return -1;
		if (n <= 0 && !(n < 0 && errno == EINTR))
			return 0;
	}
}

/* HOW the server ended the connection, as sock_send or shutdown found it. */
static int send_side_close(struct pipe *p, const char *how)
{
	if (sock_drain(p) < 0)
		return -1;
	return early_close(p, how);
}

/* The system gave the connection up (errno E, found by CALL): the server
 * went silent or away, which is a timeout, not an echo gone wrong. Only
 * --timeout=0, or one longer than those, lets it come. */
static int system_timeout(struct pipe *p, const char *call, int e)
{
	return fail(p, PIPE_TIMEOUT, "timed out: %s stopped acknowledging and the system gave "
	            "the connection up (%s: %s) (%llu of %llu bytes sent were echoed)", p->peer,
	            call, strerror(e), (unsigned long long)p->ver,
	            (unsigned long long)p->snt);
}

static int sock_send(struct pipe *p)
{
	ssize_t n = send(p->sock, p->ring + (p->snt & RING_MASK), ring_span(p->snt, p->rd),
	                 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n >= 0) {
		p->snt += (uint64_t)n;
		return 0;
	}
	if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	if (errno == EPIPE || errno == ECONNRESET)
		return send_side_close(p, errno == EPIPE ? "closed the connection"
		                                         : "reset the connection");
	if (pe_net_gave_up(errno))
		return system_timeout(p, "send", errno);
	return fail(p, PIPE_IO, "cannot send to %s: %s", p->peer, strerror(errno));
}

/* Compare N received bytes with the ring from p->ver on. Those up to what
 * was sent are compared even when more came, so that the verified prefix
 * does not depend on how the echo was split into reads. */
static int verify(struct pipe *p, const unsigned char *got, size_t n)
{
	uint64_t received = p->ver + n;
	size_t done = 0, due = n > p->snt - p->ver ? (size_t)(p->snt - p->ver) : n;

	if (p->outd == p->ver)
		p->out_taken_ms = pe_now_ms(); /* the output was owed nothing until now */
	while (done < due) {
		size_t span = ring_span(p->ver, p->ver + (due - done));
		const unsigned char *want = p->ring + (p->ver & RING_MASK);

		if (memcmp(want, got + done, span) != 0) {
			size_t i = 0;

			while (want[i] == got[done + i])
				i++;
			p->ver += i;
			return fail(p, PIPE_MISMATCH, "echo from %s differs at byte offset %llu: "
			            "sent 0x%02x, received 0x%02x", p->peer,
			            (unsigned long long)p->ver, want[i], got[done + i]);
		}
		p->ver += span;
		done += span;
	}
	if (due < n)
		return fail(p, PIPE_MISMATCH, "%s sent back more bytes than it was sent: "
		            "%llu bytes sent, at least %llu received", p->peer,
		            (unsigned long long)p->snt, (unsigned long long)received);
	return 0;
}

static int sock_recv(struct pipe *p, int64_t *progress)
{
	ssize_t n = recv(p->sock, p->chunk, RECV_CHUNK, MSG_DONTWAIT);

	if (n > 0) {
		*progress = pe_now_ms();
		return verify(p, p->chunk, (size_t)n);
	}
	if (n == 0) {
		p->sock_eof = true;
		if (!p->shut || p->ver < p->snt)
			return early_close(p, "closed the connection");
		return 0;
	}
	if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	if (errno == ECONNRESET)
		return early_close(p, p->shut && p->ver == p->snt ?
		                   "reset the connection instead of closing it" :
		                   "reset the connection");
	if (pe_net_gave_up(errno))
		return system_timeout(p, "recv", errno);
	return fail(p, PIPE_IO, "cannot receive from %s: %s", p->peer, strerror(errno));
}

static int output_write(struct pipe *p)
{
	ssize_t n = write(p->out, p->ring + (p->outd & RING_MASK), ring_span(p->outd, p->ver));

	if (n > 0) {
		p->outd += (uint64_t)n;
	} else if (errno != EINTR && errno != EAGAIN) {
		p->out_failed = true;
		return fail(p, PIPE_IO, "cannot write standard output: %s", strerror(errno));
	}
	return 0;
}

static int flush_failed(struct pipe *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int flush_failed(struct pipe *p, const char *fmt, ...)
{
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->res->output_error, sizeof p->res->output_error, fmt, ap);
	va_end(ap);
	len = strlen(p->res->output_error);
	snprintf(p->res->output_error + len, sizeof p->res->output_error - len,
	         " (%llu of %llu verified bytes written)", (unsigned long long)p->outd,
	         (unsigned long long)p->ver);
	return -1;
}

/* After a failure, write out the verified bytes still in the ring. The
 * output gets --timeout to take each part, as the server gets it to send
 * one: nobody may be reading it any more. A blocking pipe or terminal is
 * given at most PIPE_BUF bytes once poll(2) says it has room, which a pipe
 * takes without blocking, so write(2) does not hold us past the deadline. */
static int output_flush(struct pipe *p, unsigned long timeout_ms)
{
	int64_t progress = pe_now_ms();

	while (p->outd < p->ver) {
		struct pollfd pfd = {.fd = p->out, .events = POLLOUT};
		size_t span = ring_span(p->outd, p->ver);
		int64_t timeout = -1;
		ssize_t n;
		int rc;

		if (timeout_ms) {
			timeout = progress + (int64_t)timeout_ms - pe_now_ms();
			if (timeout <= 0)
				return flush_failed(p, "cannot write standard output: blocked for "
				                    "%.3f s", (double)timeout_ms / 1000.0);
		}
		rc = poll(&pfd, 1, (int)timeout);
		if (rc < 0 && errno != EINTR)
			return flush_failed(p, "cannot write standard output: poll: %s",
			                    strerror(errno));
		if (rc <= 0)
			continue;
		/* POLLERR, POLLHUP and POLLNVAL too: the write says why. */
		if (span > PIPE_BUF)
			span = PIPE_BUF;
		n = write(p->out, p->ring + (p->outd & RING_MASK), span);
		if (n > 0) {
			p->outd += (uint64_t)n;
			progress = pe_now_ms();
		} else if (n < 0 && errno != EINTR && errno != EAGAIN) {
			return flush_failed(p, "cannot write standard output: %s", strerror(errno));
		}
	}
	return 0;
}

/* A poll(2) timeout from LEFT, the milliseconds left of a deadline: once
 * it has passed, 0, for one last look before a timeout is declared, as a
 * client not scheduled for a while may come back to what came meanwhile. */
static int64_t last_look(int64_t left)
{
	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : left;
}

/* The server owes us something: an echo, or its close after our half-close. */
static bool server_owes(const struct pipe *p)
{
	return !p->sock_eof && (p->snt > p->ver || p->snt < p->rd || p->shut);
}

static int pipe_loop(struct pipe *p, unsigned long timeout_ms)
{
	int64_t progress = pe_now_ms();
	bool owed = false, owes;

	for (;;) {
		struct pollfd fds[3];
		int64_t timeout = -1;
		uint64_t before = p->snt;
		int rc;

		if (!p->in_open && p->snt == p->rd && !p->shut) {
			/* Half-close: an RFC 862 server echoes the rest, then closes. */
			if (shutdown(p->sock, SHUT_WR) < 0) {
				/* ENOTCONN: a reset came in. */
				if (errno == ENOTCONN)
					return send_side_close(p, "dropped the connection");
				return fail(p, PIPE_IO, "cannot half-close the connection to %s "
				            "(shutdown): %s", p->peer, strerror(errno));
			}
			p->shut = true;
			progress = pe_now_ms();
		}
		if (p->sock_eof && p->outd == p->ver)
			return 0;

		fds[0].fd = p->in_open && p->rd - p->outd < RING_SIZE ? p->in : -1;
		fds[0].events = POLLIN;
		fds[1].fd = p->sock_eof ? -1 : p->sock;
		fds[1].events = (short)(POLLIN | (p->snt < p->rd ? POLLOUT : 0));
		fds[2].fd = p->outd < p->ver ? p->out : -1;
		fds[2].events = POLLOUT;

		/* The clock runs only while the server owes us something, from the
		 * moment it started to: a quiet input (an idle user, a slow
		 * producer) is nobody's fault. */
		owes = server_owes(p);
		if (owes && !owed)
			progress = pe_now_ms();
		owed = owes;
		if (timeout_ms && owed)
			timeout = last_look(progress + (int64_t)timeout_ms - pe_now_ms());
		rc = poll(fds, 3, (int)timeout);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return fail(p, PIPE_IO, "cannot wait for %s or the input (poll): %s", p->peer,
			            strerror(errno));
		}
		/* Time is up: only the server's answer (an echo, its close, an
		 * error) saves it; input, or room to send more, is none. */
		if (timeout == 0 && !(fds[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    p->shut && p->ver == p->snt)
			return fail(p, PIPE_TIMEOUT, "timed out: %s echoed all %llu bytes but did not "
			            "close the connection within %.3f s of the client's half-close or "
			            "of the last echo, whichever came later", p->peer,
			            (unsigned long long)p->snt, (double)timeout_ms / 1000.0);
		if (timeout == 0 && !(fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
			return fail(p, PIPE_TIMEOUT, "timed out: %s was silent for %.3f s "
			            "(%llu of %llu bytes sent were echoed)", p->peer,
			            (double)timeout_ms / 1000.0, (unsigned long long)p->ver,
			            (unsigned long long)p->snt);
		if (rc == 0)
			continue;

		if (fds[0].revents && input_read(p) < 0)
			return -1;
		if ((fds[1].revents & POLLOUT) && sock_send(p) < 0)
			return -1;
		if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) && sock_recv(p, &progress) < 0)
			return -1;
		/* A blocking output (a full pipe, a slow terminal) may hold us in
		 * write(2); the server could not be heard meanwhile, so that time
		 * does not count against it. */
		if (fds[2].revents) {
			int64_t t0 = pe_now_ms(), t1;
			uint64_t outd = p->outd;

			if (output_write(p) < 0)
				return -1;
			t1 = pe_now_ms();
			progress += t1 - t0;
			if (p->outd != outd)
				p->out_taken_ms = t1;
			if (t1 - t0 >= OUTPUT_HINT_MS) {
				p->block_ms = t1 - t0;
				p->block_end_ms = t1;
			}
		}
		if (p->snt != before)
			progress = pe_now_ms();
	}
}

/* Whether IN (whose status is SI), a regular file with bytes still to
 * read, is the file OUT writes to (poolecho < f >> f, or <> f >&0): the
 * echo written there would be read back as input, sent and written again,
 * the file growing until the disk is full, or it would overwrite the input
 * not yet read. cat(1) refuses the same: "input file is output file". */
static bool input_is_output(int in, const struct stat *si, int out)
{
	struct stat so;
	off_t pos;

	if (!S_ISREG(si->st_mode) || fstat(out, &so) < 0 || si->st_dev != so.st_dev ||
	    si->st_ino != so.st_ino)
		return false;
	pos = lseek(in, 0, SEEK_CUR);
	return pos >= 0 && pos < si->st_size;
}

int client_pipe_run(const struct client_config *cfg, int in_fd, int out_fd,
                    struct pipe_result *res)
{
	struct pipe p = {.in = in_fd, .out = out_fd, .sock = -1, .in_open = true, .res = res};
	char err[PE_NET_ERRLEN];
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	struct stat st;
	const int one = 1;
	int rc, in_flags = fcntl(in_fd, F_GETFL), out_flags = fcntl(out_fd, F_GETFL);

	memset(res, 0, sizeof *res);
	/* Closed (<&-, left open for writing by pe_stdfds_guard): said before
	 * the connect, so that a server that is down does not change the
	 * status (3) of what is the caller's error (1). */
	if (in_flags < 0 || (in_flags & O_ACCMODE) == O_WRONLY)
		return fail(&p, PIPE_IO, "cannot read standard input: %s",
		            strerror(in_flags < 0 ? errno : EBADF));
	/* Closed (>&-, left open for reading by pe_stdfds_guard): said now,
	 * not at the first byte echoed, which an empty input never has. */
	if (out_flags < 0 || (out_flags & O_ACCMODE) == O_RDONLY)
		return fail(&p, PIPE_IO, "cannot write standard output: %s",
		            strerror(out_flags < 0 ? errno : EBADF));
	/* Also the caller's errors, found before the connect for the same
	 * reason: a directory, which read(2) would refuse only once connected,
	 * and the file standard output writes to. */
	if (fstat(in_fd, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return fail(&p, PIPE_IO, "cannot read standard input: %s", strerror(EISDIR));
		if (input_is_output(in_fd, &st, out_fd))
			return fail(&p, PIPE_IO, "cannot read standard input: it is the file "
			            "standard output writes to (input file is output file), where "
			            "the echo would be read back as input");
	}
	p.sock = pe_net_connect_timeout(cfg->host, cfg->port, cfg->timeout_ms, err);
	/* The server answered, so it is not unreachable: an early close, as it
	 * would be had the reset come a moment later, after the connect. */
	if (p.sock == -ECONNRESET)
		return fail(&p, PIPE_EARLY_CLOSE, "early close: %s, before any byte was sent", err);
	if (p.sock < 0)
		return fail(&p, PIPE_CONNECT, "%s", err);
	if (getpeername(p.sock, (struct sockaddr *)&ss, &sslen) == 0) {
		pe_net_format((struct sockaddr *)&ss, sslen, p.peer);
	} else {
		/* HOST as typed, written as pe_net_format would: its scope may be
		 * an interface's name, control characters and all. */
		char host[PE_NET_ADDRLEN - 16];
		bool v6 = strchr(cfg->host, ':') != NULL;

		snprintf(p.peer, sizeof p.peer, "%s%s%s:%s", v6 ? "[" : "",
		         pe_parse_shown(cfg->host, strlen(cfg->host), host, sizeof host),
		         v6 ? "]" : "", cfg->port);
	}
	/* A byte the server sends as urgent data is read in its place and
	 * checked: recv(2) would otherwise skip it, and pass an extra one. */
	if (setsockopt(p.sock, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one) < 0) {
		rc = fail(&p, PIPE_IO, "cannot set SO_OOBINLINE on the connection to %s: %s",
		          p.peer, strerror(errno));
		close(p.sock);
		return rc;
	}

	p.ring = malloc(RING_SIZE);
	p.chunk = malloc(RECV_CHUNK);
	if (!p.ring || !p.chunk)
		rc = fail(&p, PIPE_IO, "cannot allocate buffers: %s", strerror(ENOMEM));
	else
		rc = pipe_loop(&p, cfg->timeout_ms);
	/* The server has had its say; it need not wait for our output. */
	close(p.sock);
	if (rc < 0 && !p.out_failed)
		(void)output_flush(&p, cfg->timeout_ms); /* RES says how it went */
	free(p.ring);
	free(p.chunk);
	return rc;
}
