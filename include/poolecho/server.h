/*
 * poolecho/server.h -- the echo server core: a listening socket, an accept
 * loop, a bounded queue of accepted sockets and a pool of workers that echo
 * them (RFC 862), one connection per worker at a time.
 *
 * Typical use: pe_server_config_init(), set what differs, pe_server_create()
 * (binds and listens, starts the workers), pe_server_run() on some thread
 * (or pe_server_start()) until another thread calls pe_server_stop(), then
 * (pe_server_wait() and) pe_server_destroy().
 * Nothing here prints or exits: errors are negative errno values and events
 * go to the optional log callback.
 */
#ifndef POOLECHO_SERVER_H
#define POOLECHO_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <poolecho/visibility.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pe_server pe_server;

/* What the accept loop does when the queue is full and every worker is
 * busy. A worker woken for a queued client counts as idle: the accept
 * loop waits the moment it takes to run, so that a burst of clients is
 * not rejected while workers wait. */
enum pe_overflow {
	PE_OVERFLOW_WAIT,   /* stop accepting until a slot frees: the kernel backlog holds clients */
	PE_OVERFLOW_REJECT  /* accept and close at once, counting a rejection */
};

/* When a worker echoes a bulk stream (a read of 64 KiB, or of a whole
 * smaller buffer) with splice(2) through a pipe instead of copying it
 * (Linux only). */
enum pe_splice {
	PE_SPLICE_NEVER,   /* always copy */
	PE_SPLICE_ALWAYS,  /* splice every bulk stream */
	PE_SPLICE_AUTO     /* splice while busy polling is on and no more connections are
	                      open than there are CPUs the server may use, copy otherwise:
	                      the faster of the two in poolecho's benchmarks */
};

/* Descriptors a server leaves to its process beyond one per worker and per
 * queue slot (its listener and stop pipe, standard streams, a log). A
 * worker takes a splice pipe, two descriptors, only when the descriptor
 * limit (RLIMIT_NOFILE, read each time) has room for it beyond workers +
 * queue capacity + PE_SERVER_SPARE_FDS; else it copies. Pipes kept by idle
 * workers would otherwise fill the limit, and clients could not be
 * accepted. A pipe taken is kept between connections until
 * pe_server_destroy(), even if the limit is lowered meanwhile. */
#define PE_SERVER_SPARE_FDS 32

enum pe_log_level { PE_LOG_ERROR, PE_LOG_WARN, PE_LOG_INFO, PE_LOG_DEBUG };

/* Receives one line of text per event (no newline: a control character,
 * as in a bind_address given one, is shown as \xNN), of at most 511 bytes
 * (a longer one is cut between UTF-8 characters and escapes, and ends in
 * "..."), in a buffer that lives only until the callback returns: copy
 * what is kept.
 * Called from any of the server's threads, so it must be thread-safe, and on the
 * caller's thread in pe_server_create(), whose errors it explains before
 * there is a server (a callback that asks for the stats must not take one
 * for granted), and in pe_server_stop(), pe_server_stop_now() and
 * pe_server_destroy(). It may call pe_server_stats(), pe_server_stop(),
 * pe_server_stop_now(), pe_server_port() and pe_server_address(); never
 * pe_server_destroy(). The run thread logs as the run ends, while
 * pe_server_wait() or pe_server_destroy() joins it: hold no lock the
 * callback takes around those calls, nor around a stop. */
typedef void pe_log_fn(void *ctx, enum pe_log_level level, const char *message);

