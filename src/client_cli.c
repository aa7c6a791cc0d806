/*
 * client_cli.c -- poolecho's command line. Every option is checked here,
 * strictly (no "5x", no "-1"), so the modes can trust their config; a bad
 * one yields a message naming the option and the value.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client_cli.h"
#include "net.h"
#include "parse.h"

enum {
	OPT_PIPELINE = 256,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_SOURCE_IP,
};

static const struct option long_options[] = {
	{"connections", required_argument, NULL, 'c'},
	{"messages", required_argument, NULL, 'n'},
	{"duration", required_argument, NULL, 'd'},
	{"size", required_argument, NULL, 's'},
	{"pipeline", required_argument, NULL, OPT_PIPELINE},
	{"rate", required_argument, NULL, 'r'},
	{"mode", required_argument, NULL, 'm'},
	{"threads", required_argument, NULL, 't'},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"json", no_argument, NULL, OPT_JSON},
	{"source-ip", required_argument, NULL, OPT_SOURCE_IP},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

void client_cli_usage(FILE *out, const char *program)
{
	fprintf(out,
"Usage: %s [OPTION]... [HOST [PORT]]\n"
"Check an echo server (RFC 862) byte for byte, or measure it under load.\n"
"HOST defaults to %s, PORT to %s; an IPv6 address goes without brackets\n"
"(::1), a link-local one with its interface (fe80::1%%eth0), and PORT, a\n"
"number from 1 to 65535 (not a service name), is an argument of its own.\n"
"\n"
"Pipe mode (no load option): standard input goes to the server and the echo\n"
"to standard output; the exit status says whether every byte came back.\n"
"Load mode (-c, -n, -d or any other load option): many connections, every\n"
"echoed byte verified, then a report of rates and latency percentiles, and\n"
"of the client's own CPU use, with a warning when it was busy 90%% of the time\n"
"or more (the rate may then be the client's limit, not the server's).\n"
"\n"
"Load options:\n"
"  -c, --connections=N   concurrent connections, 1 to %lu (default %lu);\n"
"                        raises the soft open files limit (ulimit -n) as\n"
"                        far as the hard one when they need it\n"
"  -n, --messages=N      messages (churn: connections) per connection, then\n"
"                        stop, 1 to %lu (default: no limit)\n"
"  -d, --duration=SECS   stop after SECS seconds, 0.001 to %lu (e.g. 2.5)\n"
"                        (default %lu without -n), then wait for the echoes\n"
"                        in flight (begun: the rest of a --pipeline is not\n"
"                        sent) as long as --timeout lets each one\n"
"  -s, --size=BYTES      message size, 1 to 64M, suffix k/K = KiB,\n"
"                        m/M = MiB (default %lu)\n"
"      --pipeline=K      up to K messages in flight per connection, 1 to %lu\n"
"                        (churn: 1 only; default 1)\n"
"  -r, --rate=N          N messages (churn: connections) per second per\n"
"                        connection, 1 to %lu, on a fixed schedule: one the\n"
"                        server held up goes as soon as it can, its latency\n"
"                        from its slot (default: no limit)\n"
"  -m, --mode=MODE       pingpong: keep connections open (default);\n"
"                        churn: connect, send one message, read its echo,\n"
"                        close, repeat\n"
"  -t, --threads=N       event threads, each with its own epoll set, 1 to %lu,\n"
"                        at most one per connection (default: one per CPU it\n"
"                        may run on, no more than its cgroup CPU quota\n"
"                        rounded up)\n"
"      --json            print the report as one JSON object\n"
"      --source-ip=ADDR  connect from this local address (numeric); again\n"
"                        for more (each once), up to %u, taken in turn by\n"
"                        the connections, all IPv4 or all IPv6 (HOST is\n"
"                        looked up in that family, a numeric HOST of the\n"
"                        other is bad usage, and so is a link-local HOST\n"
"                        given another interface than a link-local ADDR);\n"
"                        churn's ports are each address's own: one gives\n"
"                        some 14k connections/s to loopback, 470/s\n"
"                        elsewhere (default: the system's choice)\n"
"\n"
"Common options:\n"
"  -q, --quiet           no progress line on stderr (load mode has one; -q\n"
"                        alone does not choose it)\n"
"      --timeout=SECS    fail when the server sends nothing for SECS seconds\n"
"                        while an echo (or its close) is due, or a connect\n"
"                        takes longer; 0 to %lu, 0 = wait forever\n"
"                        (default %lu)\n"
"  -h, --help            show this help and exit\n"
"  -V, --version         show the version and exit\n"
"\n"
"In load mode SIGINT or SIGTERM ends the run and prints the report; echoes in\n"
"flight are awaited for a second at most. A second signal kills at once.\n"
"\n"
"Exit status: 0 when every byte was echoed intact (in load mode, at least one\n"
"message); 1 on a mismatch, an early close (a connection reset as soon as it\n"
"was made too), a load run that echoed nothing, errors of more than one kind,\n"
"or any other error; 2 on bad usage (what was typed is quoted with\n"
"control characters as \\xNN, and invisible ones such as U+200B and U+202E,\n"
"as an interface's name is in any message);\n"
"3 when the server could not be reached: the name did not resolve, the first\n"
"connect failed, or (in load mode) failed connects were the run's only errors;\n"
"4 when it went silent for --timeout while an echo was due (or so long that\n"
"the system gave the connection up), or did not close once all was echoed\n"
"(in load mode, timeouts were the run's only errors).\n",
		program, CLIENT_DEFAULT_HOST, CLIENT_DEFAULT_PORT, CLIENT_MAX_CONNECTIONS,
		CLIENT_DEFAULT_CONNECTIONS, CLIENT_MAX_MESSAGES, CLIENT_MAX_SECONDS,
		CLIENT_DEFAULT_DURATION_MS / 1000, CLIENT_DEFAULT_SIZE, CLIENT_MAX_PIPELINE,
		CLIENT_MAX_RATE, CLIENT_MAX_THREADS, CLIENT_MAX_SOURCES, CLIENT_MAX_SECONDS,
		CLIENT_DEFAULT_TIMEOUT_MS / 1000);
}

static enum client_cli_result bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum client_cli_result bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return CLIENT_CLI_USAGE;
}

/* What the user typed, as a message shows it: room is left in a message
 * of 512 bytes for what is said around it. */
