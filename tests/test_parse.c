/*
 * test_parse.c -- the strict number parsers behind both command lines:
 * what each takes and gives, and that a value is refused as not a number
 * (-EINVAL) or as out of range (-ERANGE) for the right reason, junk
 * after a number too large to hold included (a fuzzer found that case
 * reported as out of range).
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <string.h>

#include "parse.h"

struct parse_case {
	const char *text;
	int rc;
	unsigned long value; /* when rc is 0 */
};

typedef int parse_fn(const char *s, unsigned long min, unsigned long max, unsigned long *out);

static void check_cases(const char *name, parse_fn *parse, unsigned long min, unsigned long max,
                        const struct parse_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned long out = 424242;
		int rc = parse(cases[i].text, min, max, &out);

		cr_expect_eq(rc, cases[i].rc, "%s('%s', %lu, %lu): %d, want %d", name, cases[i].text,
		             min, max, rc, cases[i].rc);
		if (cases[i].rc == 0)
			cr_expect_eq(out, cases[i].value, "%s('%s'): %lu, want %lu", name, cases[i].text,
			             out, cases[i].value);
		else
			cr_expect_eq(out, 424242, "%s('%s') failed but wrote %lu", name, cases[i].text,
			             out);
	}
}

Test(parse, whole_numbers, .timeout = 10)
{
	static const struct parse_case cases[] = {
		{"1", 0, 1}, {"65535", 0, 65535}, {"007", 0, 7},
		{"0", -ERANGE, 0}, {"65536", -ERANGE, 0},
		{"99999999999999999999999", -ERANGE, 0},
		{"", -EINVAL, 0}, {"-1", -EINVAL, 0}, {"+1", -EINVAL, 0}, {" 5", -EINVAL, 0},
		{"5 ", -EINVAL, 0}, {"5x", -EINVAL, 0}, {"0x10", -EINVAL, 0}, {"1e3", -EINVAL, 0},
		{"99999999999999999999999x", -EINVAL, 0},
	};

	check_cases("pe_parse_ulong", pe_parse_ulong, 1, 65535, cases,
	            sizeof cases / sizeof cases[0]);
}

Test(parse, sizes_with_binary_suffixes, .timeout = 10)
{
	static const struct parse_case cases[] = {
		{"1024", 0, 1024}, {"16k", 0, 16384}, {"16K", 0, 16384}, {"1m", 0, 1048576},
		{"16M", 0, 16777216}, {"16384k", 0, 16777216},
		{"1023", -ERANGE, 0}, {"16385k", -ERANGE, 0}, {"17M", -ERANGE, 0},
		{"99999999999999999999999", -ERANGE, 0}, {"99999999999999999999999k", -ERANGE, 0},
		/* A number that fits, times its suffix, does not: 2^54 + 1 KiB
		 * and 2^44 + 1 MiB wrap to 1 KiB and 1 MiB in 64 bits. */
		{"18014398509481985k", -ERANGE, 0}, {"17592186044417m", -ERANGE, 0},
		{"", -EINVAL, 0}, {"k", -EINVAL, 0}, {"16kb", -EINVAL, 0}, {"16 k", -EINVAL, 0},
		{"16g", -EINVAL, 0}, {"1.5k", -EINVAL, 0}, {"-16k", -EINVAL, 0},
		{"99999999999999999999999x", -EINVAL, 0}, {"99999999999999999999999kk", -EINVAL, 0},
	};

	check_cases("pe_parse_size", pe_parse_size, 1024, 16777216, cases,
	            sizeof cases / sizeof cases[0]);
}

/* pe_parse_seconds_ms has no minimum: this adapter gives it the shape of
 * the others, for the table. */
static int seconds_ms(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	(void)min;
	return pe_parse_seconds_ms(s, max, out);
}

Test(parse, seconds_to_the_millisecond, .timeout = 10)
{
	static const struct parse_case cases[] = {
		{"0", 0, 0}, {"2.5", 0, 2500}, {"0.001", 0, 1}, {"1.05", 0, 1050},
		{"86400", 0, 86400000}, {"86400.000", 0, 86400000},
		{"86400.001", -ERANGE, 0}, {"86401", -ERANGE, 0},
		{"99999999999999999999999", -ERANGE, 0}, {"99999999999999999999999.5", -ERANGE, 0},
		{"18446744073709551617", -ERANGE, 0}, /* 2^64 + 1: wrapped, it would be 1 */
		{"", -EINVAL, 0}, {"1.", -EINVAL, 0}, {".5", -EINVAL, 0}, {"1.0005", -EINVAL, 0},
		{"1,5", -EINVAL, 0}, {"1e3", -EINVAL, 0}, {"-1", -EINVAL, 0}, {"1s", -EINVAL, 0},
		{"99999999999999999999999x", -EINVAL, 0}, {"99999999999999999999999.0005", -EINVAL, 0},
	};

	check_cases("pe_parse_seconds_ms", seconds_ms, 0, 86400000, cases,
	            sizeof cases / sizeof cases[0]);
}

