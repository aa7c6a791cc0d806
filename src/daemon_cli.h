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
	enum { DAEMON_SHOW_NOTHING, DAEMON_SHOW_HELP, DAEMON_SHOW_VERSION } show;
};

/* Fill OPT from ARGV. Returns -1 to go on and start the server, or the
 * status to exit with: 0 after --help or --version (OPT's show says which,
 * for daemon_cli_show), 2 after a usage error (already reported on
 * stderr). */
int daemon_cli_parse(int argc, char **argv, struct daemon_options *opt);

/* Print to OUT the --help or --version text that OPT's show asks for. */
void daemon_cli_show(FILE *out, const struct daemon_options *opt);

/* With a socket from the service manager, where to listen is its socket
 * unit's to say: 0, or 2 after a usage error naming OPT's where_option. */
int daemon_cli_check_socket_given(const struct daemon_options *opt);

#endif /* POOLECHO_DAEMON_CLI_H */
