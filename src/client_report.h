/*
 * client_report.h -- what load mode prints: the final report, as text or as
 * one JSON object on standard output, and the progress line on stderr.
 */
#ifndef POOLECHO_CLIENT_REPORT_H
#define POOLECHO_CLIENT_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "client_cli.h"
#include "client_load.h"

/* A run passes when nothing failed and it echoed at least one message: one
 * that verified no byte at all (every connect still in progress at the
 * deadline, say) has proved nothing about the server. */
bool client_report_ok(const struct load_result *r);

void client_report_text(FILE *out, const struct client_config *cfg, const struct load_result *r);
void client_report_json(FILE *out, const struct client_config *cfg, const struct load_result *r);

/* The progress line's state; pass it as the load_progress_fn context. */
struct report_progress {
	const struct client_config *cfg;
	FILE *out;
	bool shown;
	double last_elapsed;
	uint64_t last_echoed, last_bytes;
};

/* Whether a progress line belongs on OUT at all: only on a terminal. */
bool client_report_progress_wanted(const struct client_config *cfg, FILE *out);

/* A load_progress_fn: once the run has lasted (or will last) over 2 s,
 * rewrite one line with elapsed time, rates and errors. */
void client_report_progress(void *ctx, const struct load_progress *p);

/* Erase the progress line, if one was shown, before the report. */
void client_report_progress_end(struct report_progress *rp);

#endif /* POOLECHO_CLIENT_REPORT_H */