struct pe_server_config {
	const char *bind_address;  /* numeric address or host name, without brackets or a port
	                              ("::1", not "[::1]:80": -EINVAL); NULL = all (:: dual-stack,
	                              else 0.0.0.0): reachable from other hosts, so a test wants
	                              "127.0.0.1" or "::1", with port 0. One address is listened
	                              on: an IPv6 one (:: too, but not ::ffff:127.0.0.1) takes
	                              IPv6 clients only, and a host name with several (localhost
	                              may be 127.0.0.1 and ::1) is served on the first that
	                              binds, with a warning in the log */
	unsigned port;             /* 0 to 65535, 0 = any free one: see pe_server_port() */
	unsigned workers;          /* worker threads, 1 to PE_MAX_WORKERS */
	size_t queue_capacity;     /* accepted sockets waiting for a worker, >= 1, and few enough
	                              that the queue's size in bytes fits a size_t */
	int backlog;               /* listen(2) backlog, >= 1 */
	enum pe_overflow overflow;
	unsigned per_source;       /* at most this many connections at once (queued or echoed)
	                              from one client address, an IPv4 one and its IPv4-mapped
	                              IPv6 form counted as one; more are accepted and closed at
	                              once, counted in the stats as rejected and source_limited;
	                              0 = no limit (the default). workers + queue_capacity or
	                              more limits nothing (no more are held at once), and
	                              is not warned of */
	unsigned idle_timeout_ms;  /* close a connection silent (or not reading) this long (at most
	                              a quarter longer); 0 = never, and TCP keepalive then closes
	                              one whose client's host is gone with nothing in
	                              flight (about 2 minutes; mid-echo, the kernel's
	                              retransmission limit: tcp_retries2, many minutes) */
	unsigned grace_ms;         /* on pe_server_stop(), let open and queued connections go
	                              on this long, then close them; 0 = at once */
	size_t buffer_size;        /* per-worker echo buffer, >= 1 bytes: all reserved at create as
	                              address space, resident only as far as reads reach */
	size_t stack_size;         /* per-worker stack, bytes, raised to PTHREAD_STACK_MIN (the
	                              program's static TLS, which glibc takes from a thread's
	                              stack, comes on top); 0 = the system default. The log
	                              callback runs on it */
	unsigned busy_poll_us;     /* while no more connections are open than there are CPUs the
	                              server may use (whole ones, under a cgroup CPU quota),
	                              spin this long on an empty socket before
	                              sleeping (not again for a client that let a spin run out,
	                              until it hurries); 0 = never spin. At most a sixteenth of
	                              the idle timeout: see pe_server_busy_poll_us() */
	enum pe_splice splice;     /* default PE_SPLICE_AUTO */
	int batch_scheduling;      /* Linux: workers run as SCHED_BATCH, so a woken worker does
	                              not preempt a running one (a context switch saved per
	                              message); default 1. Only from SCHED_OTHER: a caller of
	                              pe_server_create() with another policy gives it to the
	                              workers. A SCHED_OTHER caller runs as SCHED_BATCH while
	                              it creates them, then as before (see pe_pool_config); 0
	                              leaves every thread's policy alone */
	pe_log_fn *log;            /* NULL = silent */
	void *log_ctx;
	enum pe_log_level log_level; /* PE_LOG_ERROR to PE_LOG_DEBUG: events above it are not
	                                even formatted */
};

/* pe_server_config_init() sets the defaults. The PE_DEFAULT_* macros are
 * those of the headers a program was built with: start from
 * pe_server_config_init(), not from the macros, to get the running
 * library's. */
#define PE_DEFAULT_PORT 9999u
#define PE_DEFAULT_WORKERS 128u
#define PE_MAX_WORKERS 65536u
#define PE_DEFAULT_QUEUE 256u
#define PE_DEFAULT_BACKLOG 4096   /* Linux caps it at net.core.somaxconn */
#define PE_DEFAULT_IDLE_TIMEOUT_MS 60000u
#define PE_DEFAULT_GRACE_MS 5000u
#define PE_DEFAULT_BUFFER_SIZE (128u * 1024u)
#define PE_DEFAULT_STACK_SIZE (128u * 1024u)
#define PE_DEFAULT_BUSY_POLL_US 100u

PE_API void pe_server_config_init(struct pe_server_config *cfg);

