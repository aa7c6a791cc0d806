/*
 * parse.c -- strict parsing of what a user typed: the numbers our command
 * lines take (strtoul alone accepts "-1" as a huge value, " 5" and "5x";
 * these do not), a host written as in a URL, and getopt_long's errors.
 */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
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
	int too_big = 0;

	if (!s || !isdigit((unsigned char)*p))
		return -EINVAL;
	/* Past the range, only the syntax is still checked: junk is -EINVAL
	 * however large the number before it. */
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > max_ms / 10)
			too_big = 1;
		else
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
	if (too_big || whole > max_ms / 1000 || whole * 1000 + frac > max_ms)
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
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mult = 1024UL; end++; break;
	case 'm': case 'M': mult = 1024UL * 1024; end++; break;
	default: return -EINVAL;
	}
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v > max / mult || v * mult < min || v * mult > max)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

/* The long option NAME (LEN bytes) means, as getopt_long(3) reads it: the
 * one of that name, else the only one it begins; NULL when none, or when
 * it begins several (*AMBIGUOUS then set). */
static const struct option *long_option_named(const struct option *longopts, const char *name,
                                              size_t len, int *ambiguous)
{
	const struct option *found = NULL;

	*ambiguous = 0;
	for (const struct option *o = longopts; o->name; o++) {
		if (strncmp(o->name, name, len) != 0)
			continue;
		if (strlen(o->name) == len) {
			*ambiguous = 0; /* an exact name is never ambiguous */
			return o;
		}
		if (found)
			*ambiguous = 1;
		found = o;
	}
	return *ambiguous ? NULL : found;
}

/* The length of the first N bytes of BUF without a UTF-8 character cut
 * short at their end. */
static size_t utf8_whole(const char *buf, size_t n)
{
	size_t lead = n, need;
	unsigned char c;

	while (lead > 0 && n - lead < 4 && ((unsigned char)buf[lead - 1] & 0xc0) == 0x80)
		lead--;
	if (lead == 0)
		return n;
	c = (unsigned char)buf[lead - 1];
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	return n - (lead - 1) < need ? lead - 1 : n;
}

/* The length of the first N bytes of BUF without a \xNN cut short at
 * their end: to text shown twice (a log line quoting a word already shown)
 * the first one's escapes are plain ASCII, cut anywhere. */
static size_t escape_whole(const char *buf, size_t n)
{
	for (size_t k = 1; k <= 3 && k <= n; k++)
		if (buf[n - k] == '\\')
			return k == 1 || (buf[n - k + 1] == 'x' &&
			                  (k == 2 || isxdigit((unsigned char)buf[n - 1]))) ? n - k : n;
	return n;
}

/* The length of the UTF-8 character that starts S (LEFT bytes at most), 2
 * to 4, or 0 when no whole multi-byte character starts there: a lead byte
 * and its continuation bytes, overlong or not. */
