/*
 * test_sources.c -- connections counted per client address: the limit
 * holds per address, an IPv4 address and its IPv4-mapped IPv6 form are one
 * source, and the table stays right through any order of takes and
 * releases (its deletions move entries about).
 */
#include <config.h>

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources.h"

static struct pe_sources table;

static void cleanup(void)
{
	pe_sources_free(&table);
}

TestSuite(sources, .fini = cleanup, .timeout = 10);

union addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* TEXT an address, IPv6 with a numeric scope after a '%' if any
 * ("fe80::1%2": the interface whose index is 2). */
static socklen_t make_addr(union addr *a, const char *text, unsigned short port)
{
	char bare[INET6_ADDRSTRLEN];
	const char *scope = strchr(text, '%');

	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET, text, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons(port);
		return sizeof a->in;
	}
	snprintf(bare, sizeof bare, "%.*s", scope ? (int)(scope - text) : (int)strlen(text), text);
	cr_assert_eq(inet_pton(AF_INET6, bare, &a->in6.sin6_addr), 1, "bad test address %s", text);
	a->in6.sin6_family = AF_INET6;
	a->in6.sin6_scope_id = scope ? (uint32_t)strtoul(scope + 1, NULL, 10) : 0;
	a->in6.sin6_port = htons(port);
	return sizeof a->in6;
}

/* Take one from TEXT (any port: ports never matter); return the result
 * and check what it says is held. */
static int take(const char *text, unsigned short port, unsigned want_held)
{
	union addr a;
	socklen_t len = make_addr(&a, text, port);
	unsigned held = 12345;
	int rc = pe_sources_take(&table, &a.sa, len, &held);

	cr_expect_eq(held, want_held, "%s: holds %u, want %u", text, held, want_held);
	return rc;
}

static void release(const char *text)
{
	union addr a;
	socklen_t len = make_addr(&a, text, 1);

	pe_sources_release(&table, &a.sa, len);
}

Test(sources, each_address_is_held_to_the_limit_on_its_own)
{
	cr_assert_eq(pe_sources_init(&table, 100, 2), 0);
	cr_expect_eq(take("192.0.2.1", 1000, 1), 0);
	cr_expect_eq(take("192.0.2.1", 1001, 2), 0);
	cr_expect_eq(take("192.0.2.1", 1002, 2), -EBUSY, "a third from one address");
	cr_expect_eq(take("192.0.2.2", 1000, 1), 0, "another address is limited apart");
	cr_expect_eq(take("2001:db8::1", 1000, 1), 0);
	cr_expect_eq(take("2001:db8::1", 1000, 2), 0);
	cr_expect_eq(take("2001:db8::1", 1000, 2), -EBUSY);
	cr_expect_eq(take("2001:db8::2", 1000, 1), 0, "IPv6 addresses are told apart whole");
}

/* A link-local address names a host only with its interface: fe80::1 on
 * one link and fe80::1 on another are two hosts (each link's router has
 * it, say), which share no limit. */
Test(sources, one_link_local_address_on_two_interfaces_is_two_sources)
{
	cr_assert_eq(pe_sources_init(&table, 100, 1), 0);
	cr_expect_eq(take("fe80::1%2", 1000, 1), 0);
	cr_expect_eq(take("fe80::1%3", 1000, 1), 0, "fe80::1%%3 counted as fe80::1%%2");
	cr_expect_eq(take("fe80::1%2", 1001, 1), -EBUSY, "the limit lost on one interface");
	release("fe80::1%2");
	cr_expect_eq(take("fe80::1%3", 1001, 1), -EBUSY, "a release on one freed the other");
	cr_expect_eq(take("fe80::1%2", 1001, 1), 0);
}

Test(sources, a_release_lets_the_address_connect_again)
{
	cr_assert_eq(pe_sources_init(&table, 100, 1), 0);
	cr_expect_eq(take("198.51.100.7", 1, 1), 0);
	cr_expect_eq(take("198.51.100.7", 2, 1), -EBUSY);
	release("198.51.100.7");
	cr_expect_eq(take("198.51.100.7", 3, 1), 0);
}