/* Bind, listen and start the workers. CFG is copied, bind_address too: neither
 * need outlive the call; the log callback and log_ctx are used until
 * pe_server_destroy(). -EINVAL for a NULL argument or a bad setting: the
 * log (at PE_LOG_ERROR) names the field, its value and what it may be, or
 * why a bind_address does not resolve, or that the system takes no thread
 * stack of stack_size. The errno of a system call that failed, logged with
 * the call: socket, bind or listen (e.g. -EADDRINUSE), or the stop pipe's
 * (e.g. -EMFILE). -ENOMEM when the workers' buffers (or other memory)
 * cannot be had, -EAGAIN when the system refused a worker thread (as
 * glibc's does for a stack_size too large to map); these last two are not
 * logged, as the caller knows which setting to lower. A mutex or condition
 * variable the system could not make (POSIX allows it; glibc's never fail)
 * gives its errno, logged, but for a queue's without memory: -ENOMEM,
 * unlogged. On failure nothing is left open. */
PE_API int pe_server_create(pe_server **out, const struct pe_server_config *cfg);

/* The same on LISTEN_FD, a TCP socket of IPv4 or IPv6 on which listen(2)
 * was called (one a service manager passed, say: systemd's socket
 * activation): CFG's bind_address, port and backlog are neither used nor
 * checked. On success the server owns it, makes it close-on-exec and
 * nonblocking, sets on it the options its connections inherit (and, best
 * effort, on those already waiting in its backlog as they are accepted:
 * libpoolecho(3)), and closes
 * it when the run ends (or at pe_server_destroy()). On failure it is left
 * open and as it came, the caller's: -EBADF for a descriptor not open (or
 * below 0), -ENOTSOCK for one not a socket, -EAFNOSUPPORT for a socket not
 * of IPv4 or IPv6, -EPROTONOSUPPORT for one not TCP (SCTP, MPTCP), -EINVAL
 * for one not a stream socket or not listening, each logged, naming the
 * descriptor and why; or any error of pe_server_create() but the
 * listening socket's. */
PE_API int pe_server_create_on_socket(pe_server **out, const struct pe_server_config *cfg,
                                      int listen_fd);

/* The busy-poll time a server made from CFG uses: CFG->busy_poll_us, but
 * no more than a sixteenth of a nonzero idle timeout, so that a spin cannot
 * hold a silent client past it. */
PE_API unsigned pe_server_busy_poll_us(const struct pe_server_config *cfg);

/* The bound address and port (the real port after port 0). ADDR receives
 * the address and *LEN its length; always returns 0. Both are fixed at
 * pe_server_create(), so they may be asked from any thread until
 * pe_server_destroy(), even after the run has closed the socket. */
PE_API int pe_server_address(const pe_server *srv, struct sockaddr_storage *addr, socklen_t *len);
PE_API unsigned pe_server_port(const pe_server *srv);

/* Accept until stopped, then close the listening socket (clients still in
 * its backlog are refused, and the port is free again), wait up to grace_ms
 * for open and queued connections to finish, close the rest and join every
 * worker. Returns 0, or the negative errno of an accept(2) that cannot be
 * retried (-EBADF, -EINVAL, -ENOTSOCK or -EFAULT: logged), which ends the
 * run as pe_server_stop_now() would, with no grace. A server runs once:
 * -EALREADY, at once, for a second run or a run after pe_server_start().
 * After a stop made before it, it returns at once. It runs on the calling
 * thread, which should block the signals the program handles elsewhere
 * (the workers block every signal: see pe_pool_start()). */
PE_API int pe_server_run(pe_server *srv);

/* Or let the library run it: pe_server_start() calls pe_server_run() on a
 * thread of its own (which, as the workers, takes no process signal), and
 * pe_server_wait() blocks until that run has returned, which takes a
 * pe_server_stop() from somewhere, and returns what it returned. Start
 * returns 0, -EALREADY when the server has run or been started before, or
 * the error of pthread_create(3) as a negative errno. Wait returns -EINVAL
 * for NULL, -ECHILD when not started or already waited for (as waitpid(2)
 * with no child: a run's own result may be -EINVAL), and -EDEADLK,
 * waiting for nothing, when called on one of the server's own threads (from
 * the log callback), which the run would have to end first. Call start,
 * wait and destroy from one thread (or with your own locking), never from
 * the log callback: wait and destroy both join the run thread. A server
 * started and not waited for is stopped at once and waited for by
 * pe_server_destroy(). */
