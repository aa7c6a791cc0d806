/*
 * test_errlimit.c -- the rate limit on recurring errors: the first of a
 * kind is reported at once, repeats within the interval are counted, and
 * every count is reported beside the error it counts, never another.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>

#include "errlimit.h"

#define INTERVAL 10

static struct pe_errlimit el;

static void fresh(void)
{
	pe_errlimit_init(&el, INTERVAL);
}

TestSuite(errlimit, .init = fresh, .timeout = 10);

/* Note ERR at NOW; check whether it is reported and what count comes first. */
static void expect_note(int err, int64_t now, int reported, int held_err, unsigned long held)
{
	struct pe_errlimit_held h = {.err = -1, .count = 12345};

	cr_expect_eq(pe_errlimit_note(&el, err, now, &h), reported, "errno %d at %lld s: reported?",
	             err, (long long)now);
	cr_expect_eq(h.count, held, "errno %d at %lld s: count %lu, want %lu", err,
	             (long long)now, h.count, held);
	if (held)
		cr_expect_eq(h.err, held_err, "the count of %lu names errno %d, want %d", held,
		             h.err, held_err);
}

Test(errlimit, the_first_error_is_reported_and_repeats_are_counted)
{
	expect_note(EMFILE, 100, 1, 0, 0);
	expect_note(EMFILE, 100, 0, 0, 0);
	expect_note(EMFILE, 105, 0, 0, 0);
	expect_note(EMFILE, 109, 0, 0, 0);
	/* The interval is over: reported again, with the three held back. */
	expect_note(EMFILE, 110, 1, EMFILE, 3);
	expect_note(EMFILE, 111, 0, 0, 0);
}

Test(errlimit, the_first_error_is_reported_even_at_time_zero)
{
	expect_note(ENOBUFS, 0, 1, 0, 0);
	expect_note(ENOBUFS, 1, 0, 0, 0);
}

/* Each error has its own interval and its own count: two errors that
 * alternate do not let each other through (they once did: only the last
 * error was remembered), and neither's count is reported as the other's. */
Test(errlimit, alternating_errors_are_each_limited_and_counted)
{
	struct pe_errlimit_held h;

	expect_note(EMFILE, 100, 1, 0, 0);
	expect_note(ENOBUFS, 100, 1, 0, 0);
	for (int64_t t = 101; t < 110; t++) {
		expect_note(EMFILE, t, 0, 0, 0);
		expect_note(ENOBUFS, t, 0, 0, 0);
	}
	cr_expect_eq(pe_errlimit_due_at(&el), 110);
	h = pe_errlimit_due(&el, 109);
	cr_expect_eq(h.count, 0, "a count due before its interval is over");
	expect_note(ENOBUFS, 110, 1, ENOBUFS, 9);
	h = pe_errlimit_due(&el, 110);
	cr_expect_eq(h.err, EMFILE);
	cr_expect_eq(h.count, 9);
	h = pe_errlimit_due(&el, 110);
	cr_expect_eq(h.count, 0, "%lu more reported for errno %d", h.count, h.err);
}

/* Beyond ERRLIMIT_KINDS distinct errors, a new one takes the place of the
 * one reported longest ago, whose count is reported with its own errno.
 * (Errors here are plain numbers 1..ERRLIMIT_KINDS + 1: the module does
 * not care which.) */
Test(errlimit, a_new_kind_beyond_the_table_reports_the_count_it_replaces)
{
	for (int e = 1; e <= ERRLIMIT_KINDS; e++) {
		expect_note(e, 100 + e, 1, 0, 0);
		expect_note(e, 100 + e, 0, 0, 0);
	}
	expect_note(ERRLIMIT_KINDS + 1, 200, 1, 1, 1);
	/* 1 is new again; it replaces 2, the oldest report now. */
	expect_note(1, 201, 1, 2, 1);
	expect_note(ERRLIMIT_KINDS + 1, 202, 0, 0, 0);
}

/* As many distinct errors as the table holds, coming round again and
 * again, are each still logged once per interval. */
