/*
 * daemon_cli.h -- poolechod's command line: options into a server config.
 */
#ifndef POOLECHO_DAEMON_CLI_H
#define POOLECHO_DAEMON_CLI_H

#include <stdio.h>

#include <poolecho/server.h>

struct daemon_options {
	struct pe_server_config server;
	unsigned long stats_interval_ms; /* 0 = no periodic stats line */
	enum pe_log_level log_level;
	const char *where_option; /* the first of -b, -p and --backlog given, or NULL */
	enum { DAEMON_INFO_NONE, DAEMON_INFO_HELP, DAEMON_INFO_VERSION } info;
};

/* Fill OPT from ARGV. Returns -1 to go on and start the server, or the
 * status to exit with: 0 after --help or --version (OPT's info says which,
 * for daemon_cli_print_info), 2 after a usage error (already reported on
 * stderr). */
int daemon_cli_parse(int argc, char **argv, struct daemon_options *opt);

/* Print the --help or --version text that OPT (a struct daemon_options)
 * asks for to OUT: a pe_stdout_print_checked printer. */
void daemon_cli_print_info(FILE *out, const void *opt);

/* With a socket from the service manager, where to listen is its socket
 * unit's to say: 0, or 2 after a usage error naming OPT's where_option. */
int daemon_cli_check_socket_given(const struct daemon_options *opt);

#endif /* POOLECHO_DAEMON_CLI_H */