Test(sources, an_ipv4_address_and_its_mapped_ipv6_form_are_one_source)
{
	cr_assert_eq(pe_sources_init(&table, 100, 2), 0);
	cr_expect_eq(take("127.0.0.1", 1, 1), 0);
	cr_expect_eq(take("::ffff:127.0.0.1", 2, 2), 0);
	cr_expect_eq(take("127.0.0.1", 3, 2), -EBUSY);
	release("::ffff:127.0.0.1");
	cr_expect_eq(take("127.0.0.1", 4, 2), 0);
	cr_expect_eq(take("::1", 1, 1), 0, "::1 is not 127.0.0.1");
}

Test(sources, more_addresses_than_connections_held_is_refused_not_overrun)
{
	char text[32];

	cr_assert_eq(pe_sources_init(&table, 8, 5), 0);
	/* Sized for twice 8 addresses, rounded up to a power of two: 16. */
	for (unsigned i = 0; i < 8; i++) {
		snprintf(text, sizeof text, "10.0.0.%u", i + 1);
		cr_expect_eq(take(text, 1, 1), 0, "address %u of 8", i + 1);
	}
	cr_expect_eq(take("10.0.1.1", 1, 0), -ENOSPC);
	cr_expect_eq(take("10.0.0.1", 2, 2), 0, "a held address still counts up");
}

enum { ADDRESSES = 48 };

/* Random takes and releases with up to as many addresses as half the
 * table (its most), so that runs of probes form, wrap past its end and
 * are shifted by deletions, checked against a plain array of counts. An
 * entry lost or made unreachable by a deletion would show up as an
 * address counting from 1 again, and two addresses taken for one as a
 * refusal or a count the model does not have. The hash key is set, not
 * drawn, so that every run walks the same cases. */
static void walk_takes_and_releases(char text[ADDRESSES][32])
{
	enum { MAX_HELD = 32, LIMIT = 3, ROUNDS = 40, STEPS = 5000 };
	unsigned seed = 12345;

	for (unsigned round = 0; round < ROUNDS; round++) {
		unsigned model[ADDRESSES] = {0}, total = 0, distinct = 0;

		cr_assert_eq(pe_sources_init(&table, MAX_HELD, LIMIT), 0);
		cr_assert_eq(table.mask + 1, 2 * MAX_HELD, "the table is half full at most");
		table.key[0] = round * 0x9e3779b97f4a7c15ULL;
		table.key[1] = ~(uint64_t)round;
		for (unsigned step = 0; step < STEPS; step++) {
			unsigned i = (unsigned)rand_r(&seed) % ADDRESSES;
			int grow = total < MAX_HELD && (total == 0 || rand_r(&seed) % 2);

			if (!grow) {
				while (!model[i])
					i = (i + 1) % ADDRESSES;
				release(text[i]);
				model[i]--;
				total--;
				continue;
			}
			if (model[i] == LIMIT) {
				cr_assert_eq(take(text[i], 1, LIMIT), -EBUSY, "round %u step %u: %s "
				             "over the limit", round, step, text[i]);
				continue;
			}
			cr_assert_eq(take(text[i], 1, model[i] + 1), 0, "round %u step %u: %s",
			             round, step, text[i]);
			model[i]++;
			total++;
		}
		for (unsigned i = 0; i < ADDRESSES; i++)
			distinct += model[i] > 0;
		cr_expect_eq(table.used, distinct, "round %u: addresses in the table", round);
		pe_sources_free(&table);
	}
}

Test(sources, counts_survive_any_order_of_takes_and_releases)
{
	char text[ADDRESSES][32];

	for (unsigned i = 0; i < ADDRESSES; i++)
		snprintf(text[i], sizeof text[i], "2001:db8:%x::%x", i % 7, i * 7919u % 65536);
	walk_takes_and_releases(text);
}

/* The same with a few link-local addresses, each on many interfaces: in
 * the runs of probes an entry of one interface meets the same address of
 * another, which must be passed over, and a deletion moves an entry back
 * toward its own home, which its interface is part of. */
Test(sources, counts_of_one_address_on_many_interfaces_survive_any_order)
{
	char text[ADDRESSES][32];

	for (unsigned i = 0; i < ADDRESSES; i++)
		snprintf(text[i], sizeof text[i], "fe80::%x%%%u", i % 4 + 1, i / 4 + 1);
	walk_takes_and_releases(text);
}