Test(errlimit, a_full_table_of_recurring_errors_stays_limited)
{
	unsigned reported = 0;

	for (int round = 0; round < 100; round++)
		for (int e = 1; e <= ERRLIMIT_KINDS; e++) {
			struct pe_errlimit_held h;

			reported += (unsigned)pe_errlimit_note(&el, e, 100 + round / 20, &h);
		}
	cr_expect_eq(reported, ERRLIMIT_KINDS, "%u reports of %d errors within one interval",
	             reported, ERRLIMIT_KINDS);
}

/* The listener sleeps until the earliest count is due, not a later one:
 * whichever kind came first, so whatever slots they took (a table
 * scanned in one order gets one of the two right by chance). */
Test(errlimit, the_earliest_count_is_due_first)
{
	static const int kinds[][2] = {{ENOBUFS, EMFILE}, {EMFILE, ENOBUFS}};

	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		int first = kinds[i][0], later = kinds[i][1];
		struct pe_errlimit_held h;

		fresh();
		expect_note(first, 100, 1, 0, 0);
		expect_note(later, 105, 1, 0, 0);
		expect_note(first, 106, 0, 0, 0);
		expect_note(later, 106, 0, 0, 0);
		cr_expect_eq(pe_errlimit_due_at(&el), 110, "errno %d first: due at %lld", first,
		             (long long)pe_errlimit_due_at(&el));
		h = pe_errlimit_due(&el, 110);
		cr_expect_eq(h.err, first, "errno %d first: errno %d due", first, h.err);
		cr_expect_eq(h.count, 1);
		cr_expect_eq(pe_errlimit_due_at(&el), 115, "errno %d first: then due at %lld", first,
		             (long long)pe_errlimit_due_at(&el));
	}
}

Test(errlimit, a_held_count_is_due_once_per_interval)
{
	struct pe_errlimit_held h;

	expect_note(EMFILE, 100, 1, 0, 0);
	expect_note(EMFILE, 101, 0, 0, 0);
	cr_expect_eq(pe_errlimit_due_at(&el), 100 + INTERVAL);
	h = pe_errlimit_due(&el, 102);
	cr_expect_eq(h.count, 0, "reported %lu within the interval", h.count);
	expect_note(EMFILE, 103, 0, 0, 0);
	h = pe_errlimit_due(&el, 110);
	cr_expect_eq(h.count, 2);
	cr_expect_eq(h.err, EMFILE);
	cr_expect_eq(pe_errlimit_due_at(&el), -1, "due again once reported");
	/* Reported at 110: an error that comes and goes stays held until 120. */
	expect_note(EMFILE, 111, 0, 0, 0);
	cr_expect_eq(pe_errlimit_due_at(&el), 120);
	h = pe_errlimit_due(&el, 112);
	cr_expect_eq(h.count, 0);
	expect_note(EMFILE, 120, 1, EMFILE, 1);
}

Test(errlimit, nothing_is_due_while_nothing_is_held)
{
	struct pe_errlimit_held h = pe_errlimit_due(&el, 1000);

	cr_expect_eq(h.count, 0);
	expect_note(EMFILE, 1001, 1, 0, 0);
	cr_expect_eq(pe_errlimit_due_at(&el), -1, "due with nothing held back");
	h = pe_errlimit_due(&el, 2000);
	cr_expect_eq(h.count, 0, "nothing was held back, yet %lu reported", h.count);
}

Test(errlimit, flush_reports_what_is_left_once)
{
	struct pe_errlimit_held h;
	int first = 0;

	expect_note(ENFILE, 50, 1, 0, 0);
	expect_note(ENFILE, 51, 0, 0, 0);
	expect_note(ENOBUFS, 51, 1, 0, 0);
	expect_note(ENOBUFS, 52, 0, 0, 0);
	expect_note(ENOBUFS, 53, 0, 0, 0);
	for (int i = 0; i < 2; i++) {
		h = pe_errlimit_flush(&el);
		cr_expect(h.err == ENFILE ? h.count == 1 : h.err == ENOBUFS && h.count == 2,
		          "flush %d: %lu of errno %d", i, h.count, h.err);
		cr_expect_neq(h.err, first, "errno %d flushed twice", h.err);
		first = h.err;
	}
	h = pe_errlimit_flush(&el);
	cr_expect_eq(h.count, 0, "a count reported twice");
}
