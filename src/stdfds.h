/*
 * stdfds.h -- standard descriptors that a caller left closed.
 */
#ifndef POOLECHO_STDFDS_H
#define POOLECHO_STDFDS_H

/* Open /dev/null on whichever of descriptors 0, 1 and 2 is closed, so that
 * no socket or pipe opened later takes its number: the log would be written
 * into it, and a read of standard input would read it. Standard input gets
 * /dev/null for writing and the other two for reading, so that using a
 * descriptor the caller closed still fails with EBADF, as it would have.
 * 0, or a negative errno when /dev/null cannot be opened. Call it first,
 * before any thread or descriptor is made. */
int pe_stdfds_guard(void);

#endif
