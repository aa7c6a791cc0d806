/*
 * version.c -- the running library's version, from the one configure.ac
 * gives (tests/test_server.c checks that poolecho/version.h agrees).
 */
#include <config.h>

#include <poolecho/version.h>

const char *pe_version(void)
{
	return PACKAGE_VERSION;
}
