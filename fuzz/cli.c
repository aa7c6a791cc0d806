/*
 * fuzz/cli.c -- libFuzzer harness for both command lines: the input,
 * split at NUL bytes, is an argument vector for poolecho (first byte odd)
 * or poolechod (even). Whatever it is, parsing must not crash, and what it
 * accepts must lie within the ranges --help and the man pages give: those
 * figures are written here as the documents state them, not taken from
 * the code under test. A refusal (poolechod's, as it writes it to
 * standard error) must say why, shows no control character, may show a
 * byte past ASCII only as part of what the user typed, and is whole UTF-8
 * when every argument is.
 */
#include <config.h>

#include <assert.h>
#include <getopt.h>
#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client_cli.h"
#include "daemon_cli.h"
#include "helpers.h"

#define DAY_MS 86400000ul

/* Split DATA at NUL bytes into ARGV[1..], at most MAX - 1 words. */
static int split_args(const uint8_t *data, size_t size, char **argv, int max, char *buf)
{
	int argc = 1;
	size_t start = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	for (size_t i = 0; i <= size && argc < max; i++)
		if (i == size || buf[i] == '\0') {
			buf[i] = '\0';
			argv[argc++] = buf + start;
			start = i + 1;
		}
	argv[argc] = NULL;
	return argc;
}

/* Mark in COVERED where MSG holds the first N bytes of S. */
static void cover(const char *msg, const char *s, size_t n, char *covered)
{
	for (const char *at = msg; n && (at = strstr(at, s)); at++)
		if (strncmp(at, s, n) == 0)
			memset(covered + (at - msg), 1, n);
}

/* Mark in COVERED where MSG holds a tail of WORD (a value, as in -cVALUE
 * or --opt=VALUE, or the whole word) or what comes before its '=' (an
 * option's name). */
static void cover_tails(const char *msg, const char *word, char *covered)
{
	char head[4 * 512 + 1];
	size_t n = strcspn(word, "=");

	for (const char *tail = word; *tail; tail++)
		cover(msg, tail, strlen(tail), covered);
	if (n < sizeof head) {
		memcpy(head, word, n);
		head[n] = '\0';
		cover(msg, head, n, covered);
	}
}

/* Mark in COVERED where MSG holds part of SHOWN cut short: a word too
 * long for a message ends in "..." before its closing quote, and may be
 * the value in a word (-sVALUE), so any piece of SHOWN counts. */
static void cover_cut(const char *msg, const char *shown, char *covered)
{
	size_t slen = strlen(shown);

	for (const char *dots = msg; (dots = strstr(dots, "...'")); dots++) {
		size_t k = 0;

		while (k < (size_t)(dots - msg) && memmem(shown, slen, dots - k - 1, k + 1))
			k++;
		memset(covered + (dots - msg - k), 1, k);
	}
}

/* Whether code point C is one the documents call invisible: Unicode's
 * Default_Ignorable_Code_Point (DerivedCoreProperties.txt), the line and
 * paragraph separators and the interlinear annotation controls. */
static int invisible(unsigned long c)
{
	return c == 0xad || c == 0x34f || c == 0x61c || (c >= 0x115f && c <= 0x1160) ||
	       (c >= 0x17b4 && c <= 0x17b5) || (c >= 0x180b && c <= 0x180f) ||
	       (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) ||
	       (c >= 0x2060 && c <= 0x206f) || c == 0x3164 || (c >= 0xfe00 && c <= 0xfe0f) ||
	       c == 0xfeff || c == 0xffa0 || (c >= 0xfff0 && c <= 0xfffb) ||
	       (c >= 0x1bca0 && c <= 0x1bca3) || (c >= 0x1d173 && c <= 0x1d17a) ||
	       (c >= 0xe0000 && c <= 0xe0fff);
}

