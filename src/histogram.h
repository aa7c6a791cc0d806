/*
 * histogram.h -- a log-linear latency histogram in the manner of
 * HdrHistogram: fixed memory, exact below 256, and above that every value
 * lands in a bucket no wider than 1/128 of the value, so a reported
 * percentile is within HISTOGRAM_REL_ERROR (1/256) of the true one.
 */
#ifndef POOLECHO_HISTOGRAM_H
#define POOLECHO_HISTOGRAM_H

#include <stdint.h>

/* 128 sub-buckets per power of two: bucket width <= value/128. */
#define HISTOGRAM_SUB_BITS 7
#define HISTOGRAM_SUB_COUNT (1u << HISTOGRAM_SUB_BITS)
/* Every uint64_t value has a bucket: 2*128 exact ones below 256, then 128
 * for each of the octaves [2^8, 2^9) ... [2^63, 2^64). */
#define HISTOGRAM_BUCKETS ((65 - HISTOGRAM_SUB_BITS) * HISTOGRAM_SUB_COUNT)
/* A reported value is the middle of its bucket: off by at most half a width. */
#define HISTOGRAM_REL_ERROR (1.0 / (2.0 * HISTOGRAM_SUB_COUNT))

struct histogram {
	uint64_t count;
	uint64_t min, max;   /* exact; min is UINT64_MAX while empty */
	double sum;          /* for the mean */
	uint64_t buckets[HISTOGRAM_BUCKETS];
};

void histogram_init(struct histogram *h);
void histogram_record(struct histogram *h, uint64_t value);

/* Add every sample of SRC into DST (per-thread histograms into one). */
void histogram_merge(struct histogram *dst, const struct histogram *src);

/* The value below or at which PERCENTILE (0..100, to 1/1000) of the
 * samples lie: the sample of rank ceil(p/100 * count), computed in integers,
 * reported as its bucket's middle and clamped to [min, max]. 0 for an
 * empty histogram. */
uint64_t histogram_percentile(const struct histogram *h, double percentile);

double histogram_mean(const struct histogram *h);

/* Bucket arithmetic, exposed for the tests. */
unsigned histogram_index(uint64_t value);
uint64_t histogram_bucket_low(unsigned index);
uint64_t histogram_bucket_width(unsigned index);

#endif /* POOLECHO_HISTOGRAM_H */
