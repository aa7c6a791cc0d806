/*
 * sysfile.c -- read the kernel's settings from /proc and /sys.
 */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "sysfile.h"

long pe_sysfile_number(const char *path)
{
	/* Close-on-exec, as every descriptor the library opens: the server
	 * reads one here when a bind fails, while another thread of the
	 * program embedding it may fork and exec. */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	} else if (fd >= 0) {
		close(fd);
	}
	return v;
}