/* What a user typed, as a message shows it: every control character as
 * \xNN, UTF-8 as typed, and a cut that says so and never splits a
 * character. */
Test(parse, typed_words_shown_with_control_characters_escaped, .timeout = 10)
{
	static const struct {
		const char *typed;
		size_t len, size;
		const char *shown;
	} cases[] = {
		{"plain", 5, 64, "plain"},
		{"a\x1b[2Jb", 6, 64, "a\\x1b[2Jb"},
		{"\t\r\n\x7f", 4, 64, "\\x09\\x0d\\x0a\\x7f"},
		{"caf\xc3\xa9", 5, 64, "caf\xc3\xa9"},
		{"name=value", 4, 64, "name"},     /* LEN ends it */
		{"ab\0cd", 5, 64, "ab"},           /* so does a NUL */
		{"ab", 2, 3, "ab"}, /* what fits is never cut */
		{"a\x01", 2, 6, "a\\x01"},
		/* Else cut where "..." still fits, saying so. */
		{"abcdefghijklmnop", 16, 12, "abcdefgh..."},
		{"a\x01", 2, 5, "a..."},                     /* never half an escape */
		{"\x01\x02\x03\x04", 4, 12, "\\x01\\x02..."},
		{"abcde\xc3\xa9xyz", 10, 10, "abcde..."},    /* never half a character */
		{"abc\xe2\x82\xac\xe2\x82\xac", 9, 9, "abc..."},
		{"abc\xe2\x82\xac\xe2\x82\xacx", 10, 10, "abc\xe2\x82\xac..."},
		{"ab\xf0\x9f\x98\x80" "cdef", 10, 9, "ab..."},
		{"ab\xf0\x9f\x98\x80" "cdef", 10, 10, "ab\xf0\x9f\x98\x80..."},
		{"abc", 3, 2, ""}, /* too small for anything: still a string */
		/* C1 controls: U+009B is CSI, as ESC [ is; so is a byte 0x9b
		 * alone to a Latin-1 terminal. U+00A0 and Latin-1 letters stay. */
		{"a\xc2\x9b" "2Jb", 6, 64, "a\\xc2\\x9b2Jb"},
		{"a\x9b" "2J", 4, 64, "a\\x9b2J"},
		{"\xc2\xa0\xc2\x80", 4, 64, "\xc2\xa0\\xc2\\x80"},
		{"\xe2\x82\xac\x85", 4, 64, "\xe2\x82\xac\\x85"},
		{"\xe9t\xe9", 3, 64, "\xe9t\xe9"},
		/* overlong: ESC to a lax decoder */
		{"\xc0\x9b", 2, 64, "\\xc0\\x9b"},
		{"\xe0\x80\x9b", 3, 64, "\\xe0\\x80\\x9b"},
		{"\xe0\xa0\x80", 3, 64, "\xe0\xa0\x80"},
		{"\xf0\x80\x80\x9b", 4, 64, "\\xf0\\x80\\x80\\x9b"},
		/* the last C1 control, U+009F (APC), and its Latin-1 byte */
		{"a\xc2\x9f", 3, 64, "a\\xc2\\x9f"},
		{"a\x9f", 2, 64, "a\\x9f"},
		{"\xc2", 1, 64, "\xc2"},                    /* half a character: as typed */
		/* Invisible: "80" and a zero-width space is no "80"; a
		 * bidirectional override shows "08" as "80"; a line separator
		 * ends a line for a log reader. Their neighbours stay. */
		{"80\xe2\x80\x8b", 5, 64, "80\\xe2\\x80\\x8b"},
		{"\xe2\x80\xae" "08", 5, 64, "\\xe2\\x80\\xae08"},
		{"a\xe2\x80\xa8" "b\xe2\x80\xa9", 8, 64, "a\\xe2\\x80\\xa8b\\xe2\\x80\\xa9"},
		{"\xe2\x81\xa6x\xe2\x81\xa9", 7, 64, "\\xe2\\x81\\xa6x\\xe2\\x81\\xa9"},
		{"\xef\xbb\xbf" "1", 4, 64, "\\xef\\xbb\\xbf1"},
		{"\xd8\x9c", 2, 64, "\\xd8\\x9c"},
		{"\xf3\xa0\x80\x81", 4, 64, "\\xf3\\xa0\\x80\\x81"},
		/* The rest of what Unicode says to show as nothing (its
		 * Default_Ignorable_Code_Point): "80" and a variation
		 * selector, a grapheme joiner or a Hangul filler reads as 80. */
		{"80\xef\xb8\x8f", 5, 64, "80\\xef\\xb8\\x8f"},
		{"80\xcd\x8f", 4, 64, "80\\xcd\\x8f"},
		{"8\xe3\x85\xa4" "0", 5, 64, "8\\xe3\\x85\\xa40"},
		{"8\xe1\x85\x9f" "0", 5, 64, "8\\xe1\\x85\\x9f0"},
		{"80\xc2\xad", 4, 64, "80\\xc2\\xad"},
		{"80\xf3\xa0\x84\x80", 6, 64, "80\\xf3\\xa0\\x84\\x80"},
		{"80\xe1\xa0\x8b", 5, 64, "80\\xe1\\xa0\\x8b"},
		/* the ends of ranges: the word joiner, the last Mongolian
		 * variation selector, U+FFF0 and the last interlinear
		 * annotation character, the tag block's first place and the
		 * last of the ignorable ones after it (U+E0FFF) */
		{"\xe2\x81\xa0", 3, 64, "\\xe2\\x81\\xa0"},
		{"\xe1\xa0\x8f", 3, 64, "\\xe1\\xa0\\x8f"},
		{"\xef\xbf\xb0" "a\xef\xbf\xbb", 7, 64, "\\xef\\xbf\\xb0a\\xef\\xbf\\xbb"},
		{"\xf3\xa0\x80\x80" "a\xf3\xa0\xbf\xbf", 9, 64,
		 "\\xf3\\xa0\\x80\\x80a\\xf3\\xa0\\xbf\\xbf"},
		{"\xe2\x80\x8a\xe2\x80\x90\xe2\x80\xaf\xe2\x81\xb0", 12, 64,
		 "\xe2\x80\x8a\xe2\x80\x90\xe2\x80\xaf\xe2\x81\xb0"},
		{"ab\xc2\x9b" "cdef", 8, 10, "ab..."},     /* never half of one's escape */
		{"ab\xc2\x9b" "cdef", 8, 15, "ab\\xc2\\x9bcdef"},
		/* Shown again (a log line quoting a word shown), the escapes
		 * the first pass made are not cut either. */
		{"ab\\x01\\x02cd", 12, 7, "ab..."},
		{"ab\\x01\\x02cd", 12, 8, "ab..."},
		{"ab\\x01\\x02cd", 12, 9, "ab..."},
		{"ab\\x01\\x02cd", 12, 10, "ab\\x01..."},
		{"ab\\x01\\x02cd", 12, 11, "ab\\x01..."},
		{"ab\\x01\\x02cd", 12, 12, "ab\\x01..."},
		{"a\\b\\cdefgh", 10, 8, "a\\b..."}, /* a backslash that begins no escape stays */
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[64];

		memset(buf, '#', sizeof buf);
		pe_parse_shown(cases[i].typed, cases[i].len, buf, cases[i].size);
		cr_expect_str_eq(buf, cases[i].shown, "case %zu", i);
		if (cases[i].size >= 4)
			cr_expect_eq(pe_parse_shown_len(cases[i].typed, cases[i].len) < cases[i].size,
			             strcmp(buf + (strlen(buf) > 3 ? strlen(buf) - 3 : 0), "...") != 0,
			             "case %zu: cut, or not, against pe_parse_shown_len", i);
		cr_expect_lt(strlen(buf), cases[i].size, "case %zu overflows its %zu bytes", i,
		             cases[i].size);
	}
}