#define TYPED_MAX 200
static const char *typed(const char *s, char buf[TYPED_MAX])
{
	return pe_parse_shown(s, strlen(s), buf, TYPED_MAX);
}

/* "-c/--connections" for messages. */
static const char *option_name(int opt)
{
	switch (opt) {
	case 'c': return "-c/--connections";
	case 'n': return "-n/--messages";
	case 'd': return "-d/--duration";
	case 'r': return "-r/--rate";
	case 't': return "-t/--threads";
	case OPT_PIPELINE: return "--pipeline";
	case OPT_TIMEOUT: return "--timeout";
	}
	return "?";
}

static int number(int opt, const char *arg, unsigned long min, unsigned long max,
                  unsigned long *out, char *err, size_t errlen)
{
	char shown[TYPED_MAX];

	if (pe_parse_ulong(arg, min, max, out) == 0)
		return 0;
	bad(err, errlen, "invalid value '%s' for %s: expected a whole number from %lu to %lu",
	    typed(arg, shown), option_name(opt), min, max);
	return -EINVAL;
}

static int seconds(int opt, const char *arg, unsigned long min_ms, unsigned long *out_ms,
                   char *err, size_t errlen)
{
	char shown[TYPED_MAX];

	if (pe_parse_seconds_ms(arg, CLIENT_MAX_SECONDS * 1000ul, out_ms) == 0 && *out_ms >= min_ms)
		return 0;
	bad(err, errlen, "invalid value '%s' for %s: expected seconds from %s to %lu, "
	    PE_PARSE_SECONDS_DECIMALS, typed(arg, shown), option_name(opt), min_ms ? "0.001" : "0",
	    CLIENT_MAX_SECONDS);
	return -EINVAL;
}

