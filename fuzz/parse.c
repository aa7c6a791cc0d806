/*
 * fuzz/parse.c -- libFuzzer harness for src/parse.c's number parsers,
 * each checked against a slow model of what parse.h promises: the value,
 * and -EINVAL (not a number) or -ERANGE (out of range) for the right
 * reason. Input: a byte choosing the minimum, one choosing the maximum,
 * then the text.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

typedef unsigned __int128 wide;
#define WIDE_CAP ((wide)1 << 100) /* far past any unsigned long, and no overflow */

/* Leading decimal digits of S, their value capped at WIDE_CAP; -1 if none. */
static int model_digits(const char *s, const char **end, wide *v)
{
	wide x = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		x = x * 10 + (unsigned)(*s - '0');
		if (x > WIDE_CAP)
			x = WIDE_CAP;
	}
	*end = s;
	*v = x;
	return 0;
}

static int model_ulong(const char *s, unsigned long min, unsigned long max, wide *v)
{
	const char *end;

	if (model_digits(s, &end, v) < 0 || *end)
		return -EINVAL;
	return *v < min || *v > max ? -ERANGE : 0;
}

static int model_size(const char *s, unsigned long min, unsigned long max, wide *v)
{
	const char *end;
	unsigned mult = 1;

	if (model_digits(s, &end, v) < 0)
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		mult = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mult = 1024 * 1024, end++;
	if (*end)
		return -EINVAL;
	*v *= mult;
	return *v < min || *v > max ? -ERANGE : 0;
}

/* Seconds with up to three decimals, in milliseconds. */
static int model_seconds(const char *s, unsigned long max, wide *v)
{
	const char *end;
	wide frac = 0;
	int digits = 0;

	if (model_digits(s, &end, v) < 0)
		return -EINVAL;
	if (*end == '.') {
		if (!isdigit((unsigned char)*++end))
			return -EINVAL;
		for (; isdigit((unsigned char)*end); end++, digits++)
			if (digits < 3)
				frac = frac * 10 + (unsigned)(*end - '0');
		if (digits > 3)
			return -EINVAL;
	}
	for (; digits < 3; digits++)
		frac *= 10;
	if (*end)
		return -EINVAL;
	*v = *v * 1000 + frac;
	return *v > max ? -ERANGE : 0;
}

/* Abort unless RC and OUT are what the model says. */
static void expect(int rc, unsigned long out, int want, wide value)
{
	if (rc != want || (rc == 0 && out != (unsigned long)value))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned long mins[] = {0, 1, 1024};
	static const unsigned long maxes[] = {65535, 86400000, 16ul << 20, ULONG_MAX};
	unsigned long min, max, out;
	char text[64];
	wide v;
	int want;

	if (size < 3 || size - 2 >= sizeof text)
		return 0;
	min = mins[data[0] % 3];
	max = maxes[data[1] % 4];
	memcpy(text, data + 2, size - 2);
	text[size - 2] = '\0';

	want = model_ulong(text, min, max, &v);
	expect(pe_parse_ulong(text, min, max, &out), out, want, v);
	want = model_size(text, min, max, &v);
	expect(pe_parse_size(text, min, max, &out), out, want, v);
	want = model_seconds(text, max, &v);
	expect(pe_parse_seconds_ms(text, max, &out), out, want, v);
	return 0;
}
