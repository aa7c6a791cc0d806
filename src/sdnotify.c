/*
 * sdnotify.c -- the sd_notify(3) protocol without libsystemd: one datagram
 * on an AF_UNIX socket whose path (or, after '@', abstract name) the
 * manager passes in $NOTIFY_SOCKET.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "monotonic.h"
#include "sdnotify.h"

/* Whether a signal of SET is pending for this thread or the process. */
static int pending_in(const sigset_t *set)
{
	sigset_t pending;

	if (sigpending(&pending) != 0)
		return 0;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(set, sig) == 1 && sigismember(&pending, sig) == 1)
			return 1;
	return 0;
}

int pe_sd_notify_until(const char *state, int timeout_ms, const sigset_t *give_up_on)
{
	enum { SLICE_MS = 100 };
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const struct timeval slice = {.tv_usec = SLICE_MS * 1000};
	int64_t start = pe_monotonic_now(1000);
	size_t len;
	socklen_t salen;
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
	/* A manager whose queue is full (busy, or stuck) is waited for a
	 * slice at a time, so that a stop can end the wait. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &slice, sizeof slice);
	for (;;) {
		if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) >= 0) {
			close(fd);
			return 1;
		}
		e = errno;
		if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR)
			break;
		e = EAGAIN;
		if (give_up_on && pending_in(give_up_on)) {
			e = ECANCELED;
			break;
		}
		if (timeout_ms >= 0 && pe_monotonic_now(1000) - start >= timeout_ms)
			break;
	}
	close(fd);
	return -e;
}
