/*
 * client_load.h -- load mode: many connections driven by a few threads,
 * each with its own epoll set, every echoed byte checked, latencies kept in
 * one histogram per thread and merged at the end.
 */
#ifndef POOLECHO_CLIENT_LOAD_H
#define POOLECHO_CLIENT_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_cli.h"
#include "histogram.h"
#include "net.h"

/* A snapshot for the once-a-second progress line. */
struct load_progress {
	double elapsed_s;
	uint64_t conns_opened;
	uint64_t messages_echoed;
	uint64_t bytes_echoed;
	uint64_t errors;
};

typedef void load_progress_fn(void *ctx, const struct load_progress *p);

struct load_result {
	char target[PE_NET_ADDRLEN]; /* the address every connection went to, as it is */
	unsigned threads;
	double elapsed_s;
	uint64_t conns_opened;    /* connections established */
	uint64_t conns_failed;    /* connect() failures */
	uint64_t conns_pending;   /* connections whose first connect was unanswered at the stop,
	                             or not yet begun (held back by the connects in flight) */
	uint64_t conns_unserved;  /* open, first message out in the run's first half, and still
	                             no echo at the stop: the server left them waiting */
	uint64_t conns_abandoned; /* still owed echoes when the grace after a signal ran out */
	uint64_t peak_open;       /* the most connections established at once */
	uint64_t messages_sent;   /* messages written out whole */
	uint64_t messages_echoed; /* messages whose whole echo came back intact */
	uint64_t bytes_sent;
	uint64_t bytes_echoed;    /* bytes received and verified */
	uint64_t mismatches;      /* a byte differed, or more came back than was sent */
	uint64_t early_closes;    /* the server closed or reset while an echo was due */
	uint64_t timeouts;        /* --timeout ran out on a connection */
	uint64_t other_errors;    /* socket errors, descriptor shortage */
	uint64_t errors;          /* conns_failed and the four above, summed */
	/* --rate: messages (churn: connects) that went out a period or more
	 * after their slot, and slots that came due but were never used
	 * because the run stopped while the server held their connection up. */
	uint64_t slots_late, slots_unused;
	bool interrupted;         /* stopped by SIGINT/SIGTERM before the deadline */
	bool unreachable;         /* the run could not start: the name did not resolve
	                             or the first connect failed */
	double cpu_s;             /* CPU time the load threads used, all together */
	unsigned cpus;            /* CPUs they could use: min(threads, CPUs allowed) */
	double cpu_quota;         /* the cgroup CPU quota, in CPUs, when below cpus; else 0 */
	double cpu_share;         /* cpu_s over cpus (or cpu_quota) times the longest
	                             thread's run time */
	double busiest;           /* the busiest thread's CPU time over its run time */
	double run_s;             /* the longest thread's run time, ramp-up to last close */
	char first_error[512];    /* the first failure seen, with its cause; the server's
	                             address in it as it is (target) */
	struct histogram latency; /* nanoseconds, issue (churn: connect()) or slot to the whole
	                             echo */
};

/* The pattern every stream is cut from: a prime number of bytes, so
 * message boundaries fall on ever new places in it. */
#define LOAD_PATTERN_LEN ((1u << 20) - 3)
/* Connection I's stream starts at I * this (mod the length): about the
 * length over the golden ratio, so starts spread evenly, and no two of
 * CLIENT_MAX_CONNECTIONS connections share one. */
#define LOAD_STREAM_STRIDE 648055u

/* Where connection INDEX's stream starts in the pattern (churn moves it on
 * each cycle). Distinct starts mean two connections do not send the same
 * stream, so a server that swapped their echoes at the same point of
 * their streams is caught unless those messages hold the same bytes. */
static inline uint32_t load_stream_start(unsigned long index)
{
	return (uint32_t)((uint64_t)(index % LOAD_PATTERN_LEN) * LOAD_STREAM_STRIDE %
	                  LOAD_PATTERN_LEN);
}

/* --rate's schedule on a clock in nanoseconds: a connection's message (or
 * churn connect) K owns slot K, floor(K * 10^9 / rate) ns after its slot 0.
 * K * 10^9 would overflow 64 bits from K = 1.8 * 10^10, five hours at the
 * highest rate, so the period is split once into whole nanoseconds and a
 * remainder: K * rem < K * rate stays below 2^64 for every K a run reaches
 * (at most CLIENT_MAX_MESSAGES, or a day of -d at CLIENT_MAX_RATE), and a
 * slot costs one division, as it did in microseconds. */
struct load_schedule {
	uint64_t rate;      /* slots a second */
	uint64_t period_ns; /* 10^9 / rate */
	uint64_t rem;       /* 10^9 % rate */
};

_Static_assert((uint64_t)CLIENT_MAX_MESSAGES + 1 <= UINT64_MAX / CLIENT_MAX_RATE &&
               (uint64_t)CLIENT_MAX_SECONDS * CLIENT_MAX_RATE + 1 <=
               UINT64_MAX / CLIENT_MAX_RATE, "a slot's K * rem may overflow");

static inline void load_schedule_init(struct load_schedule *s, uint64_t rate)
{
	s->rate = rate;
	s->period_ns = 1000000000u / rate;
	s->rem = 1000000000u % rate;
}

/* Slot K's offset from slot 0, in nanoseconds. */
static inline uint64_t load_slot_ns(const struct load_schedule *s, uint64_t k)
{
	return k * s->period_ns + k * s->rem / s->rate;
}

/* How many slots are due ELAPSED ns after slot 0: those at or before it,
 * ceil((ELAPSED + 1) * rate / 10^9), with the product split as above. */
static inline uint64_t load_slots_due(const struct load_schedule *s, uint64_t elapsed_ns)
{
	const uint64_t after = elapsed_ns + 1;

	return after / 1000000000u * s->rate + (after % 1000000000u * s->rate + 999999999u) /
	       1000000000u;
}

/* Run load mode as CFG says, calling PROGRESS (if not NULL) about once a
 * second from the calling thread. Returns 0 when the run took place (RES
 * holds the outcome: RES->errors may be non-zero), or a negative errno when
 * it could not start (resolving or connecting to the server failed, too few
 * descriptors, no threads), with ERR saying why. */
int client_load_run(const struct client_config *cfg, load_progress_fn *progress, void *ctx,
                    struct load_result *res, char *err, size_t errlen);

#endif /* POOLECHO_CLIENT_LOAD_H */
