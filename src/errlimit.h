/*
 * errlimit.h -- report a recurring error at most once per interval, and
 * count what was held back, so that the count is printed beside the error
 * it counts. A server out of descriptors fails accept(2) ten times a
 * second; its log must stay short without hiding how often.
 */
#ifndef POOLECHO_ERRLIMIT_H
#define POOLECHO_ERRLIMIT_H

#include <stdint.h>

/* Times are in any one unit of a monotonic clock, the caller's choice. */
struct errlimit {
	int64_t interval;    /* the same error is reported at most this often */
	int err;             /* the error last reported; 0 before any */
	int64_t reported_at; /* when */
	unsigned long held;  /* occurrences of ERR since then, not reported */
};

/* Held-back occurrences of one error, to be reported as a count. */
struct errlimit_held {
	int err;
	unsigned long count; /* 0: nothing to report */
};

void errlimit_init(struct errlimit *el, int64_t interval);

/* One more occurrence of ERR at NOW. Returns 1 when ERR is to be reported
 * now, 0 when it is held back. *HELD is what to report before it: earlier
 * occurrences of a different error, or of ERR itself when its interval is
 * over. */
int errlimit_note(struct errlimit *el, int err, int64_t now, struct errlimit_held *held);

/* When the count held back is due to be reported (one interval after the
 * last report), or -1 when nothing is held back. */
int64_t errlimit_due_at(const struct errlimit *el);

/* The count held back, if it is due at NOW; else a count of 0. Call it when
 * the failing call succeeds, or at errlimit_due_at(): a count comes at most
 * once per interval, so an error that comes and goes cannot flood the log,
 * and at most one interval late. */
struct errlimit_held errlimit_due(struct errlimit *el, int64_t now);

/* Whatever is still held back, at the end. */
struct errlimit_held errlimit_flush(struct errlimit *el);

#endif
