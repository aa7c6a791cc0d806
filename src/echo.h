/*
 * echo.h -- the per-connection echo loop a worker runs: read, write back
 * every byte, until the client closes, an error, or the idle timeout.
 */
#ifndef POOLECHO_ECHO_H
#define POOLECHO_ECHO_H

#include <stdatomic.h>
#include <stddef.h>

#include <poolecho/server.h>

#include "stats.h"

enum pe_echo_end {
	PE_ECHO_EOF,      /* the client closed (or half-closed) and got everything back */
	PE_ECHO_TIMEOUT,  /* nothing arrived for the idle timeout */
	PE_ECHO_ERROR,    /* reset, or another socket error: *ERR holds the errno */
	PE_ECHO_UNREAD    /* the echo could not be written for the idle timeout */
};

/* A connection's reads go to a buffer this big on the worker's stack until
 * one fills it; then to the worker's own buffer. */
#define PE_ECHO_FIRST_READ 1024

/* A read this big (or of the whole buffer, when that is smaller) tells that
 * the client is streaming. */
#define PE_ECHO_STREAM_READ (64 * 1024)

/* What a worker keeps from one connection to the next. */
struct pe_echo_worker {
	char *buf;
	size_t size;
	int pipe[2];      /* for splice(2), made on the first bulk connection; -1 until then */
	atomic_uint *pipes_held;   /* the count PIPE is in, while it is open */
	struct pe_worker_counters *counters;
};

/* Shared by all workers, read-only but for the counts *active and *pipes_held. */
struct pe_echo_policy {
	unsigned busy_poll_us;    /* spin this long on an empty socket before sleeping; 0 = never */
	unsigned busy_poll_max;   /* ... but only while at most this many connections are open */
	atomic_uint *active;      /* connections open now */
	enum pe_splice splice;    /* when to echo bulk streams with splice(2), where the system has it */
	long long idle_us;        /* the idle timeout; 0 = never */
	atomic_uint *pipes_held;  /* splice pipes the workers keep; NULL: no limit on them */
	unsigned long long fds_reserved; /* ... which leave this many descriptors below
	                                    RLIMIT_NOFILE (PE_SERVER_SPARE_FDS) */
};

/* The idle timeout's SO_SNDTIMEO: a blocked write wakes this often to see
 * whether its client has read anything for the whole timeout. A write
 * that moved a few bytes before it blocked would otherwise get a fresh
 * timeout for each call, and a client that stopped reading would keep its
 * worker for twice the timeout (three times when spliced). */
#define PE_ECHO_SEND_SLICES 16
static inline long long pe_echo_send_slice_us(long long idle_us)
{
	if (idle_us <= 0)
		return 0; /* no timeout: writes block as long as they must */
	return idle_us / PE_ECHO_SEND_SLICES > 0 ? idle_us / PE_ECHO_SEND_SLICES : 1;
}

void pe_echo_worker_init(struct pe_echo_worker *w, struct pe_worker_counters *counters);
void pe_echo_worker_free(struct pe_echo_worker *w);

/* Echo FD until it ends. FD must be blocking, its SO_RCVTIMEO the idle
 * timeout and its SO_SNDTIMEO pe_echo_send_slice_us() of it. W->buf must
 * hold W->size bytes. */
enum pe_echo_end pe_echo_serve(int fd, struct pe_echo_worker *w, const struct pe_echo_policy *p,
                               int *err);

#endif /* POOLECHO_ECHO_H */
