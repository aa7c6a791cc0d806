/*
 * daemon_cli.c -- parses poolechod's options. Every bad value is a usage
 * error that names the option, the value and what was expected.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_cli.h"
#include "log.h"
#include "parse.h"

#define PROGRAM "poolechod"
#define MAX_SECONDS_MS (86400UL * 1000UL) /* a day: longer is surely a typo */
/* The ranges --help states and the parser enforces (man/poolechod.8 and
 * the README state them too). */
#define MAX_QUEUE 1000000UL
#define MAX_PER_SOURCE 1000000UL
#define MAX_BACKLOG 65535UL
#define MIN_BUFFER (1UL << 10)
#define MAX_BUFFER (16UL << 20)
#define MIN_STACK (64UL << 10)
#define MAX_STACK (64UL << 20)
#define MAX_BUSY_POLL_US 1000000UL

enum { OPT_BACKLOG = 256, OPT_OVERFLOW, OPT_GRACE, OPT_STATS_INTERVAL, OPT_LOG_LEVEL,
       OPT_BUFFER_SIZE, OPT_STACK_SIZE, OPT_BUSY_POLL, OPT_SPLICE, OPT_PER_SOURCE };

static const struct option long_options[] = {
	{"bind", required_argument, NULL, 'b'},
	{"port", required_argument, NULL, 'p'},
	{"workers", required_argument, NULL, 'w'},
	{"queue", required_argument, NULL, 'q'},
	{"backlog", required_argument, NULL, OPT_BACKLOG},
	{"overflow", required_argument, NULL, OPT_OVERFLOW},
	{"per-source", required_argument, NULL, OPT_PER_SOURCE},
	{"idle-timeout", required_argument, NULL, 't'},
	{"grace", required_argument, NULL, OPT_GRACE},
	{"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
	{"buffer-size", required_argument, NULL, OPT_BUFFER_SIZE},
	{"stack-size", required_argument, NULL, OPT_STACK_SIZE},
	{"busy-poll", required_argument, NULL, OPT_BUSY_POLL},
	{"splice", required_argument, NULL, OPT_SPLICE},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: " PROGRAM " [OPTION]...\n"
	        "Serve the TCP echo protocol (RFC 862) with a fixed pool of worker threads.\n"
	        "\n"
	        "  -b, --bind=ADDR            listen address or host name, one address\n"
	        "                               (default: all addresses, IPv6 dual-stack\n"
	        "                               where available, else 0.0.0.0); an IPv6\n"
	        "                               address, :: included, is IPv6 only, but\n"
	        "                               an IPv4-mapped one (::ffff:127.0.0.1) is\n"
	        "                               served over IPv4; a link-local one needs\n"
	        "                               its interface (fe80::1%%eth0)\n"
	        "  -p, --port=PORT            TCP port, 0 to 65535; 0 picks a free one\n"
	        "                               (default %u)\n"
	        "  -w, --workers=N            worker threads, one connection each, 1 to %u\n"
	        "                               (default %u)\n"
	        "  -q, --queue=N              accepted connections waiting for a worker,\n"
	        "                               1 to %lu (default %u)\n"
	        "      --backlog=N            listen(2) backlog, 1 to %lu (default %d),\n"
	        "                               capped by net.core.somaxconn (a warning at\n"
	        "                               start says so)\n"
	        "      --overflow=wait|reject when the workers are busy and the queue full:\n"
	        "                               stop accepting until a slot frees, or accept\n"
	        "                               and close at once (default wait)\n"
	        "      --per-source=N         at most N connections at once, queued or\n"
	        "                               echoed, from one client address; more are\n"
	        "                               accepted and closed at once; 0 = no limit;\n"
	        "                               0 to %lu (default 0)\n"
	        "  -t, --idle-timeout=SECS    close a connection that sends nothing, or\n"
	        "                               whose unread echo fills the buffers, for\n"
	        "                               SECS (at most a quarter more); 0 = never\n"
	        "                               (TCP keepalive then closes one whose host\n"
	        "                               is gone while nothing is in flight)\n"
	        "                               (default %u)\n"
	        "      --grace=SECS           on SIGINT/SIGTERM/SIGHUP, let open connections\n"
	        "                               go on this long, then close them; 0 = at once\n"
	        "                               (default %u)\n"
	        "      --stats-interval=SECS  log a stats line every SECS; 0 = off (default 0)\n"
	        "      --buffer-size=BYTES    echo buffer per worker, %luk to %lum, suffix\n"
	        "                               k/K = KiB, m/M = MiB; all reserved at start,\n"
	        "                               resident only as used (default %uk)\n"
	        "      --stack-size=BYTES     stack per worker thread, %luk to %lum, suffix\n"
	        "                               k/K = KiB, m/M = MiB (default %uk)\n"
	        "      --busy-poll=USECS      while no more clients than CPUs are connected\n"
	        "                               (those it may run on, as far as a cgroup CPU\n"
	        "                               quota leaves them whole), spin this long for a\n"
	        "                               client's next message before sleeping, but not\n"
	        "                               again for a client that let a spin run out\n"
	        "                               until it hurries; 0 = never; 0 to %lu, and\n"
	        "                               at most a sixteenth of --idle-timeout\n"
	        "                               (default %u)\n"
	        "      --splice=WHEN          echo bulk streams through a pipe with splice(2)\n"
	        "                               (Linux): auto (while workers may spin: see\n"
	        "                               --busy-poll), always or never (default auto)\n"
	        "      --log-level=LEVEL      error, warning (or warn), info or debug\n"
	        "                               (default info)\n"
	        "  -v, --verbose              log every connection (same as --log-level=debug)\n"
	        "  -h, --help                 show this help and exit\n"
	        "  -V, --version              show the version and exit\n"
	        "\n"
	        "SECS are 0 to %lu (a day) with up to three decimals (0.5). Logs go to\n"
	        "standard error, never waiting for its reader: a line it cannot take at once\n"
	        "is dropped, and the next one that goes out counts those dropped; the\n"
	        "stop's last lines (the count, \"stopped:\") wait up to a second for room.\n"
	        "Into systemd's journal ($JOURNAL_STREAM) a line is \"<N>message\", N its\n"
	        "priority.\n"
	        "\n"
	        "Socket activation: started with one listening socket by a service manager\n"
	        "($LISTEN_FDS=1 and $LISTEN_PID its process ID, as from a systemd .socket\n"
	        "unit), poolechod serves that socket, descriptor 3, and -b, -p and --backlog\n"
	        "are bad usage.\n"
	        "\n"
	        "Signals: SIGINT, SIGTERM and SIGHUP stop gracefully (a second one stops at\n"
	        "once); with no configuration to reload, SIGHUP is a stop like SIGTERM.\n"
	        "SIGHUP, SIGINT or SIGQUIT ignored at start (nohup, a background job) stays\n"
	        "ignored. SIGUSR1 logs an extra stats line marked \"stats (SIGUSR1):\" that\n"
	        "does not move the --stats-interval ones. SIGUSR2 is ignored; SIGQUIT ends it\n"
	        "at once. A signal sent during start-up waits until poolechod listens, then\n"
	        "acts.\n"
	        "\n"
	        "Exit status: 0 when stopped by a signal (or after --help or --version);\n"
	        "1 on a runtime failure: the address cannot be resolved or bound, the\n"
	        "workers' threads or buffers cannot be had, the descriptor limit leaves none\n"
	        "for a client, a socket from the service manager cannot be served,\n"
	        "accepting fails for good, or --help or --version cannot be written;\n"
	        "2 on bad usage (what was typed is quoted with control characters\n"
	        "as \\xNN, and invisible ones such as U+200B and U+202E).\n",
	        PE_DEFAULT_PORT, PE_MAX_WORKERS, PE_DEFAULT_WORKERS, MAX_QUEUE, PE_DEFAULT_QUEUE,
	        MAX_BACKLOG, PE_DEFAULT_BACKLOG, MAX_PER_SOURCE, PE_DEFAULT_IDLE_TIMEOUT_MS / 1000,
	        PE_DEFAULT_GRACE_MS / 1000, MIN_BUFFER >> 10, MAX_BUFFER >> 20,
	        PE_DEFAULT_BUFFER_SIZE / 1024, MIN_STACK >> 10, MAX_STACK >> 20,
	        PE_DEFAULT_STACK_SIZE / 1024, MAX_BUSY_POLL_US, PE_DEFAULT_BUSY_POLL_US,
	        MAX_SECONDS_MS / 1000);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	/* Under systemd, journalctl -p err shows why the unit failed. */
	fprintf(stderr, "%s" PROGRAM ": ", pe_log_prefix(PE_LOG_ERROR));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%sTry '" PROGRAM " --help' for more information.\n",
	        pe_log_prefix(PE_LOG_ERROR));
	return 2;
}

