/*
 * sysfile.c -- read the kernel's settings from /proc and /sys.
 */
#include <config.h>

#include <stdio.h>

#include "sysfile.h"

long pe_sysfile_number(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}
