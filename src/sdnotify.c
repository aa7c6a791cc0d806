/*
 * sdnotify.c -- the sd_notify(3) protocol without libsystemd: one datagram
 * on an AF_UNIX socket whose path (or, after '@', abstract name) the
 * manager passes in $NOTIFY_SOCKET.
 */
#include <config.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

int pe_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len;
	socklen_t salen;
	ssize_t n;
	int fd, e;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	/* A path needs room for its NUL; an abstract name has none, so it may
	 * fill sun_path, as the kernel allows (libsystemd's sd_notify now
	 * insists on a NUL after it too and refuses a name this long, but a
	 * manager other than systemd may use one). */
	if ((path[0] != '/' && path[0] != '@') || len > sizeof sa.sun_path - (path[0] == '/'))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* Linux's abstract namespace: not NUL-terminated */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A manager whose queue is full (not reading) must not hold the daemon
	 * up for ever: READY=1 is sent before the signal thread runs, and
	 * STOPPING=1 from it. Wait a second at most, then give up (EAGAIN). */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){.tv_sec = 1},
	                 sizeof(struct timeval));
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	e = errno;
	close(fd);
	return n < 0 ? -e : 1;
}
