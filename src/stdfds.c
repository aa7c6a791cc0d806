/*
 * stdfds.c -- open /dev/null on the standard descriptors a caller closed.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "stdfds.h"

int pe_stdfds_guard(void)
{
	for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* The lowest free number, FD: those below it are open by now. */
		if (open("/dev/null", fd == STDIN_FILENO ? O_WRONLY : O_RDONLY) < 0)
			return -errno;
	}
	return 0;
}
