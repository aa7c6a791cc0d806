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

#include "monotonic.h"
#include "sdnotify.h"

int pe_sd_notify_open(struct pe_sd_notifier *n)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const struct timeval slice = {.tv_usec = 100 * 1000};
	size_t len;

	memset(n, 0, sizeof *n);
	n->fd = -1;
	if (!path || !*path)
		return 0;
	n->sa.sun_family = AF_UNIX;
	len = strlen(path);
	/* A path needs room for its NUL; an abstract name has none, so it may
	 * fill sun_path, as the kernel allows (libsystemd's sd_notify now
	 * insists on a NUL after it too and refuses a name this long, but a
	 * manager other than systemd may use one). */
	if ((path[0] != '/' && path[0] != '@') || len > sizeof n->sa.sun_path - (path[0] == '/'))
		return n->error = -EINVAL;
	memcpy(n->sa.sun_path, path, len);
	if (path[0] == '@')
		n->sa.sun_path[0] = '\0'; /* Linux's abstract namespace: not NUL-terminated */
	n->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0)
		return n->error = -errno;
	/* A manager whose queue is full (busy, or stuck) is waited for a
	 * slice at a time, so that the caller can give up between them. */
	(void)setsockopt(n->fd, SOL_SOCKET, SO_SNDTIMEO, &slice, sizeof slice);
	return 1;
}

int pe_sd_notify_send(const struct pe_sd_notifier *n, const char *state, int timeout_ms,
                      int (*give_up)(void *ctx), void *ctx)
{
	int64_t start = pe_monotonic_now(1000);
	int e;

	if (n->fd < 0)
		return n->error;
	for (;;) {
		if (sendto(n->fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&n->sa,
		           n->salen) >= 0)
			return 1;
		e = errno;
		if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR)
			return -e;
		if (give_up && give_up(ctx))
			return -ECANCELED;
		if (timeout_ms >= 0 && pe_monotonic_now(1000) - start >= timeout_ms)
			return -EAGAIN;
	}
}

void pe_sd_notify_close(struct pe_sd_notifier *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
