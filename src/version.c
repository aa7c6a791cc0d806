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

/* The structs a caller allocates keep their size and every member's place
 * on the ABIs recorded here (CI builds both). When an assertion fails, the
 * change needs a new soname: raise -version-info's current in Makefile.am
 * and set its age to 0, then record the new figures. A function added
 * alone raises current and age, and keeps the soname. */
#if defined(__x86_64__) && defined(__LP64__)
#define PE_ABI(lp64, i386) (lp64)
#elif defined(__i386__)
#define PE_ABI(lp64, i386) (i386)
#endif

#ifdef PE_ABI
#define PE_SIZE(type, lp64, i386) \
	_Static_assert(sizeof(struct type) == PE_ABI(lp64, i386), \
	               "struct " #type " changed size: see poolecho/version.h")
#define PE_AT(type, member, lp64, i386) \
	_Static_assert(offsetof(struct type, member) == PE_ABI(lp64, i386), \
	               "struct " #type " moved " #member ": see poolecho/version.h")

PE_SIZE(pe_server_config, 104, 68);
PE_AT(pe_server_config, bind_address, 0, 0);
PE_AT(pe_server_config, port, 8, 4);
PE_AT(pe_server_config, workers, 12, 8);
PE_AT(pe_server_config, queue_capacity, 16, 12);
PE_AT(pe_server_config, backlog, 24, 16);
PE_AT(pe_server_config, overflow, 28, 20);
PE_AT(pe_server_config, per_source, 32, 24);
PE_AT(pe_server_config, idle_timeout_ms, 36, 28);
PE_AT(pe_server_config, grace_ms, 40, 32);
PE_AT(pe_server_config, buffer_size, 48, 36);
PE_AT(pe_server_config, stack_size, 56, 40);
PE_AT(pe_server_config, busy_poll_us, 64, 44);
PE_AT(pe_server_config, splice, 68, 48);
PE_AT(pe_server_config, batch_scheduling, 72, 52);
PE_AT(pe_server_config, log, 80, 56);
PE_AT(pe_server_config, log_ctx, 88, 60);
PE_AT(pe_server_config, log_level, 96, 64);

PE_SIZE(pe_server_stats, 88, 88);
PE_AT(pe_server_stats, accepted, 0, 0);
PE_AT(pe_server_stats, rejected, 8, 8);
PE_AT(pe_server_stats, served, 16, 16);
PE_AT(pe_server_stats, dropped, 24, 24);
PE_AT(pe_server_stats, active, 32, 32);
PE_AT(pe_server_stats, queued, 40, 40);
PE_AT(pe_server_stats, bytes_in, 48, 48);
PE_AT(pe_server_stats, bytes_out, 56, 56);
PE_AT(pe_server_stats, timeouts, 64, 64);
PE_AT(pe_server_stats, accept_errors, 72, 72);
PE_AT(pe_server_stats, source_limited, 80, 80);

PE_SIZE(pe_pool_config, 48, 24);
PE_AT(pe_pool_config, workers, 0, 0);
PE_AT(pe_pool_config, stack_size, 8, 4);
PE_AT(pe_pool_config, batch_scheduling, 16, 8);
PE_AT(pe_pool_config, queue, 24, 12);
PE_AT(pe_pool_config, handler, 32, 16);
PE_AT(pe_pool_config, ctx, 40, 20);
#endif

const char *pe_version(void)
{
	return PACKAGE_VERSION;
}
