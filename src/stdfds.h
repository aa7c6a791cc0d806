/*
 * stdfds.h -- standard descriptors: closed by the caller, or failing.
 */
#ifndef POOLECHO_STDFDS_H
#define POOLECHO_STDFDS_H

#include <stddef.h>
#include <stdio.h>

/* Open /dev/null on whichever of descriptors 0, 1 and 2 is closed, so that
 * no socket or pipe opened later takes its number: the log would be written
 * into it, and a read of standard input would read it. Standard input gets
 * /dev/null for writing and the other two for reading, so that using a
 * descriptor the caller closed still fails with EBADF, as it would have.
 * 0, or 1 (the exit status) after saying "PROGRAM: cannot open /dev/null
 * ..." on standard error. Call it first, before any thread or descriptor
 * is made; only pe_log_detect_journal may come before it (it makes none),
 * so that the error gets the journal's priority. */
int pe_stdfds_guard(const char *program);

/* Print --help or --version: PRINT(OUT, ARG) into memory, then all of it
 * to standard output with pe_write_whole, so that a full non-blocking one
 * is waited out where stdio would drop the text on EAGAIN. 0, or 1 (the
 * exit status) after saying "PROGRAM: write error: REASON" on standard
 * error, as a full disk or a closed pipe must not pass for success. Both
 * errors start with pe_log_prefix's "<3>" when stderr is the journal. */
int pe_stdout_print_checked(const char *program, void (*print)(FILE *out, const void *arg),
                            const void *arg);

/* Write LEN bytes of BUF to FD whole, as a blocking write(2) would, even
 * where FD is non-blocking: O_NONBLOCK belongs to the open file
 * description, which a parent (node, a shell's coprocess) may have set on
 * the standard output it shares with us, and a full pipe then says EAGAIN,
 * which is waited out with poll(2). 0, or -1 with errno set. */
int pe_write_whole(int fd, const void *buf, size_t len);

#endif
