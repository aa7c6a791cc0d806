/*
 * stats.h -- counters with a single writer each (one worker, or the accept
 * loop), read by whoever asks for stats. Relaxed atomics keep readers
 * race-free without a lock or a locked instruction on the echo path.
 */
#ifndef POOLECHO_STATS_H
#define POOLECHO_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t pe_counter;

/* Only the counter's one writer may call this. */
static inline void pe_counter_add(pe_counter *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

/* As pe_counter_add, but no earlier count may be seen after it: the
 * second of a pair that pe_counter_get_acquire reads first. */
static inline void pe_counter_add_release(pe_counter *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_release);
}

/* A read that later reads cannot pass (pairs with the writer's order). */
static inline uint64_t pe_counter_get_acquire(pe_counter *c)
{
	return atomic_load_explicit(c, memory_order_acquire);
}

static inline uint64_t pe_counter_get(pe_counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* What one worker counts. */
struct pe_worker_counters {
	pe_counter bytes_in, bytes_out, served, timeouts, dropped;
};

/* What the accept loop counts, and after it the stop that drains the
 * queue on the same thread (or on pe_server_destroy's, for a server that
 * never ran): one writer at a time. */
struct pe_listener_counters {
	pe_counter accepted, rejected, source_limited, accept_errors, dropped;
};

#endif /* POOLECHO_STATS_H */
