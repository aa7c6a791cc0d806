/*
 * echo.h -- the per-connection echo loop a worker runs: read, write back
 * every byte, until the client closes, an error, or the idle timeout.
 */
#ifndef POOLECHO_ECHO_H
#define POOLECHO_ECHO_H

#include <stddef.h>

#include "stats.h"

enum pe_echo_end {
	PE_ECHO_EOF,      /* the client closed (or half-closed) and got everything back */
	PE_ECHO_TIMEOUT,  /* nothing arrived, or the echo could not be written, for the idle timeout */
	PE_ECHO_ERROR     /* reset, or another socket error: *ERR holds the errno */
};

/* Echo FD until it ends, using BUF of SIZE bytes. FD must be blocking;
 * its SO_RCVTIMEO/SO_SNDTIMEO are the idle timeout. */
enum pe_echo_end pe_echo_serve(int fd, char *buf, size_t size,
                               struct pe_worker_counters *counters, int *err);

#endif /* POOLECHO_ECHO_H */
