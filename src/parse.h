/*
 * parse.h -- checking what a user typed: strict numbers for the command
 * lines (the whole string a decimal number within range; no sign tricks,
 * no trailing junk), a host written as in a URL (the command lines and
 * pe_server_create's bind_address), and getopt_long's complaints worded.
 */
#ifndef POOLECHO_PARSE_H
#define POOLECHO_PARSE_H

#include <stddef.h>

/* 0 when S is a decimal integer in [MIN, MAX] (stored in *OUT); -EINVAL when
 * it is not a number, -ERANGE when out of range. */
int pe_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* Like pe_parse_ulong for a duration in seconds with up to three decimals
 * ("1.5"), stored in milliseconds. PE_PARSE_SECONDS_DECIMALS says so in
 * error messages, the same in both programs. */
#define PE_PARSE_SECONDS_DECIMALS "with up to three decimals (e.g. 30 or 0.5)"
int pe_parse_seconds_ms(const char *s, unsigned long max_ms, unsigned long *out_ms);

/* A size with an optional binary suffix, either case: k/K (KiB), m/M
 * (MiB), and no other. PE_PARSE_SIZE_SUFFIXES says so in error messages. */
#define PE_PARSE_SIZE_SUFFIXES "with an optional suffix k or K (KiB), m or M (MiB)"
int pe_parse_size(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* Room for an IPv4 address as a.b.c.d, and its NUL. */
enum { PE_PARSE_DOTTED_MAX = 16 };

/* How messages name the one form of IPv4 address taken. */
#define PE_PARSE_DOTTED "an IPv4 address as four decimal numbers without leading zeros (a.b.c.d)"

/* The white space isspace(3) knows in the C locale: in no address or name. */
#define PE_PARSE_WHITE " \t\n\v\f\r"

/* 1 when HOST is an IPv4 address in a form other than a.b.c.d in decimal
 * that getaddrinfo(3) still takes ("9999", "127.1", "010.0.0.1" in octal,
 * "0x7f000001"): a typo, a port or a zero-padded address that would
 * quietly mean another address, which is put in DOTTED; else 0. 0 for
 * HOST with white space ("127.0.0.1 "), which inet_aton reads as the
 * address but getaddrinfo sends to the resolver. */
int pe_parse_ipv4_other_form(const char *host, char dotted[PE_PARSE_DOTTED_MAX]);

/* HOST written as in a URL ("[::1]", "host:port"), or with white space,
 * '=' or a leading '-', which getaddrinfo would only fail to resolve, after
 * asking DNS, or an IPv4 address in another form (see
 * pe_parse_ipv4_other_form): what was expected instead, in BUF,
 * with PORT_HOW saying how to give the port ("with -p"); NULL when HOST is
 * a plain name or address. */
const char *pe_parse_host_misform(const char *host, const char *port_how, char *buf,
                                  size_t size);

/* Room for a word of the command line as pe_parse_shown shows it. */
enum { PE_PARSE_SHOWN_MAX = 1024 };

/* The first LEN bytes of S (fewer at a NUL) as a message shows what a
 * user typed: control characters as \xNN, and so the invisible ones
 * (zero-width, bidirectional controls, line separators), so that none is
 * unseen, moves the cursor or reorders the text, and the rest as typed,
 * UTF-8 included. Whole when it fits BUF of SIZE bytes; else cut, ending
 * in "...", never inside a UTF-8 character or an escape. Returns BUF. */
const char *pe_parse_shown(const char *s, size_t len, char *buf, size_t size);

/* The length of pe_parse_shown's string when nothing is cut. */
size_t pe_parse_shown_len(const char *s, size_t len);

struct option;

/* Word what getopt_long(3) just complained about -- it returned CH, ':'
 * (a value is missing) or '?' -- naming the option as the user typed it:
 * "option --backlog needs a value", "option --verbose takes no value",
 * "unknown option -x", "ambiguous option '--ver': could be --verbose,
 * --version"; an abbreviated long option is named in full. What the user
 * typed is shown with control characters as \xNN, and a byte that is no
 * ASCII letter ("-é") with its whole word. Reads optind and optopt, so
 * call it at once. */
void pe_parse_getopt_error(int ch, char *const argv[], const struct option *longopts,
                           char *msg, size_t size);

#endif /* POOLECHO_PARSE_H */
