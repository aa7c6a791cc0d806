/*
 * errlimit.h -- report a recurring error at most once per interval, and
 * count what was held back, so that the count is printed beside the error
 * it counts. A server out of descriptors fails accept(2) ten times a
 * second; its log must stay short without hiding how often.
 */
#ifndef POOLECHO_ERRLIMIT_H
#define POOLECHO_ERRLIMIT_H

#include <stdint.h>

/* Distinct errors limited at once: more than accept(2) has. A new one
 * beyond them takes the place of the one reported longest ago, whose
 * count is then reported. */
#define ERRLIMIT_KINDS 16

/* Times are >= 0, in any one unit of a monotonic clock, the caller's choice. */
struct pe_errlimit {
	int64_t interval;            /* each error is reported at most this often */
	unsigned long held;          /* the sum of the kinds' counts */
	struct pe_errlimit_kind {
		int err;             /* 0: a free slot */
		int64_t reported_at; /* when ERR was last reported */
		unsigned long held;  /* occurrences of ERR since then, not reported */
	} kinds[ERRLIMIT_KINDS];
};

/* Held-back occurrences of one error, to be reported as a count. */
struct pe_errlimit_held {
	int err;
	unsigned long count; /* 0: nothing to report */
};

void pe_errlimit_init(struct pe_errlimit *el, int64_t interval);

/* Whether any count is held back: a check cheap enough for every success. */
static inline int pe_errlimit_holding(const struct pe_errlimit *el)
{
	return el->held != 0;
}

/* One more occurrence of ERR (non-zero) at NOW. Returns 1 when ERR is to be
 * reported now, 0 when it is held back. *HELD is what to report before
 * it: earlier occurrences of ERR itself when its interval is over, or of
 * the error whose place it takes. */
int pe_errlimit_note(struct pe_errlimit *el, int err, int64_t now, struct pe_errlimit_held *held);

/* When the next count held back is due to be reported (one interval after
 * its error's last report), or -1 when nothing is held back. */
int64_t pe_errlimit_due_at(const struct pe_errlimit *el);

/* One count held back that is due at NOW, or a count of 0 when none is;
 * call it until it returns 0. Call it when the failing call succeeds and at
 * pe_errlimit_due_at(): each error's count comes at most once per interval, so
 * an error that comes and goes cannot flood the log. */
struct pe_errlimit_held pe_errlimit_due(struct pe_errlimit *el, int64_t now);

/* One count still held back, at the end; call it until it returns 0. */
struct pe_errlimit_held pe_errlimit_flush(struct pe_errlimit *el);

#endif
