/*
 * activation.c -- the socket of systemd's socket activation: $LISTEN_PID
 * names the process the sockets are for, $LISTEN_FDS how many there are,
 * from descriptor 3 on (sd_listen_fds(3)). poolechod listens on one.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "activation.h"
#include "parse.h"

/* Unset, as sd_listen_fds(3) does when asked to (unset_environment): a
 * shell or a test this process starts would otherwise be told the socket
 * is its own. */
static void forget_variables(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

/* Whether FD is a connected socket: what a socket unit with Accept=yes
 * passes, one service instance per connection, the way inetd served echo,
 * and so the likely mistake. */
static int is_a_connection(int fd)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof peer;

	return getpeername(fd, (struct sockaddr *)&peer, &len) == 0;
}

static int bad_value(char *err, size_t errlen, const char *name, const char *value,
                     const char *expected)
{
	char shown[PE_PARSE_SHOWN_MAX];

	snprintf(err, errlen, "%s is '%s': expected %s", name,
	         pe_parse_shown(value, strlen(value), shown, sizeof shown), expected);
	return -1;
}

/* pe_activation_socket(), but for forgetting the variables. */
static int take_socket(int *fd, char *err, size_t errlen)
{
	const char *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
	char expected[64], fds_shown[PE_PARSE_SHOWN_MAX];
	unsigned long pid, fds;

	if (!pid_text || !fds_text)
		return 0;
	if (pe_parse_ulong(pid_text, 1, LONG_MAX, &pid) != 0)
		return bad_value(err, errlen, "LISTEN_PID", pid_text, "a process ID");
	/* Set for another process (a shell that went on to start us): not ours. */
	if (pid != (unsigned long)getpid())
		return 0;
	/* The descriptors run from 3 up, and each is an int. */
	snprintf(expected, sizeof expected, "a number of sockets, 0 to %d",
	         INT_MAX - PE_ACTIVATION_FIRST_FD);
	if (pe_parse_ulong(fds_text, 0, INT_MAX - PE_ACTIVATION_FIRST_FD, &fds) != 0)
		return bad_value(err, errlen, "LISTEN_FDS", fds_text, expected);
	if (fds == 0)
		return 0;
	/* As it was set: "01" is shown so, not as 1. */
	pe_parse_shown(fds_text, strlen(fds_text), fds_shown, sizeof fds_shown);
	if (fds > 1) {
		snprintf(err, errlen, "the service manager passed %lu sockets (LISTEN_FDS=%s), "
		         "and poolechod listens on one: give its socket unit one ListenStream=",
		         fds, fds_shown);
		return -1;
	}
	if (fcntl(PE_ACTIVATION_FIRST_FD, F_SETFD, FD_CLOEXEC) < 0) {
		snprintf(err, errlen, "LISTEN_FDS=%s passes descriptor %d, which cannot be used: %s",
		         fds_shown, PE_ACTIVATION_FIRST_FD, strerror(errno));
		return -1;
	}
	if (is_a_connection(PE_ACTIVATION_FIRST_FD)) {
		snprintf(err, errlen, "descriptor %d, which LISTEN_FDS=%s passes, is a connection, "
		         "not a listening socket: its socket unit has Accept=yes, and poolechod "
		         "wants Accept=no (the default), one socket to accept on",
		         PE_ACTIVATION_FIRST_FD, fds_shown);
		return -1;
	}
	*fd = PE_ACTIVATION_FIRST_FD;
	return 1;
}

/* Standard input as inetd(8) and xinetd hand it to a server they run (and
 * systemd with StandardInput=socket): the client's TCP connection, one
 * server per connection ("nowait"), or the listening socket ("wait").
 * poolechod accepts its own connections: started so, it would leave the
 * client unanswered, write its log lines (standard error is that
 * connection too) where the echo should go, and go on listening on port
 * 9999 of every address, one more daemon for each client. */
int pe_activation_inetd(char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof addr, typelen = sizeof(int);
	int type, listening, pending;

	if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_TYPE, &type, &typelen) < 0 ||
	    type != SOCK_STREAM ||
	    getsockname(STDIN_FILENO, (struct sockaddr *)&addr, &len) < 0 ||
	    (addr.ss_family != AF_INET && addr.ss_family != AF_INET6))
		return 0;
	typelen = sizeof listening;
	if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &listening, &typelen) == 0 &&
	    listening) {
		snprintf(err, errlen, "standard input is a listening TCP socket, as inetd passes "
		         "one to a \"wait\" service: poolechod listens on its own, or on a "
		         "socket systemd passes as descriptor 3 ($LISTEN_FDS); run it directly "
		         "or from a socket unit with Accept=no, not from inetd");
		return -1;
	}
	/* A client that reset before we looked (a port scan, a health check
	 * that connects and leaves) left a socket connected to no one, but
	 * with the reset as its pending error: still inetd's connection, and
	 * the daemon it started must not stay to listen. A socket that was
	 * never connected has none. */
	typelen = sizeof pending;
	if (!is_a_connection(STDIN_FILENO) &&
	    (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ERROR, &pending, &typelen) < 0 ||
	     pending == 0))
		return 0;
	snprintf(err, errlen, "standard input is a TCP connection, as inetd passes one to the "
	         "server it starts for each client: poolechod accepts its own connections; "
	         "run it directly or from a socket unit with Accept=no, not from inetd");
	return -1;
}

/* Given a "wait" service's listening socket, standard error is that socket
 * too, and a line written there is lost (EPIPE): the client that made inetd
 * start us would get nothing, and inetd, its socket still readable, would
 * start us again at once, as fast as its rate limit lets it. So the client
 * waiting, if one is, is taken and told ERR, as a "nowait" one is. */
void pe_activation_inetd_tell_waiting(const char *err)
{
	struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
	int listening = 0, fd;
	socklen_t len = sizeof listening;
	size_t n = strlen(err);

	if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
	    !listening || poll(&pfd, 1, 0) != 1)
		return;
	/* Not O_NONBLOCK on inetd's own socket: its file description is shared.
	 * Linux keeps a client that reset in the queue, so accept does not wait. */
	fd = accept4(STDIN_FILENO, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (send(fd, err, n, MSG_NOSIGNAL) == (ssize_t)n)
		(void)send(fd, "\n", 1, MSG_NOSIGNAL);
	close(fd);
}

int pe_activation_socket(int *fd, char *err, size_t errlen)
{
	int rc;

	*fd = -1;
	rc = take_socket(fd, err, errlen);
	forget_variables();
	return rc;
}