/* The bytes of the character at U, as --help and the man pages define a
 * character shown as \xNN: into *CONTROL whether it is one. C0 and DEL;
 * C1, U+0080-U+009F, as UTF-8 (C2 80-9F) or as a byte 0x80-0x9f that is
 * part of no UTF-8 character; an overlong encoding (of ASCII, controls
 * among it); and an invisible character. */
static size_t char_at(const unsigned char *u, int *control)
{
	unsigned long c;

	size_t n = u[0] < 0x80 ? 1 : u[0] < 0xc0 ? 0 : u[0] < 0xe0 ? 2 : u[0] < 0xf0 ? 3 :
	           u[0] < 0xf8 ? 4 : 0;

	for (size_t k = 1; k < n; k++)
		if ((u[k] & 0xc0) != 0x80)
			n = 0;
	if (n == 0) {   /* no whole UTF-8 character: one byte */
		*control = u[0] <= 0x9f;
		return 1;
	}
	if (n == 1)
		*control = u[0] < ' ' || u[0] == 0x7f;
	else if (n == 2)
		*control = u[0] < 0xc2 || (u[0] == 0xc2 && u[1] < 0xa0);
	else
		*control = (u[0] == 0xe0 && u[1] < 0xa0) || (u[0] == 0xf0 && u[1] < 0x90);
	if (n > 1 && !*control) {
		c = u[0] & (0xffu >> (n + 1));
		for (size_t k = 1; k < n; k++)
			c = c << 6 | (u[k] & 0x3fu);
		*control = invisible(c);
	}
	return n;
}

/* Whether MSG holds no control character, even one the user typed (it
 * is shown as \xNN), and every byte past ASCII lies inside a copy of what
 * the user typed: a byte on its own would be half a UTF-8 character. */
static int odd_bytes_are_quoted(const char *msg, char **argv)
{
	size_t len = strlen(msg), bytes;
	/* Words come from inputs under 4096 bytes (LLVMFuzzerTestOneInput). */
	static char shown[4 * 4096 + 1];
	char covered[4096] = {0};
	int control;

	assert(len < sizeof covered);
	for (char **w = argv + 1; *w; w++) {
		size_t n = 0;

		cover_tails(msg, *w, covered);
		for (const char *c = *w; *c; c += bytes) {
			bytes = char_at((const unsigned char *)c, &control);
			for (size_t k = 0; k < bytes; k++)
				if (control)
					n += (size_t)snprintf(shown + n, sizeof shown - n, "\\x%02x",
					                      (unsigned char)c[k]);
				else
					shown[n++] = c[k];
		}
		shown[n] = '\0';
		cover_tails(msg, shown, covered);
		cover_cut(msg, shown, covered);
	}
	for (size_t i = 0; i < len; i += bytes) {
		bytes = char_at((const unsigned char *)msg + i, &control);
		if (control)
			return 0;
	}
	for (size_t i = 0; i < len && i < sizeof covered; i++)
		if ((unsigned char)msg[i] > 0x7f && !covered[i])
			return 0;
	return 1;
}

/* Whether every word of ARGV is whole UTF-8: then so must a message be. */
static int words_utf8(char **argv)
{
	for (char **w = argv + 1; *w; w++)
		if (!th_utf8_whole(*w))
			return 0;
	return 1;
}

static void check_client(int argc, char **argv)
{
	struct client_config cfg;
	char err[512] = "";
	enum client_cli_result r = client_cli_parse(argc, argv, &cfg, err, sizeof err);

	if (r == CLIENT_CLI_USAGE) {
		size_t len = strlen(err);

		assert(len > 0); /* a refusal always says why */
		/* A word too long is cut by the message, with "...", between
		 * characters: never the message itself by its buffer. */
		assert(len < sizeof err - 1);
		assert(!words_utf8(argv) || th_utf8_whole(err));
		assert(err[len - 1] != '-'); /* not an option letter left out */
		assert(odd_bytes_are_quoted(err, argv));
	}
	if (r != CLIENT_CLI_RUN)
		return;
	assert(cfg.host && cfg.port);
	assert(cfg.connections >= 1 && cfg.connections <= 1000000);
	assert(cfg.size >= 1 && cfg.size <= 64ul << 20);
	assert(cfg.pipeline >= 1 && cfg.pipeline <= 4096);
	assert(cfg.rate <= 1000000);
	assert(cfg.threads <= 256);
	assert(cfg.timeout_ms <= DAY_MS && cfg.duration_ms <= DAY_MS);
	assert(cfg.messages <= CLIENT_MAX_MESSAGES);
	assert(cfg.nsources <= 64);
	assert(cfg.mode != CLIENT_CHURN || cfg.pipeline == 1);
	assert(cfg.mode == CLIENT_PIPE || cfg.messages || cfg.duration_ms);
}