static size_t utf8_length(const unsigned char *s, size_t left)
{
	size_t need = s[0] >= 0xf8 ? 0 : s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;

	if (need == 0 || need > left)
		return 0;
	for (size_t k = 1; k < need; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return need;
}

/* Whether code point C is one that a terminal shows as nothing, or that
 * moves what follows: Unicode's Default_Ignorable_Code_Point, such as a
 * zero-width space (80\u200b reads as 80), a variation selector, a Hangul
 * filler, a bidirectional control (U+202E shows "08" as "80") or a tag;
 * the interlinear annotation controls; or a line or paragraph separator,
 * which log readers (Python's splitlines, editors) take as a line's end. */
static bool invisible(unsigned long c)
{
	static const struct {
		unsigned long first, last;
	} ranges[] = {
		{0x00ad, 0x00ad}, {0x034f, 0x034f}, {0x061c, 0x061c}, {0x115f, 0x1160},
		{0x17b4, 0x17b5}, {0x180b, 0x180f}, {0x200b, 0x200f}, {0x2028, 0x202e},
		{0x2060, 0x206f}, {0x3164, 0x3164}, {0xfe00, 0xfe0f}, {0xfeff, 0xfeff},
		{0xffa0, 0xffa0}, {0xfff0, 0xfffb}, {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a},
		{0xe0000, 0xe0fff},
	};

	for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
		if (c >= ranges[i].first && c <= ranges[i].last)
			return true;
	return false;
}

/* What the character at S (LEFT bytes at most) takes as shown, and in
 * *BYTES how many bytes of S it is. A control character shows each byte as
 * \xNN: C0 and DEL; C1 (U+0080-U+009F), which terminals take as CSI and
 * the like, and so a byte 0x80-0x9f that is no part of a UTF-8 character
 * (a Latin-1 terminal's C1); an overlong encoding, which a lax decoder
 * reads as the ASCII (ESC too) it spells; and an invisible one (above).
 * Anything else shows as itself. */
static size_t shown_width(const char *s, size_t left, size_t *bytes)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned long c;
	size_t n;

	*bytes = 1;
	if (u[0] < 0x80)
		return u[0] < ' ' || u[0] == 0x7f ? 4 : 1;
	if ((n = utf8_length(u, left)) == 0)
		return u[0] <= 0x9f ? 4 : 1;
	*bytes = n;
	if ((n == 2 && (u[0] < 0xc2 || (u[0] == 0xc2 && u[1] <= 0x9f))) ||
	    (n == 3 && u[0] == 0xe0 && u[1] < 0xa0) || (n == 4 && u[0] == 0xf0 && u[1] < 0x90))
		return 4 * n;
	c = u[0] & (0x7f >> n);
	for (size_t k = 1; k < n; k++)
		c = c << 6 | (u[k] & 0x3f);
	return invisible(c) ? 4 * n : n;
}

size_t pe_parse_shown_len(const char *s, size_t len)
{
	size_t need = 0, bytes;

	for (size_t i = 0; i < len && s[i]; i += bytes)
		need += shown_width(s + i, len - i, &bytes);
	return need;
}