/* Report a bad number: NAME is the option as documented ("-w/--workers"). */
static int bad_value(const char *name, const char *value, const char *expected)
{
	char shown[PE_PARSE_SHOWN_MAX];

	return usage_error("invalid value '%s' for %s: expected %s",
	                   pe_parse_shown(value, strlen(value), shown, sizeof shown), name, expected);
}

static int number(const char *name, const char *value, unsigned long min, unsigned long max,
                  unsigned long *out)
{
	char expected[96];

	if (pe_parse_ulong(value, min, max, out) == 0)
		return 0;
	snprintf(expected, sizeof expected, "a whole number from %lu to %lu", min, max);
	return bad_value(name, value, expected);
}

static int seconds(const char *name, const char *value, unsigned long *ms)
{
	char expected[80];

	if (pe_parse_seconds_ms(value, MAX_SECONDS_MS, ms) == 0)
		return 0;
	snprintf(expected, sizeof expected,
	         "seconds from 0 to %lu, " PE_PARSE_SECONDS_DECIMALS,
	         MAX_SECONDS_MS / 1000);
	return bad_value(name, value, expected);
}

static int size(const char *name, const char *value, unsigned long min, unsigned long max,
                unsigned long *out)
{
	char expected[128];

	if (pe_parse_size(value, min, max, out) == 0)
		return 0;
	snprintf(expected, sizeof expected, "a size in bytes from %lu to %lu, " PE_PARSE_SIZE_SUFFIXES,
	         min, max);
	return bad_value(name, value, expected);
}

