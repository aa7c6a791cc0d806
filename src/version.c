/*
 * version.c -- the running library's version, from the one configure.ac
 * gives (tests/test_server.c checks that poolecho/version.h agrees), and
 * version.h's soname policy held at compile time.
 */
#include <config.h>

#include <stddef.h>

#include <poolecho/pool.h>
#include <poolecho/server.h>
#include <poolecho/version.h>

/* The structs a caller allocates keep their size and layout on the ABIs
 * recorded here (CI builds both). When an assertion fails, the change needs
 * a new soname: raise -version-info's current in Makefile.am, then record
 * the new figures. */
#define PE_LAYOUT(type, size, last, last_offset) \
	_Static_assert(sizeof(struct type) == (size), \
	               "struct " #type " changed size: see poolecho/version.h"); \
	_Static_assert(offsetof(struct type, last) == (last_offset), \
	               "struct " #type " changed layout: see poolecho/version.h")

#if defined(__x86_64__) && defined(__LP64__)
PE_LAYOUT(pe_server_config, 96, log_level, 88);
PE_LAYOUT(pe_server_stats, 80, accept_errors, 72);
PE_LAYOUT(pe_pool_config, 48, ctx, 40);
#elif defined(__i386__)
PE_LAYOUT(pe_server_config, 64, log_level, 60);
PE_LAYOUT(pe_server_stats, 80, accept_errors, 72);
PE_LAYOUT(pe_pool_config, 24, ctx, 20);
#endif

const char *pe_version(void)
{
	return PACKAGE_VERSION;
}
