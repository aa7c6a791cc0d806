/*
 * parse.c -- strict parsing of the numbers our command lines take.
 * strtoul alone accepts "-1" (as a huge value), " 5" and "5x"; these do not.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int pe_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int pe_parse_seconds_ms(const char *s, unsigned long max_ms, unsigned long *out_ms)
{
	unsigned long whole = 0, frac = 0, scale = 100;
	const char *p = s;

	if (!s || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > max_ms / 10)
			return -ERANGE;
		whole = whole * 10 + (unsigned long)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++) {
			if (scale == 0)
				return -EINVAL; /* finer than a millisecond */
			frac += (unsigned long)(*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p != '\0')
		return -EINVAL;
	if (whole > max_ms / 1000 || whole * 1000 + frac > max_ms)
		return -ERANGE;
	*out_ms = whole * 1000 + frac;
	return 0;
}

int pe_parse_size(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v, mult = 1;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mult = 1024UL; end++; break;
	case 'm': case 'M': mult = 1024UL * 1024; end++; break;
	case 'g': case 'G': mult = 1024UL * 1024 * 1024; end++; break;
	default: return -EINVAL;
	}
	if (*end != '\0')
		return -EINVAL;
	if (v > max / mult || v * mult < min || v * mult > max)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

void pe_parse_getopt_error(int ch, char *const argv[], const struct option *longopts,
                           char *msg, size_t size)
{
	const char *word = argv[optind - 1];
	size_t len;

	/* For a long option glibc puts its table value in optopt, not a letter:
	 * the word itself is the only reliable name. */
	if (strncmp(word, "--", 2) != 0) {
		if (ch == ':')
			snprintf(msg, size, "option -%c needs a value", optopt);
		else
			snprintf(msg, size, "unknown option -%c", optopt);
		return;
	}
	len = strcspn(word, "=");
	if (ch == ':') {
		snprintf(msg, size, "option %.*s needs a value", (int)len, word);
		return;
	}
	if (word[len] == '=')
		for (const struct option *o = longopts; o->name; o++)
			if (strlen(o->name) == len - 2 && strncmp(o->name, word + 2, len - 2) == 0) {
				snprintf(msg, size, "option --%s takes no value (got '%s')", o->name,
				         word + len + 1);
				return;
			}
	snprintf(msg, size, "unknown option '%.*s'", (int)len, word);
}