static const char *family_name(int family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

/* The family of NAME if it is a numeric address, else 0. An IPv6 address
 * whose scope the resolver refuses (::1%lo: a name after an address that is
 * not link-local; fe80::1%eht0) is IPv6 all the same: the lookup's advice
 * for it would not mend the family. */
static int numeric_family(const char *name)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *ai;
	struct in6_addr a6;
	const char *scope;
	int family;

	if (getaddrinfo(name, NULL, &hints, &ai) != 0)
		return pe_net_scoped_ipv6(name, &a6, &scope) ? AF_INET6 : 0;
	family = ai->ai_family;
	freeaddrinfo(ai);
	return family;
}

/* The first --source-ip (from 1) that is a link-local address given
 * another interface than HOST, a link-local address given one: a socket
 * bound to such a source is bound to its interface, and its connect(2)
 * fails with EINVAL alone, as a link-local connection leaves by one. 0 when
 * none is, or HOST is not such an address. */
static unsigned source_on_another_link(const struct client_config *cfg)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_family = AF_INET6,
	                         .ai_socktype = SOCK_STREAM}, *ai;
	const struct sockaddr_in6 *host;
	unsigned found = 0;

	if (getaddrinfo(cfg->host, NULL, &hints, &ai) != 0)
		return 0;
	host = (const struct sockaddr_in6 *)(const void *)ai->ai_addr;
	for (unsigned i = 0; i < cfg->nsources && host->sin6_scope_id && !found; i++) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)
		                                &cfg->sources[i];

		if (s6->sin6_family == AF_INET6 && s6->sin6_scope_id &&
		    s6->sin6_scope_id != host->sin6_scope_id && pe_net_scope_heeded(&s6->sin6_addr) &&
		    pe_net_scope_heeded(&host->sin6_addr))
			found = i + 1;
	}
	freeaddrinfo(ai);
	return found;
}

/* Whether source address A is B (BLEN bytes), both of one family (the
 * caller has checked it), so of one length: a link-local IPv6 address is
 * the same only on the same interface (add_source refuses a scope on any
 * other). */
static int same_source(const struct sockaddr_storage *a, const struct sockaddr *b,
                       socklen_t blen)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)a;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)(const void *)b;

	if (b->sa_family != AF_INET6)
		return memcmp(a, b, blen) == 0;
	if (memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof a6->sin6_addr) != 0)
		return 0;
	return !pe_net_scope_heeded(&b6->sin6_addr) || a6->sin6_scope_id == b6->sin6_scope_id;
}

