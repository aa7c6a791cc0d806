/*
 * stdfds.c -- open /dev/null on the standard descriptors a caller closed,
 * and report a standard output that failed. Both errors are said on
 * stderr with the journal's error priority when stderr is the journal.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
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
