/*
 * server_internal.h -- the server's shared state, seen by server.c (life
 * cycle and workers), listener.c (the accept loop) and stats.c.
 *
 * Locks: srv->lock and the queue's own never nest. Every pe_queue_* call
 * is made without srv->lock, and the queue cannot call back; a change
 * that must hold both takes srv->lock first.
 */
#ifndef POOLECHO_SERVER_INTERNAL_H
#define POOLECHO_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <poolecho/pool.h>
#include <poolecho/queue.h>
#include <poolecho/server.h>

#include "echo.h"
#include "sources.h"
#include "stats.h"

/* With no idle timeout, TCP keepalive gives up a connection whose client
 * answered nothing for 60 s, then 6 probes 10 s apart: about 2 minutes. */
#define PE_KEEPALIVE_IDLE_S 60
#define PE_KEEPALIVE_INTERVAL_S 10
#define PE_KEEPALIVE_COUNT 6

/* A queue item: the accepted socket, and, only when connections are
 * logged or counted per source, the peer's address as accept(2) gave it:
 * a client that resets while queued has none left for getpeername(2).
 * The queue copies item_size bytes, so without either an item is the int. */
struct pe_accepted {
	int fd;
	socklen_t peer_len;  /* 0: not taken */
	union {              /* the listener is IPv4 or IPv6; sockaddr_storage would be 128 bytes */
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
};

/* One per worker, on its own cache lines so counters do not false-share. */
struct pe_worker_slot {
	struct pe_worker_counters counters;
	int fd;                   /* connection being echoed, -1 when idle; guarded by srv->lock */
	int held_fd;              /* the connection the worker holds until it closes it: being
	                             echoed, or still open while its close or drop is logged;
	                             -1 when idle; guarded by srv->lock. A forked child closes
	                             its copy (forked_copy_free) */
	struct pe_echo_worker echo; /* buffer (a part of srv->buffers) and splice pipe */
} __attribute__((aligned(64)));

struct pe_server {
	struct pe_server_config cfg;
	char *bind_address;                  /* our copy of cfg.bind_address */
	int listen_fd;
	int options_inherited;               /* accepted sockets get timeouts, TCP_NODELAY and
	                                        SO_OOBINLINE from listen_fd */
	unsigned long backlog_without_options; /* but these next ones, in the backlog before the
	                                          options were set; the accept loop's alone */
	int wake[2];                         /* pipe: pe_server_stop wakes the accept loop's poll */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	pe_queue *queue;                     /* of struct pe_accepted, item_size bytes each */
	size_t item_size;                    /* sizeof(int), or the whole item with a peer */
	pe_pool *pool;
	struct pe_worker_slot *slots;
	char *buffers;                       /* every worker's buffer, one mapping */
	size_t buffers_len;
	struct pe_listener_counters listener;
	struct pe_echo_policy echo_policy;
	atomic_uint active;                  /* connections being echoed now */
	atomic_uint pipes_held;              /* workers' splice pipes (echo_policy) */

	pthread_mutex_t lock;
	pthread_cond_t drained;              /* signalled as connections finish during a stop */
	unsigned long outstanding;           /* handed to the queue and not yet finished */
	struct pe_sources sources;           /* outstanding ones per client address, when
	                                        cfg.per_source is set; guarded by lock */
	/* A stop's three stages, each set once, under lock: */
	int stopping;                        /* a stop was asked for: the grace runs */
	int stop_now;                        /* ... with no grace (pe_server_stop_now) */
	int hard_stop;                       /* the grace is over: open sockets are shut
	                                        down, queued ones closed unserved */
	struct timespec stop_time;           /* CLOCK_MONOTONIC when stopping began */
	atomic_int stop_requested;           /* read by the accept loop without the lock */
	atomic_int run_held_fd;              /* a connection the run thread (the accept loop,
	                                        or the stop emptying the queue) closes after
	                                        it logs a refusal or a drop, from before that
	                                        line until close(), or hands over after a
	                                        count of accept errors; -1 otherwise. Written by
	                                        that thread alone (or, for a server never run,
	                                        by pe_server_destroy's); a forked child closes
	                                        its copy (forked_copy_free) */

	pid_t owner;                         /* the process that created it (see forked_copy) */
	int run_claimed;                     /* a run began or was started: guarded by lock */
	pthread_t run_thread;                /* pe_server_start()'s, until waited for */
	int run_started, run_rc;             /* the caller's: pe_server_start/wait/destroy */
};

void pe_server_logf(pe_server *srv, enum pe_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline int pe_server_logs(const pe_server *srv, enum pe_log_level level)
{
	return srv->cfg.log && level <= srv->cfg.log_level;
}

/* Count ACC as outstanding before the accept loop queues it: 0, or, with
 * cfg.per_source set, -EBUSY when its address holds that many already
 * (*HELD says how many) and nothing was counted (or pe_sources_take's
 * -ENOSPC, which its sizing rules out). Cancel undoes it when it could not
 * be queued, or when the stop takes it off the queue unserved. */
int pe_server_hand_off_begin(pe_server *srv, const struct pe_accepted *acc, unsigned *held);
void pe_server_hand_off_cancel(pe_server *srv, const struct pe_accepted *acc);
/* At -v, "closed ADDR: dropped unserved, the server stopped" for ACC. */
void pe_server_log_dropped(pe_server *srv, const struct pe_accepted *acc);

/* The run thread holds FD, which it closes once it has said why (a
 * refusal at WARN, a drop at -v), or hands over once a count of accept
 * errors is said (-1 then lets go of it): a log line may take long, and a
 * child forked meanwhile must still find FD to close its copy. Then close
 * FD, let go of first, so that a child forked after never closes a number
 * taken again. */
void pe_server_hold(pe_server *srv, int fd);
void pe_server_close_held(pe_server *srv, int fd);

/* Give connection FD the options it would inherit from the listening
 * socket: the idle timeout, TCP_NODELAY and SO_OOBINLINE. */
void pe_server_set_connection_options(const pe_server *srv, int fd);

#endif /* POOLECHO_SERVER_INTERNAL_H */