/* getaddrinfo(3) takes inet_aton(3)'s forms of IPv4 before any resolver:
 * a bare number ("poolecho 7777", a port where HOST goes), a short form,
 * octal and hex. Each would quietly mean another address (7777 is
 * 0.0.30.97, port 9999), so each is
 * named, with what it would mean; a.b.c.d in decimal, IPv6 and names
 * are not. */
Test(parse, ipv4_in_another_form_than_dotted_decimal_is_named, .timeout = 10)
{
	static const struct {
		const char *host;
		const char *means; /* NULL: taken */
	} cases[] = {
		{"7777", "0.0.30.97"}, {"9", "0.0.0.9"}, {"127.1", "127.0.0.1"},
		{"010.0.0.1", "8.0.0.1"}, {"0x7f000001", "127.0.0.1"}, {"127.000.000.001", "127.0.0.1"},
		{"4294967295", "255.255.255.255"},
		{"127.0.0.1", NULL}, {"0.0.0.0", NULL}, {"::1", NULL}, {"localhost", NULL},
		{"cafe", NULL}, {"1.2.3.4.5", NULL}, {"4294967296", NULL}, {"256.0.0.1", NULL},
		{"host-1.example", NULL},
	};
	char dotted[PE_PARSE_DOTTED_MAX], hint[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int other = pe_parse_ipv4_other_form(cases[i].host, dotted);
		const char *expected = pe_parse_host_misform(cases[i].host, "with -p", hint,
		                                             sizeof hint);

		cr_expect_eq(other, cases[i].means != NULL, "'%s': %d", cases[i].host, other);
		if (!cases[i].means) {
			cr_expect_null(expected, "'%s' refused: %s", cases[i].host, expected);
			continue;
		}
		cr_expect_str_eq(dotted, cases[i].means, "'%s'", cases[i].host);
		cr_assert_not_null(expected, "'%s' taken", cases[i].host);
		cr_expect_not_null(strstr(expected, cases[i].means), "'%s': %s", cases[i].host,
		                   expected);
		cr_expect_not_null(strstr(expected, "a.b.c.d"), "'%s': %s", cases[i].host, expected);
	}
}

