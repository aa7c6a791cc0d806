/*
 * server_fixture.c -- the in-process test server of server_fixture.h: one
 * thread runs pe_server_run; stopping joins it within a deadline.
 */
#include <config.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "server_fixture.h"

static void log_stderr(void *ctx, enum pe_log_level level, const char *message)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};

	(void)ctx;
	fprintf(stderr, "[test server] %s: %s\n", names[level], message);
}

void tf_config(struct pe_server_config *cfg, unsigned workers, size_t queue)
{
	const char *debug = getenv("TF_LOG_DEBUG");

	pe_server_config_init(cfg);
	cfg->bind_address = "127.0.0.1";
	cfg->port = 0;
	cfg->workers = workers;
	cfg->queue_capacity = queue;
	cfg->grace_ms = 2000;
	cfg->idle_timeout_ms = 10000;
	cfg->log = log_stderr;
	cfg->log_ctx = NULL;
	cfg->log_level = debug && *debug == '1' ? PE_LOG_DEBUG : PE_LOG_WARN;
}

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kept_grew = PTHREAD_COND_INITIALIZER;
static char kept[8192];
static char kept_warnings[8192]; /* the lines at PE_LOG_WARN or PE_LOG_ERROR */

void tf_log_keep(void *ctx, enum pe_log_level level, const char *message)
{
	size_t used;

	(void)ctx;
	pthread_mutex_lock(&kept_lock);
	used = strlen(kept);
	snprintf(kept + used, sizeof kept - used, "%s\n", message);
	if (level <= PE_LOG_WARN) {
		used = strlen(kept_warnings);
		snprintf(kept_warnings + used, sizeof kept_warnings - used, "%s\n", message);
	}
	pthread_cond_broadcast(&kept_grew);
	pthread_mutex_unlock(&kept_lock);
}

const char *tf_log_text(void)
{
	return kept;
}

const char *tf_log_warnings(void)
{
	return kept_warnings;
}

int tf_log_wait(const char *needle, unsigned timeout_ms)
{
	/* kept_grew, statically made, waits on the realtime clock. */
	struct timespec deadline = th_deadline_on(CLOCK_REALTIME, timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&kept_lock);
	while (!strstr(kept, needle) && rc == 0)
		rc = pthread_cond_timedwait(&kept_grew, &kept_lock, &deadline);
	rc = strstr(kept, needle) ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&kept_lock);
	return rc;
}

static void *run_thread(void *arg)
{
	struct tf_server *ts = arg;

	ts->run_rc = pe_server_run(ts->srv);
	return NULL;
}

int tf_start(struct tf_server *ts, const struct pe_server_config *cfg)
{
	int rc;

	memset(ts, 0, sizeof *ts);
	rc = pe_server_create(&ts->srv, cfg);
	if (rc < 0) {
		ts->srv = NULL;
		return rc;
	}
	ts->port = pe_server_port(ts->srv);
	ts->run_rc = -EINPROGRESS;
	rc = pthread_create(&ts->thread, NULL, run_thread, ts);
	if (rc != 0) {
		pe_server_destroy(ts->srv);
		ts->srv = NULL;
		return -rc;
	}
	ts->started = 1;
	return 0;
}

void tf_request_stop(struct tf_server *ts, int now)
{
	if (!ts->srv)
		return;
	if (now)
		pe_server_stop_now(ts->srv);
	else
		pe_server_stop(ts->srv);
}

int tf_join(struct tf_server *ts, unsigned timeout_ms)
{
	int rc;

	if (!ts->started)
		return 0;
	rc = th_join(ts->thread, timeout_ms);
	if (rc == 0)
		ts->started = 0;
	return rc;
}

int tf_stop(struct tf_server *ts, int now, unsigned timeout_ms)
{
	int rc;

	if (!ts->srv)
		return 0;
	tf_request_stop(ts, now);
	rc = tf_join(ts, timeout_ms);
	if (rc < 0)
		return rc;
	pe_server_destroy(ts->srv);
	ts->srv = NULL;
	return 0;
}

struct pe_server_stats tf_stats(struct tf_server *ts)
{
	struct pe_server_stats s;

	memset(&s, 0, sizeof s);
	if (ts->srv)
		pe_server_stats(ts->srv, &s);
	return s;
}

int tf_wait_stat_at(struct tf_server *ts, size_t offset, uint64_t target, unsigned timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	const struct timespec pause = {.tv_sec = 0, .tv_nsec = 2 * 1000000L};

	for (;;) {
		struct pe_server_stats s = tf_stats(ts);
		uint64_t v;

		memcpy(&v, (const char *)&s + offset, sizeof v);
		if (v >= target)
			return 0;
		if (th_ms_left(deadline) == 0)
			return -ETIMEDOUT;
		nanosleep(&pause, NULL);
	}
}

int tf_fork_destroy_and_wait_closed(struct tf_server *ts, int client, struct th_event *release,
                                    unsigned timeout_ms)
{
	int alive[2]; /* the child lives until its end is closed */
	int rc, status;
	pid_t child;

	if (pipe(alive) < 0)
		return -errno;
	child = fork();
	if (child < 0) {
		rc = -errno;
		close(alive[0]);
		close(alive[1]);
		return rc;
	}
	if (child == 0) {
		char byte;

		alarm(timeout_ms / 1000 + 1);
		close(alive[1]);
		pe_server_destroy(ts->srv);
		_exit(read(alive[0], &byte, 1) == 0 ? 0 : 1);
	}
	close(alive[0]);
	th_event_add(release, 1);
	rc = th_wait_closed(client, timeout_ms);
	close(alive[1]);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return rc ? rc : -ECHILD;
	return rc;
}
