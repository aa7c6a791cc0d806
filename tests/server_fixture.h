/*
 * server_fixture.h -- an in-process poolecho server for the tests: created
 * on 127.0.0.1 port 0, pe_server_run() on a background thread, and a stop
 * that joins the thread within a deadline and frees everything.
 *
 * Links libpoolecho, so it is kept apart from helpers.c, which the program
 * suite (tests/test_daemon) links without the library.
 */
#ifndef POOLECHO_TESTS_SERVER_FIXTURE_H
#define POOLECHO_TESTS_SERVER_FIXTURE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <poolecho/server.h>

struct tf_server {
	pe_server *srv;
	pthread_t thread;
	int started;   /* the run thread exists and is not joined yet */
	int run_rc;    /* what pe_server_run returned, once joined */
	unsigned port;
};

/* pe_server_config_init, then what a test server wants: 127.0.0.1, port 0,
 * WORKERS workers, QUEUE slots, short grace, small stacks, warnings logged
 * to stderr (set TF_LOG_DEBUG=1 in the environment to see every event). */
void tf_config(struct pe_server_config *cfg, unsigned workers, size_t queue);

/* A log callback that keeps every line, for a test to read with
 * tf_log_text() once nothing logs any more (the server joined). */
void tf_log_keep(void *ctx, enum pe_log_level level, const char *message);
const char *tf_log_text(void);
/* Those of its lines logged at PE_LOG_WARN or PE_LOG_ERROR. */
const char *tf_log_warnings(void);
/* Wait until a line kept so far contains NEEDLE, while the server may
 * still log: 0, or -ETIMEDOUT after TIMEOUT_MS. */
int tf_log_wait(const char *needle, unsigned timeout_ms);

/* Create the server and start pe_server_run on a thread: 0 or the
 * negative errno of pe_server_create / pthread_create. */
int tf_start(struct tf_server *ts, const struct pe_server_config *cfg);

/* Ask the server to stop: gracefully (pe_server_stop) or at once. */
void tf_request_stop(struct tf_server *ts, int now);

/* Join the run thread within TIMEOUT_MS: 0 (run's result in ts->run_rc)
 * or -ETIMEDOUT, in which case the server must not be destroyed. */
int tf_join(struct tf_server *ts, unsigned timeout_ms);

/* Stop (if not yet asked), join and destroy: 0, or -ETIMEDOUT when the run
 * thread did not return in time (the server is then left alone). */
int tf_stop(struct tf_server *ts, int now, unsigned timeout_ms);

/* Poll the server's stats until FIELD (a member of struct
 * pe_server_stats) reaches at least TARGET: 0 or -ETIMEDOUT. Stats have no
 * change notification, so this re-reads them every few milliseconds up to
 * the deadline; a test never uses it as proof that something did NOT happen. */
#define tf_wait_stat(ts, field, target, timeout_ms) \
	tf_wait_stat_at((ts), offsetof(struct pe_server_stats, field), (target), (timeout_ms))
int tf_wait_stat_at(struct tf_server *ts, size_t offset, uint64_t target, unsigned timeout_ms);

/* The server's stats now. */
struct pe_server_stats tf_stats(struct tf_server *ts);

struct th_event;

/* A thread of TS's server is held in its log callback, until RELEASE is
 * raised, while it says why it closes CLIENT's connection (a refusal, a
 * drop). Fork a child that destroys its copy of the server and lives on,
 * let the thread go, and wait up to TIMEOUT_MS for CLIENT to see the close
 * while the child still lives: 0; -ETIMEDOUT (or another negative errno)
 * when it saw none, the child's copy keeping the connection open; -ECHILD
 * when the child failed. */
int tf_fork_destroy_and_wait_closed(struct tf_server *ts, int client, struct th_event *release,
                                    unsigned timeout_ms);

#endif /* POOLECHO_TESTS_SERVER_FIXTURE_H */
