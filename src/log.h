/*
 * log.h -- the programs' log: one line per event on stderr, with an
 * ISO 8601 UTC timestamp and a level (into systemd's journal, a "<N>"
 * priority instead: see pe_log_detect_journal). Each line is written under
 * a lock, in one write(2) unless standard error takes only part of it, so
 * lines from different threads never interleave.
 */
#ifndef POOLECHO_LOG_H
#define POOLECHO_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <poolecho/server.h>

void pe_log_set_program(const char *name);
void pe_log_set_level(enum pe_log_level level);

/* Whether stderr is systemd's journal: $JOURNAL_STREAM ("DEV:INO") names
 * the device and inode of fd 2. From then on each line is sd-daemon(3)'s
 * "<N>MESSAGE" (<3> error, <4> warning, <6> info, <7> debug), without the
 * timestamp, program and PID the journal records itself. */
bool pe_log_detect_journal(void);

/* For the journal, LEVEL's "<N>" prefix; otherwise "". For what is written
 * to stderr other than through pe_log (usage errors, the client's errors). */
const char *pe_log_prefix(enum pe_log_level level);

/* "error", "warning", "info" or "debug": as --log-level spells it. */
const char *pe_log_level_name(enum pe_log_level level);

/* From now on never wait for stderr's reader (poolechod's workers log):
 * where stderr is a pipe, terminal or socket, a line it cannot take at once
 * is dropped, and the next one that goes out is preceded by a warning that
 * counts those dropped (the rest of a line a terminal or socket took part
 * of goes out before any other, once there is room; the lines logged until
 * then are dropped). stderr is opened again without
 * blocking, or where that is refused: another user's pipe is polled before
 * each line, and another user's terminal (which polls writable with room
 * for a single byte) is written by a thread of its own, the others queuing
 * their lines for it, the last 64 of them; at exit it has a second to
 * write those left. 0, or -errno when stderr cannot be examined (lines
 * then wait, as before). */
int pe_log_never_block(void);

/* From now on, for MS milliseconds in all, a line standard error cannot
 * take at once waits for room instead of being dropped: for a program's
 * last lines, once no other thread logs (poolechod's "stopped:" line, and
 * the count of the lines dropped before it), which a reader that fell
 * behind and reads on then gets, as a terminal's writer thread gets its
 * second at exit. A stderr that fails (EPIPE, ENOSPC) is not waited for. */
void pe_log_wait_for_reader(unsigned ms);

void pe_log(enum pe_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The longest line pe_log_vformat makes, NUL excluded. */
#define PE_LOG_LINE_MAX 1023

/* Format FMT into MSG (SIZE bytes, 4 to PE_LOG_LINE_MAX + 1) as one line:
 * control characters (a newline in a -b value, say) shown as \xNN
 * (pe_parse_shown), so no text can forge a line of its own, and a
 * message cut to fit ends in "..." after its last whole UTF-8 character. */
void pe_log_vformat(char *msg, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* A pe_log_fn for pe_server_config.log: CTX is unused. */
void pe_log_sink(void *ctx, enum pe_log_level level, const char *message);

#endif /* POOLECHO_LOG_H */
