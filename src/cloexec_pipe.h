/*
 * cloexec_pipe.h -- pipe(2) with both ends close-on-exec, by pipe2(2)
 * where the system has it: the server's wake pipe and the echo's splice
 * pipes, so that a build without pipe2 takes the same fallback for both.
 */
#ifndef POOLECHO_CLOEXEC_PIPE_H
#define POOLECHO_CLOEXEC_PIPE_H

#include <fcntl.h>
#include <unistd.h>

/* The call that makes it, for error messages. */
#ifdef HAVE_PIPE2
#define PE_CLOEXEC_PIPE_CALL "pipe2"
#else
#define PE_CLOEXEC_PIPE_CALL "pipe and fcntl"
#endif

/* 0, or -1 with errno set and both fds[] at -1: without pipe2 the ends
 * made are closed here, and a caller that closed them again might close
 * what another thread has been given their numbers for. Close-on-exec
 * from the start where the system allows: another thread of the
 * embedding program may fork and exec between pipe(2) and fcntl(2). */
static inline int pe_cloexec_pipe(int fds[2])
{
#ifdef HAVE_PIPE2
	if (pipe2(fds, O_CLOEXEC) == 0)
		return 0;
	fds[0] = fds[1] = -1;
	return -1;
#else
	int e;

	if (pipe(fds) < 0) {
		fds[0] = fds[1] = -1;
		return -1;
	}
	if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0 && fcntl(fds[1], F_SETFD, FD_CLOEXEC) == 0)
		return 0;
	/* An end left to an exec'd program would keep a stop from waking us. */
	e = errno;
	close(fds[0]);
	close(fds[1]);
	fds[0] = fds[1] = -1;
	errno = e;
	return -1;
#endif
}

#endif
