/*
 * stdfds.c -- open /dev/null on the standard descriptors a caller closed,
 * and report a standard output that failed. Both errors are said on
 * stderr with the journal's error priority when stderr is the journal.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "stdfds.h"

int pe_stdfds_guard(const char *program)
{
	for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* The lowest free number, FD: those below it are open by now. */
		if (open("/dev/null", fd == STDIN_FILENO ? O_WRONLY : O_RDONLY) < 0) {
			fprintf(stderr, "%s%s: cannot open /dev/null for a closed standard "
			        "descriptor: %s\n", pe_log_prefix(PE_LOG_ERROR), program,
			        strerror(errno));
			return 1;
		}
	}
	return 0;
}

int pe_stdout_flush_checked(const char *program)
{
	int err;

	/* Not cleared first: on a line-buffered or unbuffered stdout the write
	 * that failed was inside printf, and errno still says why. */
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	err = errno ? errno : EIO;
	fprintf(stderr, "%s%s: write error: %s\n", pe_log_prefix(PE_LOG_ERROR), program,
	        strerror(err));
	return 1;
}

int pe_write_whole(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ssize_t n = write(fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		/* A signal (see client_load.c's give_signals_back) ends the
		 * wait: the write is tried again, as SA_RESTART would. */
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}
