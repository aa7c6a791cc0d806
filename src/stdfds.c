/*
 * stdfds.c -- open /dev/null on the standard descriptors a caller closed,
 * write standard output whole, and report one that failed. Both errors
 * are said on stderr with the journal's error priority when stderr is the
 * journal.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
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

int pe_stdout_print_checked(const char *program, void (*print)(FILE *out, const void *arg),
                            const void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	int err = 0;

	if (!out) {
		err = errno;
	} else {
		print(out, arg);
		if (ferror(out))
			err = errno ? errno : EIO;
		if (fclose(out) != 0 && !err)
			err = errno;
		if (!err && pe_write_whole(STDOUT_FILENO, text, len) < 0)
			err = errno;
	}
	free(text);
	if (!err)
		return 0;
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
