/*
 * poolecho.c -- the client: check an echo server byte for byte (pipe mode)
 * or measure it under load (load mode). The modes live in client_pipe.c
 * and client_load.c; this file reads the command line, runs one of them
 * and turns its outcome into messages and the exit status.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_cli.h"
#include "client_load.h"
#include "client_pipe.h"
#include "client_report.h"
#include "log.h"
#include "parse.h"
#include "stdfds.h"

/* Distinct failures, so that a health check can tell a server that is
 * down from one that is hung or echoes wrong (EXIT_FAILURE). */
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3 /* the name did not resolve, or connects alone failed */
#define EXIT_TIMEOUT 4     /* the server sent nothing for --timeout (timeouts alone) */

static const char *program = "poolecho";

static void say_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "poolecho: MESSAGE" on stderr; in systemd's journal (a health check run
 * by a unit) with the error priority, which journalctl -p err selects. */
static void say_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s%s: ", pe_log_prefix(PE_LOG_ERROR), program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int run_pipe(const struct client_config *cfg)
{
	struct pipe_result res;

	if (client_pipe_run(cfg, STDIN_FILENO, STDOUT_FILENO, &res) == 0)
		return EXIT_SUCCESS;
	say_error("%s", res.message);
	if (res.output_error[0])
		say_error("%s", res.output_error);
	switch (res.failure) {
	case PIPE_CONNECT:
		return EXIT_UNREACHABLE;
	case PIPE_TIMEOUT:
		return EXIT_TIMEOUT;
	default:
		return EXIT_FAILURE;
	}
}

/* A run's errors all of one kind that has its own exit status get it. */
static int load_errors_status(const struct load_result *res)
{
	if (res->errors == res->conns_failed)
		return EXIT_UNREACHABLE;
	if (res->errors == res->timeouts)
		return EXIT_TIMEOUT;
	return EXIT_FAILURE;
}

static int run_load(const struct client_config *cfg)
{
	/* The result holds a histogram of some 60 KiB: keep it off the stack. */
	static struct load_result res;
	struct report_progress rp = {.cfg = cfg, .out = stderr};
	char err[512], *text = NULL;
	size_t text_len = 0;
	FILE *report;
	bool progress = client_report_progress_wanted(cfg, stderr), report_lost;

	if (client_load_run(cfg, progress ? client_report_progress : NULL, &rp, &res,
	                    err, sizeof err) < 0) {
		say_error("%s", err);
		return res.unreachable ? EXIT_UNREACHABLE : EXIT_FAILURE;
	}
	client_report_progress_end(&rp);
	/* Made whole in memory, then written with pe_write_whole: a standard
	 * output shared non-blocking would have stdio drop what a full pipe
	 * refused (EAGAIN), and the report with it. */
	report = open_memstream(&text, &text_len);
	if (report) {
		if (cfg->json)
			client_report_json(report, cfg, &res);
		else
			client_report_text(report, cfg, &res);
		report_lost = fclose(report) != 0 ||
		              pe_write_whole(STDOUT_FILENO, text, text_len) < 0;
		free(text);
	} else {
		if (cfg->json)
			client_report_json(stdout, cfg, &res);
		else
			client_report_text(stdout, cfg, &res);
		/* The error flag too: on a terminal each line went out inside
		 * printf, and a write that failed there leaves fflush nothing
		 * to fail on. */
		report_lost = fflush(stdout) != 0 || ferror(stdout);
	}
	/* The run's own failure is still said: it is why the report mattered. */
	if (report_lost)
		say_error("cannot write the report: %s", strerror(errno));
	if (res.errors) {
		/* The server's address in it as it is: shown, for a terminal. */
		char shown[4 * sizeof res.first_error];

		say_error("%llu error%s; first: %s", (unsigned long long)res.errors,
		          res.errors == 1 ? "" : "s",
		          pe_parse_shown(res.first_error, strlen(res.first_error), shown,
		                         sizeof shown));
		return load_errors_status(&res);
	}
	if (!client_report_ok(&res)) {
		if (res.conns_pending)
			say_error("no message was echoed: %llu connect%s still in progress when the "
			          "run stopped", (unsigned long long)res.conns_pending,
			          res.conns_pending == 1 ? " was" : "s were");
		else
			say_error("no message was echoed before the run stopped");
		return EXIT_FAILURE;
	}
	return report_lost ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* pe_stdout_print_checked printers; NAME is the program's name. */
static void print_help(FILE *out, const void *name)
{
	client_cli_usage(out, name);
}

static void print_version(FILE *out, const void *name)
{
	fprintf(out, "%s %s\n", (const char *)name, PACKAGE_VERSION);
}

int main(int argc, char **argv)
{
	struct client_config cfg;
	sigset_t stops;
	char err[512];

	/* First, so that every error gets a priority: it only looks at fd 2. */
	pe_log_detect_journal();
	if (pe_stdfds_guard(program) != 0)
		return EXIT_FAILURE;
	/* A closed standard output (poolecho < f | head -c 10) must be an error
	 * with its reason, not a silent death; sockets use MSG_NOSIGNAL anyway.
	 * So must a file-size limit (ulimit -f) met there: EFBIG, not SIGXFSZ. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	/* SIGTERM always ends the client, as it always stops poolechod, even
	 * one started with it ignored or blocked; so does SIGINT unless it was
	 * ignored. A mask is inherited across exec: a parent that takes its
	 * signals with sigwait(3) would leave pipe mode deaf to both. */
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &stops, NULL);

	switch (client_cli_parse(argc, argv, &cfg, err, sizeof err)) {
	case CLIENT_CLI_HELP:
		return pe_stdout_print_checked(program, print_help, program);
	case CLIENT_CLI_VERSION:
		return pe_stdout_print_checked(program, print_version, program);
	case CLIENT_CLI_USAGE:
		say_error("%s", err);
		fprintf(stderr, "%sTry '%s --help' for more information.\n",
		        pe_log_prefix(PE_LOG_ERROR), program);
		return EXIT_USAGE;
	case CLIENT_CLI_RUN:
		break;
	}
	return cfg.mode == CLIENT_PIPE ? run_pipe(&cfg) : run_load(&cfg);
}