static int splice_when(const char *value, enum pe_splice *out)
{
	static const char *const names[] = {
		[PE_SPLICE_NEVER] = "never", [PE_SPLICE_ALWAYS] = "always", [PE_SPLICE_AUTO] = "auto",
	};

	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(value, names[i]) == 0) {
			*out = (enum pe_splice)i;
			return 0;
		}
	return bad_value("--splice", value, "auto, always or never");
}

static int log_level(const char *value, enum pe_log_level *out)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};

	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(value, names[i]) == 0 || (i == PE_LOG_WARN && strcmp(value, "warn") == 0)) {
			*out = (enum pe_log_level)i;
			return 0;
		}
	return bad_value("--log-level", value, "error, warning (or warn), info or debug");
}

/* One option; returns 0, or 2 after reporting a usage error. */
static int apply(int ch, const char *arg, struct daemon_options *opt)
{
	struct pe_server_config *s = &opt->server;
	const char *expected;
	char hint[256];
	unsigned long v;
	int rc = 0;

	if (!opt->where_option && (ch == 'b' || ch == 'p' || ch == OPT_BACKLOG))
		opt->where_option = ch == 'b' ? "-b/--bind" : ch == 'p' ? "-p/--port" : "--backlog";
	switch (ch) {
	case 'b':
		if (arg[0] == '\0')
			return bad_value("-b/--bind", arg, "an address or host name");
		if ((expected = pe_parse_host_misform(arg, "with -p", hint, sizeof hint)))
			return bad_value("-b/--bind", arg, expected);
		s->bind_address = arg;
		break;
	case 'p':
		if (!(rc = number("-p/--port", arg, 0, 65535, &v)))
			s->port = (unsigned)v;
		break;
	case 'w':
		if (!(rc = number("-w/--workers", arg, 1, PE_MAX_WORKERS, &v)))
			s->workers = (unsigned)v;
		break;
	case 'q':
		if (!(rc = number("-q/--queue", arg, 1, MAX_QUEUE, &v)))
			s->queue_capacity = v;
		break;
	case OPT_BACKLOG:
		if (!(rc = number("--backlog", arg, 1, MAX_BACKLOG, &v)))
			s->backlog = (int)v;
		break;
	case OPT_OVERFLOW:
		if (strcmp(arg, "wait") == 0)
			s->overflow = PE_OVERFLOW_WAIT;
		else if (strcmp(arg, "reject") == 0)
			s->overflow = PE_OVERFLOW_REJECT;
		else
			rc = bad_value("--overflow", arg, "'wait' or 'reject'");
		break;
	case OPT_PER_SOURCE:
		if (!(rc = number("--per-source", arg, 0, MAX_PER_SOURCE, &v)))
			s->per_source = (unsigned)v;
		break;
	case 't':
		if (!(rc = seconds("-t/--idle-timeout", arg, &v)))
			s->idle_timeout_ms = (unsigned)v;
		break;
	case OPT_GRACE:
		if (!(rc = seconds("--grace", arg, &v)))
			s->grace_ms = (unsigned)v;
		break;
	case OPT_STATS_INTERVAL:
		if (!(rc = seconds("--stats-interval", arg, &v)))
			opt->stats_interval_ms = v;
		break;
	case OPT_BUFFER_SIZE:
		if (!(rc = size("--buffer-size", arg, MIN_BUFFER, MAX_BUFFER, &v)))
			s->buffer_size = v;
		break;
	case OPT_STACK_SIZE:
		if (!(rc = size("--stack-size", arg, MIN_STACK, MAX_STACK, &v)))
			s->stack_size = v;
		break;
	case OPT_BUSY_POLL:
		if (!(rc = number("--busy-poll", arg, 0, MAX_BUSY_POLL_US, &v)))
			s->busy_poll_us = (unsigned)v;
		break;
	case OPT_SPLICE:
		rc = splice_when(arg, &s->splice);
		break;
	case OPT_LOG_LEVEL:
		rc = log_level(arg, &opt->log_level);
		break;
	case 'v':
		opt->log_level = PE_LOG_DEBUG;
		break;
	}
	return rc;
}

