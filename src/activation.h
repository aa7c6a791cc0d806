/*
 * activation.h -- the listening socket a service manager passed, as
 * systemd's socket activation does (sd_listen_fds(3)), read without
 * libsystemd: the protocol is two environment variables.
 */
#ifndef POOLECHO_ACTIVATION_H
#define POOLECHO_ACTIVATION_H

#include <stddef.h>

#define PE_ACTIVATION_FIRST_FD 3 /* SD_LISTEN_FDS_START */

/* Whether $LISTEN_PID is this process and $LISTEN_FDS passes it one
 * socket: 1 with *FD set to it (close-on-exec from now on), 0 when none
 * was passed to this process, or -1 with ERR saying why the variables
 * cannot be used (a value that is no number, more than one socket, a
 * descriptor not open, a connection as a unit with Accept=yes passes).
 * Either way both variables, and $LISTEN_FDNAMES,
 * are unset, so that no program started later takes them as its own. */
int pe_activation_socket(int *fd, char *err, size_t errlen);

/* -1 with ERR saying why when standard input is a TCP socket, connected
 * or listening, as inetd(8) passes one to a server it runs: poolechod
 * accepts its own connections. 0 otherwise. */
int pe_activation_inetd(char *err, size_t errlen);

/* After pe_activation_inetd() refused a listening socket (a "wait"
 * service's): the client waiting on it, if any, is accepted and sent ERR,
 * which standard error, that same socket, cannot take. */
void pe_activation_inetd_tell_waiting(const char *err);

#endif /* POOLECHO_ACTIVATION_H */
