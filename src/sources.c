/*
 * sources.c -- connections held per client address: an open-addressing
 * hash table, sized once, with linear probing and backward-shift deletion
 * (no tombstones, so a table that sees millions of clients come and go
 * never slows down). A client may pick its addresses (an IPv6 host has a
 * /64 of them): the hash mixes in a secret drawn at start, so that it
 * cannot tell which ones collide without learning the secret. The mixer is
 * not a cryptographic one; what a run of collisions could cost is bounded
 * anyway, as the table is at most half full.
 */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_GETRANDOM
#include <sys/random.h>
#endif

#include "sources.h"

static void draw_key(uint64_t key[2])
{
	struct timespec ts;

#ifdef HAVE_GETRANDOM
	/* Not getentropy(3): early at boot it waits for the kernel's pool,
	 * and a server must start. */
	if (getrandom(key, 2 * sizeof key[0], GRND_NONBLOCK) == (ssize_t)(2 * sizeof key[0]))
		return;
#endif
	/* Not secret, but hard to guess from another host. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
	key[1] = (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)key;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static size_t home_of(const struct pe_sources *s, const unsigned char addr[16], uint32_t scope)
{
	uint64_t hi, lo;

	memcpy(&hi, addr, 8);
	memcpy(&lo, addr + 8, 8);
	/* The scope goes in with the first half, a link-local address's
	 * prefix (fe80::), which it then tells apart: no third mix. */
	return (size_t)mix64(mix64(hi ^ scope ^ s->key[0]) ^ lo ^ s->key[1]) & s->mask;
}

/* ADDR as 16 bytes: IPv6 as it is, IPv4 as ::ffff:a.b.c.d. Anything else
 * (no address at all) is ::, one source for all such. *SCOPE is an IPv6
 * address's interface index, which the kernel gives only for a link-local
 * one (0 for the rest). */
static void address_key(const struct sockaddr *addr, socklen_t len, unsigned char out[16],
                        uint32_t *scope)
{
	memset(out, 0, 16);
	*scope = 0;
	if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		memcpy(out, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
		*scope = ((const struct sockaddr_in6 *)addr)->sin6_scope_id;
	} else if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
	}
}

/* The slot that holds ADDR, or the free one where it would go. */
static size_t find_slot(const struct pe_sources *s, const unsigned char addr[16], uint32_t scope)
{
	size_t i = home_of(s, addr, scope);

	while (s->slots[i].count &&
	       (memcmp(s->slots[i].addr, addr, 16) != 0 || s->slots[i].scope != scope))
		i = (i + 1) & s->mask;
	return i;
}

int pe_sources_init(struct pe_sources *s, size_t max_held, unsigned limit)
{
	size_t n = 16;

	memset(s, 0, sizeof *s);
	while (n / 2 < max_held) {
		if (n > SIZE_MAX / 2 / sizeof *s->slots)
			return -ENOMEM;
		n *= 2;
	}
	/* calloc: a page of slots is resident only once an address lands in it. */
	if (!(s->slots = calloc(n, sizeof *s->slots)))
		return -ENOMEM;
	s->mask = n - 1;
	s->limit = limit;
	draw_key(s->key);
	return 0;
}

void pe_sources_free(struct pe_sources *s)
{
	free(s->slots);
	s->slots = NULL;
}

int pe_sources_take(struct pe_sources *s, const struct sockaddr *addr, socklen_t len,
                    unsigned *held)
{
	unsigned char key[16];
	uint32_t scope;
	size_t i;

	address_key(addr, len, key, &scope);
	i = find_slot(s, key, scope);
	if (s->slots[i].count >= s->limit) {
		*held = s->slots[i].count;
		return -EBUSY;
	}
	if (!s->slots[i].count) {
		/* Half full at most: more addresses than connections held. */
		if (s->used >= (s->mask + 1) / 2) {
			*held = 0;
			return -ENOSPC;
		}
		memcpy(s->slots[i].addr, key, 16);
		s->slots[i].scope = scope;
		s->used++;
	}
	*held = ++s->slots[i].count;
	return 0;
}

void pe_sources_release(struct pe_sources *s, const struct sockaddr *addr, socklen_t len)
{
	unsigned char key[16];
	uint32_t scope;
	size_t i, j;

	address_key(addr, len, key, &scope);
	i = find_slot(s, key, scope);
	if (!s->slots[i].count || --s->slots[i].count)
		return;
	s->used--;
	/* Backward shift: pull later slots of the run into the hole, unless
	 * their home lies cyclically after the hole (they would become
	 * unreachable from it). */
	for (j = i;;) {
		size_t home;

		j = (j + 1) & s->mask;
		if (!s->slots[j].count)
			break;
		home = home_of(s, s->slots[j].addr, s->slots[j].scope);
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		s->slots[i] = s->slots[j];
		s->slots[j].count = 0;
		i = j;
	}
}