void daemon_cli_show(FILE *out, const struct daemon_options *opt)
{
	if (opt->show == DAEMON_SHOW_HELP)
		usage(out);
	else
		fprintf(out, PROGRAM " (" PACKAGE_NAME ") " PACKAGE_VERSION "\n");
}

int daemon_cli_parse(int argc, char **argv, struct daemon_options *opt)
{
	int ch;

	memset(opt, 0, sizeof *opt);
	pe_server_config_init(&opt->server);
	opt->log_level = PE_LOG_INFO;
	opterr = 0; /* we word the errors ourselves */
	while ((ch = getopt_long(argc, argv, ":b:p:w:q:t:vhV", long_options, NULL)) != -1) {
		switch (ch) {
		case 'h':
		case 'V':
			opt->show = ch == 'h' ? DAEMON_SHOW_HELP : DAEMON_SHOW_VERSION;
			return 0;
		case ':':
		case '?': {
			char msg[256];
			pe_parse_getopt_error(ch, argv, long_options, msg, sizeof msg);
			return usage_error("%s", msg);
		}
		default:
			if (apply(ch, optarg, opt))
				return 2;
		}
	}
	if (optind < argc) {
		char shown[PE_PARSE_SHOWN_MAX];

		return usage_error("unexpected argument '%s' (" PROGRAM " takes only options)",
		                   pe_parse_shown(argv[optind], strlen(argv[optind]), shown,
		                                  sizeof shown));
	}
	return -1;
}

int daemon_cli_check_socket_given(const struct daemon_options *opt)
{
	if (!opt->where_option)
		return 0;
	return usage_error("%s cannot be used with the socket the service manager passed "
	                   "(LISTEN_FDS=1): its socket unit sets the address, port and backlog",
	                   opt->where_option);
}
