/*
 * poolecho/version.h -- which libpoolecho a program was built against
 * (PE_VERSION_*) and which one it runs with (pe_version()).
 *
 * Policy: a change in the size or layout of a struct a caller allocates
 * (pe_server_config, pe_server_stats, pe_pool_config) comes with a new
 * soname (libpoolecho.so.N), so that a program built against one library
 * is not run with another whose structs differ. src/version.c holds
 * their sizes and every member's offset on x86-64 and i386, so that a build
 * fails on a change made without one.
 */
#ifndef POOLECHO_VERSION_H
#define POOLECHO_VERSION_H

#include <poolecho/visibility.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PE_VERSION_MAJOR 0
#define PE_VERSION_MINOR 1
#define PE_VERSION_PATCH 0
#define PE_VERSION_STRING "0.1.0"
/* One number to compare: 0.1.0 is 100, 1.2.3 is 10203 (MINOR and PATCH
 * stay below 100). */
#define PE_VERSION_NUMBER (PE_VERSION_MAJOR * 10000 + PE_VERSION_MINOR * 100 + PE_VERSION_PATCH)

/* The version of the library running, as "MAJOR.MINOR.PATCH". */
PE_API const char *pe_version(void);

#ifdef __cplusplus
}
#endif

#endif /* POOLECHO_VERSION_H */