const char *pe_parse_shown(const char *s, size_t len, char *buf, size_t size)
{
	size_t need = pe_parse_shown_len(s, len), room, n = 0, i, bytes, width;

	if (size == 0)
		return buf;
	/* Whole if it fits; else cut where "..." and the NUL still fit. */
	room = need < size ? size - 1 : size >= 4 ? size - 4 : 0;
	for (i = 0; i < len && s[i]; i += bytes) {
		width = shown_width(s + i, len - i, &bytes);
		if (n + width > room)
			break;
		if (width == bytes) {
			memcpy(buf + n, s + i, bytes);
			n += bytes;
		} else {
			for (size_t k = 0; k < bytes; k++)
				n += (size_t)snprintf(buf + n, size - n, "\\x%02x",
				                      (unsigned char)s[i + k]);
		}
	}
	if (need >= size && size >= 4) {
		n = escape_whole(buf, utf8_whole(buf, n));
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* Room for the word a message of SIZE bytes quotes: half of it, so that
 * what is said around the word still fits, and it is cut with "..." by
 * pe_parse_shown, not mid-character by snprintf. */
static size_t word_room(size_t size)
{
	return size / 2 < PE_PARSE_SHOWN_MAX ? size / 2 : PE_PARSE_SHOWN_MAX;
}

/* Whether getopt read each byte of WORD (N bytes) after its dash as an
 * option: all before the last are options that take no value (a short
 * option here has a long one of the same value in LONGOPTS). */
static int read_as_options(const char *word, size_t n, const struct option *longopts)
{
	for (size_t i = 1; i + 1 < n; i++) {
		const struct option *o = longopts;

		while (o->name && (o->val != (unsigned char)word[i] || o->has_arg != no_argument))
			o++;
		if (!o->name)
			return 0;
	}
	return 1;
}

/* The word of short options holding optopt, which getopt just refused:
 * argv[optind] while getopt is inside it, else the word before, when the
 * byte ended that word. The word before is it when read as options to a
 * last byte that is optopt ("-x -qx" fails at the first -x): parsing
 * stops at the first error, so it cannot have been read before. */
static const char *cluster_word(char *const argv[], const struct option *longopts)
{
	const char *word = argv[optind], *before = optind > 1 ? argv[optind - 1] : "";
	size_t n = strlen(before);

	if (n > 1 && before[0] == '-' && before[1] != '-' &&
	    (unsigned char)before[n - 1] == (unsigned char)optopt &&
	    read_as_options(before, n, longopts))
		return before;
	if (!word || word[0] != '-' || word[1] == '-' || !strchr(word + 1, optopt))
		word = before;
	return word;
}

/* An unknown letter: alone in its word, "unknown option -x"; in a cluster,
 * with the word, since it may be a long option typed with one dash
 * ("-version" fails at its 'e', which the user never meant as one), and
 * then with the long option it names. */
static void unknown_letter(char *const argv[], const struct option *longopts, char *msg,
                           size_t size)
{
	const char *word = cluster_word(argv, longopts);
	size_t len = strcspn(word, "=");
	const struct option *o = NULL;
	char buf[PE_PARSE_SHOWN_MAX];
	int ambiguous;

	if (word[0] != '-' || ((unsigned char)word[1] == optopt && word[2] == '\0')) {
		snprintf(msg, size, "unknown option -%c", optopt);
		return;
	}
	if (len > 2)
		o = long_option_named(longopts, word + 1, len - 1, &ambiguous);
	snprintf(msg, size, "unknown option -%c in '%s'%s%s%s", optopt,
	         pe_parse_shown(word, strlen(word), buf, word_room(size)),
	         o ? " (did you mean --" : "", o ? o->name : "", o ? "?)" : "");
}

/* An unknown short option that is no printable ASCII letter: one byte of
 * a UTF-8 character ("-é"), a control character, or a '-' inside a
 * cluster ("-q-x", which "unknown option --" would muddle). Printed alone
 * it would be half a character, invisible or misread, so the word
 * holding it is named whole. */
static void unknown_byte_in_cluster(char *const argv[], const struct option *longopts,
                                   char *msg, size_t size)
{
	const char *word = cluster_word(argv, longopts);
	char buf[PE_PARSE_SHOWN_MAX];

	snprintf(msg, size, "unknown option %s'%s'",
	         word[0] && (unsigned char)word[1] == (unsigned char)optopt ? "" : "in ",
	         pe_parse_shown(word, strlen(word), buf, word_room(size)));
}

void pe_parse_getopt_error(int ch, char *const argv[], const struct option *longopts,
                           char *msg, size_t size)
{
	/* The word getopt last finished. A short option inside a cluster
	 * ("-xv") fails before optind moves past it, so the word can be the
	 * one before: a long option's word is taken only when what failed is
	 * that option (glibc puts its table value in optopt, or 0 when the
	 * word names none), else the failure is optopt's letter. musl's
	 * getopt leaves optind one past argc when a short option's value is
	 * missing at the end ("-p"): argv[optind - 1] is argv[argc], NULL. */
	const char *word = optind > 1 && argv[optind - 1] ? argv[optind - 1] : "";
	const struct option *o = NULL;
	size_t len = strcspn(word, "=");
	int ambiguous = 0, is_long = 0;
	char buf[PE_PARSE_SHOWN_MAX];

	if (strncmp(word, "--", 2) == 0 && len > 2) {
		o = long_option_named(longopts, word + 2, len - 2, &ambiguous);
		is_long = optopt == 0 || (o && o->val == optopt);
	} else if (strncmp(word, "--=", 3) == 0 && optopt == 0) {
		/* No name at all: getopt took it for a long option none matched. */
		snprintf(msg, size, "unknown option '%s'",
		         pe_parse_shown(word, strlen(word), buf, word_room(size)));
		return;
	}
	if (!is_long) {
		if (ch == ':')
			snprintf(msg, size, "option -%c needs a value", optopt);
		else if (optopt > ' ' && optopt < 0x7f && optopt != '-')
			unknown_letter(argv, longopts, msg, size);
		else
			unknown_byte_in_cluster(argv, longopts, msg, size);
		return;
	}
	if (ambiguous) {
		int n = snprintf(msg, size, "ambiguous option '%s': could be",
		                 pe_parse_shown(word, len, buf, word_room(size)));
		const char *sep = " ";

		for (const struct option *c = longopts; c->name && n >= 0 && (size_t)n < size; c++)
			if (strncmp(c->name, word + 2, len - 2) == 0) {
				n += snprintf(msg + n, size - (size_t)n, "%s--%s", sep, c->name);
				sep = ", ";
			}
		return;
	}
	if (!o)
		snprintf(msg, size, "unknown option '%s'",
		         pe_parse_shown(word, len, buf, word_room(size)));
	else if (ch == ':')
		snprintf(msg, size, "option --%s needs a value", o->name);
	else if (word[len] == '=')
		snprintf(msg, size, "option --%s takes no value (got '%s')", o->name,
		         pe_parse_shown(word + len + 1, strlen(word + len + 1), buf,
		                        word_room(size)));
	else
		snprintf(msg, size, "unknown option '%s'",
		         pe_parse_shown(word, len, buf, word_room(size)));
}

int pe_parse_ipv4_other_form(const char *host, char dotted[PE_PARSE_DOTTED_MAX])
{
	struct in_addr a;

	/* inet_aton(3) is what getaddrinfo(3) tries first: a name it takes
	 * never reaches a resolver, so no host name is refused here. glibc's
	 * also takes white space and anything after it ("127.0.0.1 x"), which
	 * getaddrinfo (glibc 2.29 on) sends to the resolver: no address. */
	if (host[strcspn(host, PE_PARSE_WHITE)] != '\0' || inet_pton(AF_INET, host, &a) == 1 ||
	    inet_aton(host, &a) != 1)
		return 0;
	inet_ntop(AF_INET, &a, dotted, PE_PARSE_DOTTED_MAX);
	return 1;
}

const char *pe_parse_host_misform(const char *host, const char *port_how, char *buf,
                                  size_t size)
{
	const char *colon = strchr(host, ':'), *eq = strchr(host, '=');
	char dotted[PE_PARSE_DOTTED_MAX];
	unsigned long port;

	if (host[0] == '-')
		/* No name starts so (RFC 1123): "-b -v" took an option for the value. */
		snprintf(buf, size, "an address or host name, which never starts with '-' "
		         "(an option where a value was due?)");
	else if (host[strcspn(host, PE_PARSE_WHITE)] != '\0')
		/* "127.0.0.1\r" from a CRLF file: getaddrinfo asks DNS for it. */
		snprintf(buf, size, "an address or host name without white space");
	else if (eq && !memchr(host, '%', (size_t)(eq - host)))
		/* "-bind=::1" is -b given "ind=::1"; an interface name may hold '='. */
		snprintf(buf, size, "an address or host name, which holds no '=' (a long option "
		         "typed with one dash?)");
	else if (host[0] == '[')
		snprintf(buf, size, "an IPv6 address without brackets, e.g. ::1%s%s",
		         strstr(host, "]:") ? ", and the port given " : "",
		         strstr(host, "]:") ? port_how : "");
	else if (colon && !strchr(colon + 1, ':'))
		snprintf(buf, size, "an address or host name without a port (give it %s)", port_how);
	else if (pe_parse_ipv4_other_form(host, dotted)) {
		/* "9999" or "010.0.0.1" would quietly be 0.0.39.15 or 8.0.0.1. */
		bool a_port = pe_parse_ulong(host, 0, 65535, &port) == 0;

		snprintf(buf, size, PE_PARSE_DOTTED ", or a host name; this would mean %s%s%s", dotted,
		         a_port ? "; a port is given " : "", a_port ? port_how : "");
	} else
		return NULL;
	return buf;
}