PE_API int pe_server_start(pe_server *srv);
PE_API int pe_server_wait(pe_server *srv);

/* Ask pe_server_run() to stop accepting and begin the grace period.
 * Thread-safe (the log callback may call it), idempotent, does nothing
 * for NULL (a server not yet made, as for destroy); not
 * async-signal-safe: block the stop signals in every thread before
 * pe_server_create() and take them with sigwait(3) or a signalfd on a
 * thread of your own that then calls this, as poolechod does. */
PE_API void pe_server_stop(pe_server *srv);

/* Like pe_server_stop() but with no grace: open and queued connections are
 * closed now. */
PE_API void pe_server_stop_now(pe_server *srv);

/* pe_server_stats() has the struct's name, so C++ too must write
 * "struct pe_server_stats" (a plain "pe_server_stats st;" names the function). */
struct pe_server_stats {
	uint64_t accepted;   /* connections accepted */
	uint64_t rejected;   /* closed at once: queue full under PE_OVERFLOW_REJECT, or
	                        over per_source */
	uint64_t served;     /* connections a worker took and echoed until they ended,
	                        or until pe_server_stop_now() or the end of the grace
	                        period closed them */
	uint64_t dropped;    /* accepted but closed unserved by a stop;
	                        once idle, accepted = rejected + served + dropped */
	uint64_t active;     /* connections being echoed now */
	uint64_t queued;     /* accepted, waiting for a worker */
	uint64_t bytes_in;   /* read from clients */
	uint64_t bytes_out;  /* written back to the socket, including part of an echo whose
	                        write failed, and what a reset at the end of the grace
	                        discarded before the client received it */
	uint64_t timeouts;   /* closed by the idle timeout */
	uint64_t accept_errors; /* accept(2) failures the loop went on after: not an
	                           interruption, a client gone before it was taken, nor
	                           the failure that ends a run (pe_server_run() returns it) */
	uint64_t source_limited; /* of the rejected, those over per_source */
};

/* Counters are per worker and summed here, so the echo path takes no shared
 * lock. Safe while the server runs, from any thread (the log callback too);
 * each counter is read on its own, so a snapshot taken while connections
 * come and go may count fewer than accepted in the other places (those
 * between two), never more. */
PE_API void pe_server_stats(pe_server *srv, struct pe_server_stats *out);

/* Format S as one line ("accepted=... rejected=..."): the form poolechod
 * logs. Like snprintf(3): at most SIZE bytes with the NUL, and the length
 * the whole line needs is returned, so a result >= SIZE means it was cut.
 * PE_STATS_LINE_MAX bytes always hold it. */
#define PE_STATS_LINE_MAX 340
PE_API size_t pe_server_stats_format(const struct pe_server_stats *s, char *buf, size_t size);

/* Free everything. Call after pe_server_run() returned (or instead of it,
 * or with pe_server_start() as said there),
 * and after every pe_server_stop()/pe_server_stop_now() call made on another
 * thread has returned too: a stop touches the server until it returns.
 * NULL is allowed.
 *
 * After fork(2) the server is the parent's: its threads are not in the
 * child. In the child, pe_server_stop() and pe_server_stop_now() do nothing
 * and pe_server_destroy() only closes the child's copies of the listening
 * socket, the stop pipe, the connections being echoed or closed (by a
 * worker, or by the run as it refuses a client or drops one unserved, its
 * log line under way) and the workers' splice pipes, and frees the memory
 * but the queue's and the pool's (a few hundred bytes and the queue's
 * slots, left because a parent's thread may have held their locks); call
 * nothing else on it there. A connection still queued at the fork stays
 * open in the child until it exits or execs. Every descriptor the server
 * opens is close-on-exec. */
PE_API void pe_server_destroy(pe_server *srv);

#ifdef __cplusplus
}
#endif

#endif /* POOLECHO_SERVER_H */
