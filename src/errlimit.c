/*
 * errlimit.c -- recurring errors, each reported at most once per interval;
 * see errlimit.h.
 */
#include <config.h>

#include <string.h>

#include "errlimit.h"

void pe_errlimit_init(struct pe_errlimit *el, int64_t interval)
{
	memset(el, 0, sizeof *el);
	el->interval = interval;
}

static struct pe_errlimit_held take_held(struct pe_errlimit *el, struct pe_errlimit_kind *k)
{
	struct pe_errlimit_held h = {.err = k->err, .count = k->held};

	el->held -= k->held;
	k->held = 0;
	return h;
}

/* ERR's slot; else a free one, or the one reported longest ago. */
static struct pe_errlimit_kind *slot_for(struct pe_errlimit *el, int err)
{
	struct pe_errlimit_kind *oldest = &el->kinds[0];

	for (int i = 0; i < ERRLIMIT_KINDS; i++) {
		struct pe_errlimit_kind *k = &el->kinds[i];

		if (k->err == err)
			return k;
		if (k->err == 0 || (oldest->err != 0 && k->reported_at < oldest->reported_at))
			oldest = k;
	}
	return oldest;
}

int pe_errlimit_note(struct pe_errlimit *el, int err, int64_t now, struct pe_errlimit_held *held)
{
	struct pe_errlimit_kind *k = slot_for(el, err);

	if (k->err == err && now - k->reported_at < el->interval) {
		k->held++;
		el->held++;
		held->err = err;
		held->count = 0;
		return 0;
	}
	*held = take_held(el, k);   /* ERR's own count, or the count of the error it replaces */
	k->err = err;
	k->reported_at = now;
	return 1;
}

int64_t pe_errlimit_due_at(const struct pe_errlimit *el)
{
	int64_t due = -1;

	if (!pe_errlimit_holding(el))
		return -1;
	for (int i = 0; i < ERRLIMIT_KINDS; i++) {
		const struct pe_errlimit_kind *k = &el->kinds[i];

		if (k->held && (due < 0 || k->reported_at + el->interval < due))
			due = k->reported_at + el->interval;
	}
	return due;
}

struct pe_errlimit_held pe_errlimit_due(struct pe_errlimit *el, int64_t now)
{
	struct pe_errlimit_held none = {0, 0};

	for (int i = 0; pe_errlimit_holding(el) && i < ERRLIMIT_KINDS; i++) {
		struct pe_errlimit_kind *k = &el->kinds[i];

		if (k->held && now - k->reported_at >= el->interval) {
			k->reported_at = now;
			return take_held(el, k);
		}
	}
	return none;
}

struct pe_errlimit_held pe_errlimit_flush(struct pe_errlimit *el)
{
	struct pe_errlimit_held none = {0, 0};

	for (int i = 0; i < ERRLIMIT_KINDS; i++)
		if (el->kinds[i].held)
			return take_held(el, &el->kinds[i]);
	return none;
}
