/*
 * test_histogram.c -- the client's latency histogram: exact where it says
 * it is, within its stated relative error elsewhere, and merging per-thread
 * histograms gives the same answers as one histogram of everything.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "histogram.h"

static struct histogram *hist_new(void)
{
	struct histogram *h = malloc(sizeof *h);

	cr_assert_not_null(h);
	histogram_init(h);
	return h;
}

/* |got - want| <= want * HISTOGRAM_REL_ERROR (rounded up to a whole unit). */
static void expect_close(uint64_t got, uint64_t want, const char *what)
{
	double tol = (double)want * HISTOGRAM_REL_ERROR + 1.0;
	double diff = got > want ? (double)(got - want) : (double)(want - got);

	cr_expect_leq(diff, tol, "%s: got %llu, want %llu (+-%.1f)", what,
	              (unsigned long long)got, (unsigned long long)want, tol);
}

Test(histogram, empty_reports_zero, .timeout = 10)
{
	struct histogram *h = hist_new();

	cr_expect_eq(h->count, 0);
	cr_expect_eq(histogram_percentile(h, 50.0), 0);
	cr_expect_eq(histogram_percentile(h, 99.9), 0);
	cr_expect_float_eq(histogram_mean(h), 0.0, 1e-9);
	free(h);
}

Test(histogram, values_below_256_are_exact, .timeout = 10)
{
	struct histogram *h = hist_new();
	uint64_t v;

	for (v = 1; v <= 200; v++)
		histogram_record(h, v);
	cr_expect_eq(histogram_percentile(h, 50.0), 100);
	cr_expect_eq(histogram_percentile(h, 90.0), 180);
	cr_expect_eq(histogram_percentile(h, 99.0), 198);
	cr_expect_eq(histogram_percentile(h, 99.9), 200);
	cr_expect_eq(histogram_percentile(h, 0.0), 1);
	cr_expect_eq(histogram_percentile(h, 100.0), 200);
	cr_expect_eq(h->min, 1);
	cr_expect_eq(h->max, 200);
	cr_expect_float_eq(histogram_mean(h), 100.5, 1e-9);
	free(h);
}

Test(histogram, percentiles_of_uniform_data_within_stated_error, .timeout = 10)
{
	struct histogram *h = hist_new();
	uint64_t v;

	/* 1..100000 once each: the p-th percentile is p*1000. */
	for (v = 1; v <= 100000; v++)
		histogram_record(h, v);
	expect_close(histogram_percentile(h, 50.0), 50000, "p50");
	expect_close(histogram_percentile(h, 90.0), 90000, "p90");
	expect_close(histogram_percentile(h, 99.0), 99000, "p99");
	expect_close(histogram_percentile(h, 99.9), 99900, "p99.9");
	cr_expect_eq(h->max, 100000);
	cr_expect_eq(h->count, 100000);
	free(h);
}

Test(histogram, skewed_data_finds_the_tail, .timeout = 10)
{
	struct histogram *h = hist_new();
	int i;

	/* 990 fast samples and 10 slow ones: p99 is fast, p99.9 is slow. */
	for (i = 0; i < 990; i++)
		histogram_record(h, 100);
	for (i = 0; i < 10; i++)
		histogram_record(h, 1000000);
	cr_expect_eq(histogram_percentile(h, 50.0), 100);
	cr_expect_eq(histogram_percentile(h, 99.0), 100);
	expect_close(histogram_percentile(h, 99.9), 1000000, "p99.9");
	cr_expect_eq(histogram_percentile(h, 100.0), 1000000);
	free(h);
}

/* A percentile whose rank is the first or the last message is that
 * message's latency exactly, as the minimum and the maximum are: the
 * report showed p99.9 of 200 messages (the slowest) below the maximum,
 * as the middle of its bucket. */
Test(histogram, a_percentile_of_the_first_or_last_rank_is_the_exact_min_or_max, .timeout = 10)
{
	/* Each in its bucket's half away from the middle, where the middle
	 * kept between them is wrong: the buckets are 8 and 16 us wide. */
	const uint64_t min = (1u << 20) + 100, max = (1u << 21) + 16000;
	struct histogram *h = hist_new();

	histogram_record(h, min);
	for (uint64_t i = 0; i < 198; i++)
		histogram_record(h, 1500000 + i * 1009);
	histogram_record(h, max);
	cr_expect_eq(histogram_percentile(h, 99.9), max);  /* rank 200 */
	cr_expect_eq(histogram_percentile(h, 0.1), min);   /* rank 1 */
	cr_expect_eq(histogram_percentile(h, 0.5), min);
	free(h);
}

