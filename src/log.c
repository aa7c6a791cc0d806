/*
 * log.c -- timestamped, levelled lines on stderr for both programs. Each
 * line is formatted into one buffer and written with one write(2), which
 * keeps lines from many worker threads whole.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *program = "poolecho";
static enum pe_log_level threshold = PE_LOG_INFO;

void pe_log_set_program(const char *name) { program = name; }
void pe_log_set_level(enum pe_log_level level) { threshold = level; }
enum pe_log_level pe_log_get_level(void) { return threshold; }

const char *pe_log_level_name(enum pe_log_level level)
{
	switch (level) {
	case PE_LOG_ERROR: return "error";
	case PE_LOG_WARN: return "warning";
	case PE_LOG_INFO: return "info";
	case PE_LOG_DEBUG: return "debug";
	}
	return "?";
}

void pe_log_one_line(char *msg)
{
	for (; *msg; msg++)
		if ((unsigned char)*msg < 0x20 || *msg == 0x7f)
			*msg = '?';
}

static void emit(enum pe_log_level level, const char *msg)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s: %s\n",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	             tm.tm_sec, ts.tv_nsec / 1000000L, program, (long)getpid(),
	             pe_log_level_name(level), msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = (int)sizeof line - 1;
		line[n - 1] = '\n';
	}
	/* Nothing useful can be done if stderr is gone. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void pe_log(enum pe_log_level level, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	if (level > threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pe_log_one_line(msg);
	emit(level, msg);
}

void pe_log_sink(void *ctx, enum pe_log_level level, const char *message)
{
	(void)ctx;
	if (level <= threshold)
		emit(level, message);
}