/* One --source-ip: a numeric address of this host's, not yet checked. */
static enum client_cli_result add_source(struct client_config *cfg, const char *arg, char *err,
                                         size_t errlen)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *ai;
	char shown[TYPED_MAX], dotted[PE_PARSE_DOTTED_MAX], why[PE_NET_ERRLEN];
	int rc;

	if (arg[strcspn(arg, PE_PARSE_WHITE)] != '\0')
		return bad(err, errlen, "invalid value '%s' for --source-ip: expected a numeric "
		           "IPv4 or IPv6 address without white space", typed(arg, shown));
	if (pe_parse_ipv4_other_form(arg, dotted))
		return bad(err, errlen, "invalid value '%s' for --source-ip: expected "
		           PE_PARSE_DOTTED " or an IPv6 address; this would mean %s",
		           typed(arg, shown), dotted);
	if (cfg->nsources == CLIENT_MAX_SOURCES)
		return bad(err, errlen, "too many --source-ip: '%s' would be number %u, at most %u",
		           typed(arg, shown), CLIENT_MAX_SOURCES + 1, CLIENT_MAX_SOURCES);
	/* A numeric address whose interface is wrong, said as for HOST:
	 * glibc refuses some (fe80::1%eht0), and takes others the kernel
	 * would drop (::1%1). */
	if (pe_net_scope_refused(arg, why))
		return bad(err, errlen, "invalid value '%s' for --source-ip: %s", typed(arg, shown),
		           why);
	rc = getaddrinfo(arg, NULL, &hints, &ai);
	if (rc != 0) {
		/* With AI_NUMERICHOST, EAI_NONAME is "not numeric": its text,
		 * "Name or service not known", would tell of a lookup never
		 * made. Brackets in HOST's words (pe_parse_host_misform); a
		 * port after them is no part of a source either. */
		return bad(err, errlen, "invalid value '%s' for --source-ip: expected a numeric "
		           "IPv4 or IPv6 address%s%s%s%s%s", typed(arg, shown),
		           arg[0] == '[' ? ", an IPv6 address without brackets" : "",
		           arg[0] == '[' ? (strstr(arg, "]:") ? " or a port, e.g. ::1" : ", e.g. ::1") : "",
		           rc == EAI_NONAME ? "" : " (", rc == EAI_NONAME ? "" : gai_strerror(rc),
		           rc == EAI_NONAME ? "" : ")");
	}
	if (cfg->nsources && ai->ai_family != cfg->sources[0].ss_family) {
		freeaddrinfo(ai);
		return bad(err, errlen, "invalid value '%s' for --source-ip: expected an %s "
		           "address, as the first one is (one family for all)", typed(arg, shown),
		           family_name(cfg->sources[0].ss_family));
	}
	/* A repeat would only tilt the turns toward one address, and be
	 * counted twice in the report: surely a slip. */
	for (unsigned i = 0; i < cfg->nsources; i++) {
		if (same_source(&cfg->sources[i], ai->ai_addr, ai->ai_addrlen)) {
			freeaddrinfo(ai);
			return bad(err, errlen, "invalid value '%s' for --source-ip: the same "
			           "address as --source-ip #%u; give each address once",
			           typed(arg, shown), i + 1);
		}
	}
	memcpy(&cfg->sources[cfg->nsources], ai->ai_addr, ai->ai_addrlen);
	cfg->source_lens[cfg->nsources++] = ai->ai_addrlen;
	freeaddrinfo(ai);
	return CLIENT_CLI_RUN;
}

static void config_defaults(struct client_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->host = CLIENT_DEFAULT_HOST;
	cfg->port = CLIENT_DEFAULT_PORT;
	cfg->mode = CLIENT_PIPE;
	cfg->connections = CLIENT_DEFAULT_CONNECTIONS;
	cfg->size = CLIENT_DEFAULT_SIZE;
	cfg->pipeline = 1;
	cfg->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
}

