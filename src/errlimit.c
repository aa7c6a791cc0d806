/*
 * errlimit.c -- a recurring error reported at most once per interval; see
 * errlimit.h.
 */
#include <config.h>

#include "errlimit.h"

void errlimit_init(struct errlimit *el, int64_t interval)
{
	el->interval = interval;
	el->err = 0;
	el->reported_at = 0;
	el->held = 0;
}

static struct errlimit_held take_held(struct errlimit *el)
{
	struct errlimit_held h = {.err = el->err, .count = el->held};

	el->held = 0;
	return h;
}

static int interval_over(const struct errlimit *el, int64_t now)
{
	return now - el->reported_at >= el->interval;
}

int errlimit_note(struct errlimit *el, int err, int64_t now, struct errlimit_held *held)
{
	if (el->err == err && !interval_over(el, now)) {
		el->held++;
		held->err = err;
		held->count = 0;
		return 0;
	}
	*held = take_held(el);
	el->err = err;
	el->reported_at = now;
	return 1;
}

int64_t errlimit_due_at(const struct errlimit *el)
{
	return el->held ? el->reported_at + el->interval : -1;
}

struct errlimit_held errlimit_due(struct errlimit *el, int64_t now)
{
	struct errlimit_held none = {.err = el->err, .count = 0};

	if (el->held == 0 || !interval_over(el, now))
		return none;
	el->reported_at = now;
	return take_held(el);
}

struct errlimit_held errlimit_flush(struct errlimit *el)
{
	return take_held(el);
}