/* A middle rank in the maximum's bucket is reported as the bucket's
 * middle, unless that is above the maximum: no percentile may exceed the
 * max the same report prints. 256 is the low end of a 2-wide bucket. */
Test(histogram, no_percentile_is_above_the_maximum, .timeout = 10)
{
	struct histogram *h = hist_new();

	for (int i = 0; i < 10; i++)
		histogram_record(h, 256);
	cr_expect_eq(histogram_percentile(h, 50.0), 256);
	cr_expect_eq(histogram_percentile(h, 90.0), 256);
	free(h);
}

/* Nor below the min: 515 is the high end of the 4-wide bucket from 512,
 * whose middle is 514. */
Test(histogram, no_percentile_is_below_the_minimum, .timeout = 10)
{
	struct histogram *h = hist_new();

	for (int i = 0; i < 10; i++)
		histogram_record(h, 515);
	cr_expect_eq(histogram_percentile(h, 50.0), 515);
	cr_expect_eq(histogram_percentile(h, 90.0), 515);
	free(h);
}

Test(histogram, percentile_rank_is_exact_where_p_times_count_is_whole, .timeout = 10)
{
	/* N samples, the first N*p/100 of them 10 and the rest 20: the p-th
	 * percentile is the sample of rank N*p/100, a 10. Floating point makes
	 * 99.9/100*1000 a hair above 999, and a ceiling of that is 1000. */
	static const uint64_t counts[] = {1000, 2000, 10000, 100000, 3000000};
	static const double ps[] = {50.0, 90.0, 99.0, 99.9, 99.99, 12.345};
	struct histogram *h = hist_new();

	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++) {
			uint64_t pm = (uint64_t)(ps[j] * 1000.0 + 0.5), rank, n = counts[i];

			if (n * pm % 100000 != 0)
				continue; /* the rank is not a whole number */
			rank = n * pm / 100000;
			histogram_init(h);
			h->buckets[histogram_index(10)] = rank;
			h->buckets[histogram_index(20)] = n - rank;
			h->count = n;
			h->min = 10;
			h->max = 20;
			cr_expect_eq(histogram_percentile(h, ps[j]), 10, "p%g of %llu samples: want rank %llu",
			             ps[j], (unsigned long long)n, (unsigned long long)rank);
		}
	}
	/* And the very case reported: p99.9 of 1000 is the 999th sample. */
	histogram_init(h);
	for (int i = 0; i < 999; i++)
		histogram_record(h, 1);
	histogram_record(h, 200);
	cr_expect_eq(histogram_percentile(h, 99.9), 1);
	cr_expect_eq(histogram_percentile(h, 99.91), 200);
	free(h);
}

Test(histogram, every_value_lands_in_a_bucket_that_holds_it, .timeout = 10)
{
	uint64_t state = 12345;
	int i;

	for (i = 0; i < 200000; i++) {
		/* Values spread over every magnitude, up to the largest. */
		uint64_t v, low, width;
		unsigned idx;

		state = state * 6364136223846793005ull + 1442695040888963407ull;
		v = state >> (state % 64);
		if (i == 0)
			v = UINT64_MAX;
		idx = histogram_index(v);
		cr_assert_lt(idx, HISTOGRAM_BUCKETS, "value %llu", (unsigned long long)v);
		low = histogram_bucket_low(idx);
		width = histogram_bucket_width(idx);
		cr_assert(low <= v && v - low < width, "value %llu outside bucket %u [%llu, +%llu)",
		          (unsigned long long)v, idx, (unsigned long long)low,
		          (unsigned long long)width);
		cr_assert(width == 1 || width <= v / HISTOGRAM_SUB_COUNT,
		          "bucket %u too wide (%llu) for %llu", idx, (unsigned long long)width,
		          (unsigned long long)v);
	}
}

Test(histogram, merge_equals_one_histogram_of_everything, .timeout = 10)
{
	struct histogram *a = hist_new(), *b = hist_new(), *all = hist_new();
	uint64_t v;
	double p;

	for (v = 1; v <= 50000; v++) {
		histogram_record(v % 3 ? a : b, v * 7);
		histogram_record(all, v * 7);
	}
	histogram_merge(a, b);
	cr_expect_eq(a->count, all->count);
	cr_expect_eq(a->min, all->min);
	cr_expect_eq(a->max, all->max);
	for (p = 10.0; p < 100.0; p += 9.9)
		cr_expect_eq(histogram_percentile(a, p), histogram_percentile(all, p), "p%g", p);
	free(a);
	free(b);
	free(all);
}