enum client_cli_result client_cli_parse(int argc, char **argv, struct client_config *cfg,
                                        char *err, size_t errlen)
{
	bool load = false, churn = false, pipeline_set = false, duration_set = false;
	const char *expected;
	char hint[256], shown[TYPED_MAX];
	unsigned long port;
	int opt, family;
	unsigned other;

	config_defaults(cfg);
	opterr = 0; /* we word the messages ourselves */
	while ((opt = getopt_long(argc, argv, ":c:n:d:s:r:m:t:qhV", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (number(opt, optarg, 1, CLIENT_MAX_CONNECTIONS, &cfg->connections, err, errlen))
				return CLIENT_CLI_USAGE;
			load = true;
			break;
		case 'n':
			if (number(opt, optarg, 1, CLIENT_MAX_MESSAGES, &cfg->messages, err, errlen))
				return CLIENT_CLI_USAGE;
			load = true;
			break;
		case 'd':
			if (seconds(opt, optarg, 1, &cfg->duration_ms, err, errlen))
				return CLIENT_CLI_USAGE;
			load = duration_set = true;
			break;
		case 's':
			if (pe_parse_size(optarg, 1, CLIENT_MAX_SIZE, &cfg->size) != 0)
				return bad(err, errlen, "invalid value '%s' for -s/--size: expected "
				           "bytes from 1 to 64M, " PE_PARSE_SIZE_SUFFIXES,
				           typed(optarg, shown));
			load = true;
			break;
		case OPT_PIPELINE:
			if (number(opt, optarg, 1, CLIENT_MAX_PIPELINE, &cfg->pipeline, err, errlen))
				return CLIENT_CLI_USAGE;
			load = pipeline_set = true;
			break;
		case 'r':
			if (number(opt, optarg, 1, CLIENT_MAX_RATE, &cfg->rate, err, errlen))
				return CLIENT_CLI_USAGE;
			load = true;
			break;
		case 'm':
			if (strcmp(optarg, "churn") == 0)
				churn = true;
			else if (strcmp(optarg, "pingpong") == 0)
				churn = false;
			else
				return bad(err, errlen, "invalid value '%s' for -m/--mode: "
				           "expected pingpong or churn", typed(optarg, shown));
			load = true;
			break;
		case 't':
			if (number(opt, optarg, 1, CLIENT_MAX_THREADS, &cfg->threads, err, errlen))
				return CLIENT_CLI_USAGE;
			load = true;
			break;
		case OPT_TIMEOUT:
			if (seconds(opt, optarg, 0, &cfg->timeout_ms, err, errlen))
				return CLIENT_CLI_USAGE;
			break;
		case OPT_JSON:
			cfg->json = load = true;
			break;
		case OPT_SOURCE_IP:
			if (add_source(cfg, optarg, err, errlen) != CLIENT_CLI_RUN)
				return CLIENT_CLI_USAGE;
			load = true;
			break;
		case 'q':
			cfg->quiet = true;
			break;
		case 'h':
			return CLIENT_CLI_HELP;
		case 'V':
			return CLIENT_CLI_VERSION;
		case ':':
		case '?':
			pe_parse_getopt_error(opt, argv, long_options, err, errlen);
			return CLIENT_CLI_USAGE;
		}
	}

	if (optind < argc)
		cfg->host = argv[optind++];
	if (optind < argc)
		cfg->port = argv[optind++];
	if (optind < argc)
		return bad(err, errlen, "unexpected argument '%s' (expected at most HOST and PORT)",
		           typed(argv[optind], shown));
	if (cfg->host[0] == '\0')
		return bad(err, errlen, "invalid HOST '': expected an address or host name");
	if ((expected = pe_parse_host_misform(cfg->host, "as PORT, an argument of its own", hint,
	                                      sizeof hint)))
		return bad(err, errlen, "invalid HOST '%s': expected %s", typed(cfg->host, shown),
		           expected);
	if (pe_parse_ulong(cfg->port, 1, 65535, &port) != 0)
		return bad(err, errlen, "invalid PORT '%s': expected a number from 1 to 65535",
		           typed(cfg->port, shown));
	if (cfg->nsources && (family = numeric_family(cfg->host)) &&
	    family != cfg->sources[0].ss_family) {
		char source[NI_MAXHOST];

		/* HOST quoted as typed, cut: leading zeros make a numeric scope
		 * as long as one likes. The source as getnameinfo(3) writes it
		 * back (its scope short), which pe_net_format_host already shows
		 * as a message must: an interface's name may hold control
		 * characters. */
		return bad(err, errlen, "HOST '%s' is an %s address, --source-ip '%s' an %s one: "
		           "expected one family for both", typed(cfg->host, shown),
		           family_name(family),
		           pe_net_format_host((const struct sockaddr *)&cfg->sources[0],
		                              cfg->source_lens[0], source),
		           family_name(cfg->sources[0].ss_family));
	}
	if ((other = source_on_another_link(cfg))) {
		char source[NI_MAXHOST];

		return bad(err, errlen, "HOST '%s' and --source-ip #%u '%s' are given different "
		           "interfaces: a link-local connection leaves by one; expected sources on "
		           "HOST's interface", typed(cfg->host, shown), other,
		           pe_net_format_host((const struct sockaddr *)&cfg->sources[other - 1],
		                              cfg->source_lens[other - 1], source));
	}

	if (!load)
		return CLIENT_CLI_RUN;
	cfg->mode = churn ? CLIENT_CHURN : CLIENT_PINGPONG;
	if (churn && pipeline_set && cfg->pipeline > 1)
		return bad(err, errlen, "--pipeline=%lu does not apply to --mode=churn "
		           "(each connection carries one message)", cfg->pipeline);
	if (!duration_set && cfg->messages == 0)
		cfg->duration_ms = CLIENT_DEFAULT_DURATION_MS;
	return CLIENT_CLI_RUN;
}