/* No host name starts with '-' (RFC 1123): "-b -v" took an option for the
 * value, which would otherwise go to the resolver. */
Test(parse, a_host_that_starts_with_a_dash_is_named, .timeout = 10)
{
	char hint[256];

	cr_assert_not_null(pe_parse_host_misform("-v", "with -p", hint, sizeof hint));
	cr_expect_not_null(strstr(hint, "never starts with '-'"), "%s", hint);
	cr_expect_null(pe_parse_host_misform("a-b", "with -p", hint, sizeof hint));
}

/* White space in a host: glibc's inet_aton takes "127.0.0.1 " (and
 * anything after the space) as 127.0.0.1, but getaddrinfo (glibc 2.29 on)
 * does not, and asks DNS for it; a CRLF file leaves "127.0.0.1\r". The
 * white space is what is wrong, not the form of the address, and it is
 * named wherever it is. */
Test(parse, white_space_in_a_host_is_named_as_such, .timeout = 10)
{
	static const char *const hosts[] = {"127.0.0.1 ", "127.0.0.1\r", "7777 ", " 127.0.0.1",
	                                    "::1\r", "local host"};
	char dotted[PE_PARSE_DOTTED_MAX], hint[256];

	for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
		const char *expected = pe_parse_host_misform(hosts[i], "with -p", hint, sizeof hint);

		cr_expect_eq(pe_parse_ipv4_other_form(hosts[i], dotted), 0, "'%s'", hosts[i]);
		cr_assert_not_null(expected, "'%s' taken", hosts[i]);
		cr_expect_not_null(strstr(expected, "white space"), "'%s': %s", hosts[i], expected);
		cr_expect_null(strstr(expected, "would mean"), "'%s': %s", hosts[i], expected);
	}
}

/* "-bind=::1", a long option typed with one dash, is -b given "ind=::1":
 * no host name holds '=' (an interface name after '%' may). */
Test(parse, an_equals_sign_in_a_host_is_named, .timeout = 10)
{
	char hint[256];

	cr_assert_not_null(pe_parse_host_misform("ind=::1", "with -p", hint, sizeof hint));
	cr_expect_not_null(strstr(hint, "one dash"), "%s", hint);
	cr_expect_null(pe_parse_host_misform("fe80::1%a=b", "with -p", hint, sizeof hint));
}

/* The port hint is for what could be a port: not hex, not 4294967295. */
Test(parse, only_a_number_that_could_be_a_port_is_called_one, .timeout = 10)
{
	char hint[256];

	cr_assert_not_null(pe_parse_host_misform("7777", "with -p", hint, sizeof hint));
	cr_expect_not_null(strstr(hint, "a port is given with -p"), "%s", hint);
	cr_assert_not_null(pe_parse_host_misform("0x1f90", "with -p", hint, sizeof hint));
	cr_expect_null(strstr(hint, "port"), "%s", hint);
	cr_assert_not_null(pe_parse_host_misform("4294967295", "with -p", hint, sizeof hint));
	cr_expect_null(strstr(hint, "port"), "%s", hint);
}

/* musl's getopt, when a short option's value is missing at the end of the
 * line ("poolechod -p"), returns ':' with optind one past argc, where
 * glibc's leaves it at argc: the word before is then argv[argc], NULL.
 * The message must still name the option (it crashed on musl). */
Test(parse, a_value_missing_at_the_end_past_argc_names_the_option, .timeout = 10)
{
	static const struct option longopts[] = {
		{"port", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	char prog[] = "poolechod", opt[] = "-p";
	char *argv[] = {prog, opt, NULL};
	char msg[256] = "";

	optind = 3; /* argc + 1, as musl leaves it */
	optopt = 'p';
	pe_parse_getopt_error(':', argv, longopts, msg, sizeof msg);
	cr_expect_str_eq(msg, "option -p needs a value");
}
