/*
 * histogram.c -- log-linear histogram: values below 256 have a bucket each;
 * above, each power of two [2^k, 2^(k+1)) is cut into 128 equal buckets.
 * Recording is a count leading zeros, a shift and an increment.
 */
#include <config.h>

#include <string.h>

#include "histogram.h"

void histogram_init(struct histogram *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

unsigned histogram_index(uint64_t value)
{
	unsigned msb, shift;

	if (value < 2 * HISTOGRAM_SUB_COUNT)
		return (unsigned)value;
	msb = 63u - (unsigned)__builtin_clzll(value);
	shift = msb - HISTOGRAM_SUB_BITS;
	/* value >> shift is in [128, 256): its top bit is implied by SHIFT. */
	return (shift + 1) * HISTOGRAM_SUB_COUNT +
	       (unsigned)((value >> shift) - HISTOGRAM_SUB_COUNT);
}

uint64_t histogram_bucket_low(unsigned index)
{
	unsigned shift;

	if (index < 2 * HISTOGRAM_SUB_COUNT)
		return index;
	shift = index / HISTOGRAM_SUB_COUNT - 1;
	return ((uint64_t)HISTOGRAM_SUB_COUNT + index % HISTOGRAM_SUB_COUNT) << shift;
}

uint64_t histogram_bucket_width(unsigned index)
{
	if (index < 2 * HISTOGRAM_SUB_COUNT)
		return 1;
	return (uint64_t)1 << (index / HISTOGRAM_SUB_COUNT - 1);
}

void histogram_record(struct histogram *h, uint64_t value)
{
	h->buckets[histogram_index(value)]++;
	h->count++;
	h->sum += (double)value;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void histogram_merge(struct histogram *dst, const struct histogram *src)
{
	unsigned i;

	if (src->count == 0)
		return;
	for (i = 0; i < HISTOGRAM_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t histogram_percentile(const struct histogram *h, double percentile)
{
	uint64_t rank, seen = 0, v, pm;
	unsigned i;

	if (h->count == 0)
		return 0;
	if (percentile <= 0.0)
		return h->min;
	if (percentile >= 100.0)
		return h->max;
	/* ceil(p/100 * count) in integers, with p in thousandths of a percent:
	 * in floating point 99.9/100*1000 is a hair above 999, and its ceiling
	 * 1000. Split count so that pm * count cannot overflow. */
	pm = (uint64_t)(percentile * 1000.0 + 0.5);
	rank = pm * (h->count / 100000) + (pm * (h->count % 100000) + 99999) / 100000;
	/* The first and the last message are known exactly: a p99.9 of 200
	 * messages is the maximum, not its bucket's middle just below it. */
	if (rank <= 1)
		return h->min;
	if (rank >= h->count)
		return h->max;
	for (i = 0; i < HISTOGRAM_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			break;
	}
	if (i == HISTOGRAM_BUCKETS)
		return h->max;
	v = histogram_bucket_low(i) + histogram_bucket_width(i) / 2;
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

double histogram_mean(const struct histogram *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}
