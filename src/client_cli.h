/*
 * client_cli.h -- the poolecho command line: getopt_long into a
 * client_config. Parsing never prints or exits; it says what was wrong
 * and main() reports it.
 */
#ifndef POOLECHO_CLIENT_CLI_H
#define POOLECHO_CLIENT_CLI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#define CLIENT_DEFAULT_HOST "localhost"
#define CLIENT_DEFAULT_PORT "9999"
#define CLIENT_DEFAULT_SIZE 64ul
#define CLIENT_DEFAULT_CONNECTIONS 1ul
#define CLIENT_DEFAULT_DURATION_MS 10000ul /* load mode with neither -n nor -d */
#define CLIENT_DEFAULT_TIMEOUT_MS 10000ul
#define CLIENT_MAX_CONNECTIONS 1000000ul
#define CLIENT_MAX_SIZE (64ul * 1024 * 1024)
#define CLIENT_MAX_PIPELINE 4096ul
#define CLIENT_MAX_THREADS 256ul
#define CLIENT_MAX_RATE 1000000ul
#define CLIENT_MAX_SOURCES 64u
/* -d and --timeout: a day is far beyond any sensible run, and keeps the
 * arithmetic in range. */
#define CLIENT_MAX_SECONDS 86400ul
/* -n: 10^12, or what an unsigned long holds where it is 32 bits. */
#if ULONG_MAX / 1000000ul > 1000000ul
#define CLIENT_MAX_MESSAGES 1000000000000ul
#else
#define CLIENT_MAX_MESSAGES ULONG_MAX
#endif

enum client_mode {
	CLIENT_PIPE,      /* stdin to the server, the echo to stdout */
	CLIENT_PINGPONG,  /* load: long-lived connections, K messages in flight */
	CLIENT_CHURN      /* load: connect, one message, close, again */
};

struct client_config {
	const char *host;
	const char *port;
	enum client_mode mode;
	unsigned long connections;
	unsigned long messages;    /* per connection; 0 = until the duration ends */
	unsigned long duration_ms; /* 0 = until -n messages are done */
	unsigned long size;        /* bytes per message */
	unsigned long pipeline;    /* messages in flight per connection */
	unsigned long rate;        /* messages (churn: connections) per second per connection; 0 = no limit */
	unsigned long threads;     /* 0 = one per CPU it may run on (sched_getaffinity) */
	unsigned long timeout_ms;  /* give up on a silent server after this long; 0 = never */
	bool json;
	bool quiet;                /* no progress line */
	/* --source-ip: connection I binds to source I % nsources before it
	 * connects; all of one family. */
	unsigned nsources;
	struct sockaddr_storage sources[CLIENT_MAX_SOURCES];
	socklen_t source_lens[CLIENT_MAX_SOURCES];
};

enum client_cli_result {
	CLIENT_CLI_RUN,     /* cfg is ready */
	CLIENT_CLI_HELP,    /* -h: print client_cli_usage() and exit 0 */
	CLIENT_CLI_VERSION, /* -V */
	CLIENT_CLI_USAGE    /* bad usage: ERR says which option and why */
};

enum client_cli_result client_cli_parse(int argc, char **argv, struct client_config *cfg,
                                        char *err, size_t errlen);

/* The --help text (every option, its default). */
void client_cli_usage(FILE *out, const char *program);

#endif /* POOLECHO_CLIENT_CLI_H */