/* daemon_cli_parse(), with what it writes to standard error into ERR. */
static int daemon_parse_captured(int argc, char **argv, struct daemon_options *opt, char *err,
                                 size_t size)
{
	static int capture = -1;
	int saved = dup(STDERR_FILENO), rc, emptied;
	ssize_t n;

	if (capture < 0)
		capture = memfd_create("stderr", MFD_CLOEXEC);
	emptied = capture >= 0 && ftruncate(capture, 0) == 0 && lseek(capture, 0, SEEK_SET) == 0;
	assert(emptied && saved >= 0);
	fflush(stderr);
	dup2(capture, STDERR_FILENO);
	/* A sanitizer's report still goes where stderr went, not to the memfd. */
	__sanitizer_set_report_fd((void *)(intptr_t)saved);
	rc = daemon_cli_parse(argc, argv, opt);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	__sanitizer_set_report_fd((void *)(intptr_t)STDERR_FILENO);
	close(saved);
	n = pread(capture, err, size - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	return rc;
}

static void check_daemon(int argc, char **argv)
{
	static const char lead[] = "poolechod: ", try_line[] = "Try 'poolechod --help'";
	struct daemon_options opt;
	static char err[8192];
	int rc = daemon_parse_captured(argc, argv, &opt, err, sizeof err);

	assert(rc == -1 || rc == 0 || rc == 2);
	if (rc == 2) {
		char *msg = err + sizeof lead - 1, *end = strchr(err, '\n');

		/* "poolechod: WHY", then "Try 'poolechod --help'...". */
		assert(strncmp(err, lead, sizeof lead - 1) == 0 && end && end > msg);
		*end = '\0';
		assert(end[-1] != '-'); /* not an option letter left out */
		assert(!words_utf8(argv) || th_utf8_whole(msg));
		assert(odd_bytes_are_quoted(msg, argv));
		assert(strncmp(end + 1, try_line, sizeof try_line - 1) == 0);
	}
	if (rc != -1)
		return;
	assert(opt.server.port <= 65535);
	assert(opt.server.workers >= 1 && opt.server.workers <= 65536);
	assert(opt.server.queue_capacity >= 1 && opt.server.queue_capacity <= 1000000);
	assert(opt.server.backlog >= 1 && opt.server.backlog <= 65535);
	assert(opt.server.per_source <= 1000000);
	assert(opt.server.buffer_size >= 1024 && opt.server.buffer_size <= 16ul << 20);
	assert(opt.server.stack_size == 0 ||
	       (opt.server.stack_size >= 64ul << 10 && opt.server.stack_size <= 64ul << 20));
	assert(opt.server.busy_poll_us <= 1000000);
	assert(opt.server.idle_timeout_ms <= DAY_MS && opt.server.grace_ms <= DAY_MS);
	assert(opt.stats_interval_ms <= DAY_MS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[4096];
	char *argv[34];
	int argc;

	if (size < 1 || size >= sizeof buf)
		return 0;
	argv[0] = data[0] & 1 ? "poolecho" : "poolechod";
	argc = split_args(data + 1, size - 1, argv, 33, buf);
	optind = 0; /* glibc: start getopt afresh, as for a new process */
	if (data[0] & 1)
		check_client(argc, argv);
	else
		check_daemon(argc, argv);
	return 0;
}
