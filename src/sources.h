/*
 * sources.h -- how many connections each client address holds, so that
 * one client cannot take every worker and queue slot (xinetd's
 * per_source). Not locked: the server calls it under its own lock, which
 * it takes per accept and per close anyway.
 */
#ifndef POOLECHO_SOURCES_H
#define POOLECHO_SOURCES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 address is kept as its IPv4-mapped IPv6 form, so a client
 * counts once whether a dual-stack listener or an IPv4 one took it. A
 * link-local one is a host only with its interface: fe80::1 on two links
 * is two hosts, told apart by SCOPE (0 for any other address). */
struct pe_source_slot {
	unsigned char addr[16];
	uint32_t scope;          /* the interface's index, sin6_scope_id */
	uint32_t count;          /* 0: a free slot */
};

struct pe_sources {
	struct pe_source_slot *slots;
	size_t mask;             /* slots - 1, a power of two minus one */
	size_t used;             /* slots with a count */
	uint64_t key[2];         /* the hash's secret */
	unsigned limit;
};

/* A table for LIMIT (>= 1) connections at once per address, and at most
 * MAX_HELD connections held in all: it has twice that many places, rounded
 * up to a power of two (16 at least), so that it is at most half full and
 * probes stay short. 0 or -ENOMEM. */
int pe_sources_init(struct pe_sources *s, size_t max_held, unsigned limit);
void pe_sources_free(struct pe_sources *s);

/* Count one more connection from ADDR: 0, or -EBUSY when ADDR holds LIMIT
 * already (nothing is counted), or -ENOSPC when ADDR is new and the table
 * is half full: more addresses than MAX_HELD (its rounding up may take a
 * few more). *HELD is what ADDR holds after the call: LIMIT when refused
 * for it, 0 for -ENOSPC. */
int pe_sources_take(struct pe_sources *s, const struct sockaddr *addr, socklen_t len,
                    unsigned *held);

/* One connection fewer from ADDR, which pe_sources_take() counted. */
void pe_sources_release(struct pe_sources *s, const struct sockaddr *addr, socklen_t len);

#endif
