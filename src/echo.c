/*
 * echo.c -- the blocking echo loop. Bytes are bytes: whatever read(2)
 * returns is written back in full, looping over short writes and EINTR.
 * The timeouts come from SO_RCVTIMEO/SO_SNDTIMEO, so an idle or stuck
 * client costs no extra system call per message.
 */
#include <config.h>

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo.h"
#include "net.h"

enum pe_echo_end pe_echo_serve(int fd, char *buf, size_t size,
                               struct pe_worker_counters *counters, int *err)
{
	*err = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, size, 0);
		int rc;

		if (n == 0)
			return PE_ECHO_EOF;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return PE_ECHO_TIMEOUT;
			*err = errno;
			return PE_ECHO_ERROR;
		}
		pe_counter_add(&counters->bytes_in, (uint64_t)n);
		rc = pe_net_write_all(fd, buf, (size_t)n);
		if (rc == -EAGAIN)
			return PE_ECHO_TIMEOUT;
		if (rc < 0) {
			*err = -rc;
			return PE_ECHO_ERROR;
		}
		pe_counter_add(&counters->bytes_out, (uint64_t)n);
	}
}
