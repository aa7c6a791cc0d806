/*
 * stats.c -- sums the per-worker counters when someone asks (memcached's
 * way), so counting costs the echo path no shared lock.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>

#include "server_internal.h"

void pe_server_stats(pe_server *srv, struct pe_server_stats *out)
{
	struct pe_server_stats s = {0};

	/* Each connection is counted where it is when its place is read, so
	 * the places are read in the order a connection moves through them
	 * backwards (workers, then the queue, then the accept loop's own
	 * counts) and accepted last: a line taken while connections come and
	 * go may be short of accepted by those moving between two places, but
	 * never counts one twice nor one accepted after its accepted was read. */
	pthread_mutex_lock(&srv->lock);
	for (unsigned i = 0; i < srv->cfg.workers; i++) {
		struct pe_worker_counters *c = &srv->slots[i].counters;
		/* Each pair in the reverse of the order its worker counts it
		 * (bytes_in before bytes_out): a line taken mid-echo may be
		 * behind, but never shows more bytes out than in. served,
		 * dropped and timeouts are counted under the lock, with the
		 * slot's fd cleared in that hold or (at -v) an earlier one, so
		 * a connection is active or served here, never both (between
		 * two holds, neither: one of those moving places). */
		s.bytes_out += pe_counter_get_acquire(&c->bytes_out);
		s.bytes_in += pe_counter_get(&c->bytes_in);
		s.timeouts += pe_counter_get(&c->timeouts);
		s.served += pe_counter_get(&c->served);
		s.dropped += pe_counter_get(&c->dropped);
		s.active += srv->slots[i].fd >= 0;
	}
	pthread_mutex_unlock(&srv->lock);
	/* Before the queue: the stop counts a connection it takes from the
	 * queue as dropped only once it left it. */
	s.dropped += pe_counter_get_acquire(&srv->listener.dropped);
	s.queued = pe_queue_length(srv->queue);
	/* source_limited before rejected, which counts them too. */
	s.source_limited = pe_counter_get_acquire(&srv->listener.source_limited);
	s.rejected = pe_counter_get_acquire(&srv->listener.rejected);
	s.accept_errors = pe_counter_get(&srv->listener.accept_errors);
	s.accepted = pe_counter_get(&srv->listener.accepted);
	*out = s;
}

size_t pe_server_stats_format(const struct pe_server_stats *s, char *buf, size_t size)
{
	int n = snprintf(buf, size,
	         "accepted=%" PRIu64 " rejected=%" PRIu64 " source_limited=%" PRIu64
	         " served=%" PRIu64 " dropped=%" PRIu64 " active=%" PRIu64 " queued=%" PRIu64
	         " bytes_in=%" PRIu64 " bytes_out=%" PRIu64 " timeouts=%" PRIu64
	         " accept_errors=%" PRIu64,
	         s->accepted, s->rejected, s->source_limited, s->served, s->dropped, s->active,
	         s->queued, s->bytes_in, s->bytes_out, s->timeouts, s->accept_errors);

	return n < 0 ? 0 : (size_t)n;
}
