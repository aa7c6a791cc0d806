/*
 * test_stop_races.c -- a stop that lands between two steps of the server,
 * made to land there every time: pe_queue_try_push is wrapped at link time
 * (-Wl,--wrap=pe_queue_try_push), so the accept loop can be stopped after
 * it accepted a client and before it queues it; pe_queue_close, so the
 * end of the grace can let a worker take a queued client before the stop
 * empties the queue itself; and pe_queue_length, so that a client is
 * accepted and queued while a stats line is being read.
 */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <poolecho/queue.h>
#include <poolecho/server.h>

#include "helpers.h"
#include "server_fixture.h"

#define IO_MS 10000

TestSuite(stop_races, .timeout = 30);

/* ---- the wrapped pe_queue_try_push --------------------------------------- */

int __real_pe_queue_try_push(pe_queue *q, const void *item);
int __wrap_pe_queue_try_push(pe_queue *q, const void *item);

/* When set, the next push first stops this server, as a signal arriving
 * just after accept(2) returned would. */
static _Atomic(pe_server *) stop_before_push;

/* 1: the next push says 2 (the accept loop is held there) and waits, up
 * to IO_MS, for the test to set 3: meanwhile a client can come and go in
 * the backlog. 0: none waits. */
static atomic_int hold_push;

int __wrap_pe_queue_try_push(pe_queue *q, const void *item)
{
	pe_server *srv = atomic_exchange(&stop_before_push, NULL);
	int armed = 1;

	if (srv)
		pe_server_stop(srv);
	if (atomic_compare_exchange_strong(&hold_push, &armed, 2)) {
		int64_t deadline = th_now_ms() + IO_MS;

		while (atomic_load(&hold_push) == 2 && th_ms_left(deadline) > 0)
			usleep(1000);
	}
	return __real_pe_queue_try_push(q, item);
}

/* ---- the wrapped pe_queue_close ------------------------------------------ */

void __real_pe_queue_close(pe_queue *q);
void __wrap_pe_queue_close(pe_queue *q);

/* Calls to let through before the one that first waits, up to IO_MS, for
 * the workers to empty the queue; -1: none waits. */
static atomic_int closes_before_drain = -1;

void __wrap_pe_queue_close(pe_queue *q)
{
	if (atomic_fetch_sub(&closes_before_drain, 1) == 0) {
		int64_t deadline = th_now_ms() + IO_MS;

		while (pe_queue_length(q) > 0 && th_ms_left(deadline) > 0)
			usleep(1000);
	}
	__real_pe_queue_close(q);
}

/* ---- the tests ----------------------------------------------------------- */

/* The accept loop took the client, then found the queue closed by the
 * stop: the client is closed, counted as dropped, and said at -v as every
 * other connection a stop closes unserved is. */
Test(stop_races, a_client_accepted_as_the_queue_closes_is_logged_as_dropped)
{
	struct pe_server_config cfg;
	struct pe_server_stats st;
	struct tf_server ts;
	char want[96];
	int fds = th_count_fds(), fd, rc;

	tf_config(&cfg, 1, 1);
	cfg.log = tf_log_keep;
	cfg.log_level = PE_LOG_DEBUG;
	cr_assert_eq(tf_start(&ts, &cfg), 0);
	atomic_store(&stop_before_push, ts.srv);
	fd = th_connect(ts.port, IO_MS);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	snprintf(want, sizeof want, "closed 127.0.0.1:%d: dropped unserved, the server stopped",
	         th_local_port(fd));

	/* The stop ends the run without the grace: nothing was queued. */
	cr_assert_eq(tf_join(&ts, IO_MS), 0, "the server did not stop");
	cr_expect_null(atomic_load(&stop_before_push), "the accept loop never queued the client");
	rc = th_wait_closed(fd, IO_MS);
	cr_expect_eq(rc, 0, "the client was not closed: %s", strerror(-rc));
	close(fd);
	st = tf_stats(&ts);
	cr_expect_eq(st.accepted, 1);
	cr_expect_eq(st.dropped, 1, "dropped=%llu", (unsigned long long)st.dropped);
	cr_expect_eq(st.served, 0);
	cr_expect(strstr(tf_log_text(), want), "no '%s' in the log:\n%s", want, tf_log_text());
	cr_assert_eq(tf_stop(&ts, 1, IO_MS), 0);
	cr_expect_eq(th_count_fds(), fds, "descriptors leaked: %d open before, %d after", fds,
	             th_count_fds());
}

/* Start TS with CFG (one worker, a queue of one) and connect two clients
 * in FD: the first served, the second queued behind it. */
static void start_one_served_one_queued(struct tf_server *ts, struct pe_server_config *cfg,
                                        int fd[2])
{
	cr_assert_eq(tf_start(ts, cfg), 0);
	for (int i = 0; i < 2; i++) {
		fd[i] = th_connect(ts->port, IO_MS);
		cr_assert_geq(fd[i], 0, "connect: %s", strerror(-fd[i]));
	}
	cr_assert_eq(th_echo_check(fd[0], 100, 1, IO_MS), 0, "the first client was not served");
	cr_assert_eq(tf_wait_stat(ts, queued, 1, IO_MS), 0, "the second client was not queued");
}

/* At the end of the grace the stop shuts down the connections being
 * served; a worker so freed may take a queued client and close it
 * unserved before the stop empties the queue. The count the stop logs
 * must still take in every connection it closed, the stats count it as
 * dropped, and -v says so, as for every other close. */
Test(stop_races, the_stop_counts_a_queued_client_a_freed_worker_dropped)
{
	struct pe_server_config cfg;
	struct pe_server_stats st;
	struct tf_server ts;
	int fd[2], rc; /* the client served, the client queued */
	const char *log;

	tf_config(&cfg, 1, 1);
	cfg.log = tf_log_keep;
	cfg.log_level = PE_LOG_DEBUG;
	start_one_served_one_queued(&ts, &cfg, fd);

	/* The first close is the stop's own; the second, after the shutdowns,
	 * is where the stop goes on to empty the queue. */
	atomic_store(&closes_before_drain, 1);
	tf_request_stop(&ts, 1);
	cr_assert_eq(tf_join(&ts, IO_MS), 0, "the server did not stop");
	st = tf_stats(&ts);
	cr_assert_eq(tf_stop(&ts, 1, IO_MS), 0);
	cr_expect_lt(atomic_load(&closes_before_drain), 0, "the stop closed the queue only once");
	log = tf_log_text();
	cr_expect(strstr(log, "stopping: closed 2 connection(s) still open"),
	          "the stop closed 2 connections; the log said:\n%s", log);
	cr_expect_eq(st.served, 1, "served=%llu", (unsigned long long)st.served);
	cr_expect_eq(st.dropped, 1, "dropped=%llu", (unsigned long long)st.dropped);
	cr_expect(strstr(log, ": dropped unserved, the server stopped") &&
	          !strstr(strstr(log, ": dropped unserved") + 1, ": dropped unserved"),
	          "not one 'dropped unserved' line; the log said:\n%s", log);
	for (int i = 0; i < 2; i++) {
		rc = th_wait_closed(fd[i], IO_MS);
		cr_expect_eq(rc, 0, "client %d was not closed: %s", i, strerror(-rc));
		close(fd[i]);
	}
}

/* The thread that drops a client unserved (a worker, the accept loop or the
 * stop), held in its "dropped unserved" line until the test lets it go;
 * with hold_stopped_worker set, a worker that says the stop closed its
 * connection is held until then too, and takes no queued client
 * meanwhile. Every line is kept. */
static struct th_event drop_held, drop_released;
static atomic_int hold_stopped_worker;

static void hold_drop(void *ctx, enum pe_log_level level, const char *message)
{
	tf_log_keep(ctx, level, message);
	if (strstr(message, ": dropped unserved") && th_event_get(&drop_held) == 0) {
		th_event_add(&drop_held, 1);
		th_event_wait(&drop_released, 1, IO_MS);
	} else if (atomic_load(&hold_stopped_worker) && strstr(message, ": the server stopped")) {
		th_event_wait(&drop_released, 1, IO_MS);
	}
}

/* Once a thread is held in its "dropped unserved" line for CLIENT (WHO,
 * for the messages): a child forked now closes its copy of the client in
 * pe_server_destroy(), as of one being echoed: kept, the thread's close
 * ends nothing, and the client waits for the child to exit or exec. */
static void expect_forked_child_to_close(struct tf_server *ts, int client, const char *who)
{
	int rc;

	cr_assert_eq(th_event_wait(&drop_held, 1, IO_MS), 0, "%s was not dropped unserved", who);
	rc = tf_fork_destroy_and_wait_closed(ts, client, &drop_released, IO_MS);
	cr_expect_eq(rc, 0, "%s was not closed while the forked child lived: %s", who,
	             strerror(-rc));
}

/* CFG for a server at -v, its lines held by hold_drop, with one worker and
 * a queue of one. */
static void config_holding_drops(struct pe_server_config *cfg)
{
	th_event_init(&drop_held);
	th_event_init(&drop_released);
	tf_config(cfg, 1, 1);
	cfg->log = hold_drop;
	cfg->log_level = PE_LOG_DEBUG;
}

/* Stop TS, which held two clients in FD, and see both closed. */
static void stop_and_expect_both_closed(struct tf_server *ts, int fd[2])
{
	cr_assert_eq(tf_join(ts, IO_MS), 0, "the server did not stop");
	cr_assert_eq(tf_stop(ts, 1, IO_MS), 0);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(th_wait_closed(fd[i], IO_MS), 0, "client %d was not closed", i);
		close(fd[i]);
	}
	th_event_destroy(&drop_held);
	th_event_destroy(&drop_released);
}

/* A child forked while a worker says it drops a queued client unserved (the
 * worker freed by the hard stop takes that client before the stop does)
 * closes its copy of the client. */
Test(stop_races, a_forked_child_closes_its_copy_of_a_client_being_dropped)
{
	struct pe_server_config cfg;
	struct tf_server ts;
	int fd[2]; /* the client served, the client queued */

	config_holding_drops(&cfg);
	start_one_served_one_queued(&ts, &cfg, fd);
	atomic_store(&closes_before_drain, 1); /* the freed worker takes the queued client */
	tf_request_stop(&ts, 1);
	expect_forked_child_to_close(&ts, fd[1], "the queued client");
	stop_and_expect_both_closed(&ts, fd);
}

/* The same where the stop itself empties the queue, the worker held in its
 * own close: the run thread says the drop before it closes, at -v, and a
 * child forked during that line kept the client open. */
Test(stop_races, a_forked_child_closes_its_copy_of_a_client_the_stop_drops)
{
	struct pe_server_config cfg;
	struct tf_server ts;
	int fd[2]; /* the client served, the client queued */

	config_holding_drops(&cfg);
	start_one_served_one_queued(&ts, &cfg, fd);
	atomic_store(&hold_stopped_worker, 1);
	tf_request_stop(&ts, 1);
	expect_forked_child_to_close(&ts, fd[1], "the queued client");
	stop_and_expect_both_closed(&ts, fd);
}

/* The same where the accept loop finds the queue closed by the stop as it
 * hands a client over, and drops it: said at -v before its close too. */
Test(stop_races, a_forked_child_closes_its_copy_of_a_client_the_accept_loop_drops)
{
	struct pe_server_config cfg;
	struct tf_server ts;
	int fd;

	config_holding_drops(&cfg);
	cr_assert_eq(tf_start(&ts, &cfg), 0);
	atomic_store(&stop_before_push, ts.srv);
	fd = th_connect(ts.port, IO_MS);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	expect_forked_child_to_close(&ts, fd, "the client just accepted");
	close(fd);
	cr_assert_eq(tf_join(&ts, IO_MS), 0, "the server did not stop");
	cr_assert_eq(tf_stop(&ts, 1, IO_MS), 0);
	th_event_destroy(&drop_held);
	th_event_destroy(&drop_released);
}

/* ---- the wrapped pe_queue_length ----------------------------------------- */

size_t __real_pe_queue_length(pe_queue *q);
size_t __wrap_pe_queue_length(pe_queue *q);

/* When set, the next read of the queue's length (a stats line's) first
 * connects a client to this port and waits, up to IO_MS, until it is
 * queued: a client accepted while a stats line is being read. */
static atomic_uint connect_before_length;
static int connected_fd = -1;

size_t __wrap_pe_queue_length(pe_queue *q)
{
	unsigned port = atomic_exchange(&connect_before_length, 0);

	if (port) {
		int64_t deadline = th_now_ms() + IO_MS;

		connected_fd = th_connect(port, IO_MS);
		while (connected_fd >= 0 && __real_pe_queue_length(q) == 0 &&
		       th_ms_left(deadline) > 0)
			usleep(1000);
	}
	return __real_pe_queue_length(q);
}

/* A stats line is read while clients come: each connection it counts
 * (served, active, queued, rejected or dropped) must be one it counts as
 * accepted too, or a SIGUSR1 line shows more connections than were ever
 * accepted. */
Test(stop_races, a_stats_line_never_counts_more_connections_than_accepted)
{
	struct pe_server_config cfg;
	struct pe_server_stats st;
	struct tf_server ts;
	uint64_t placed;
	int fd;

	tf_config(&cfg, 1, 1);
	cr_assert_eq(tf_start(&ts, &cfg), 0);
	fd = th_connect(ts.port, IO_MS);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(th_echo_check(fd, 100, 1, IO_MS), 0, "the first client was not served");

	atomic_store(&connect_before_length, ts.port);
	st = tf_stats(&ts);
	cr_assert_geq(connected_fd, 0, "connect: %s", strerror(-connected_fd));
	cr_expect_eq(st.queued, 1, "the second client was not queued as the line was read");
	placed = st.served + st.active + st.queued + st.rejected + st.dropped;
	cr_expect_leq(placed, st.accepted, "a stats line counted %llu connections (served=%llu "
	              "active=%llu queued=%llu) of accepted=%llu",
	              (unsigned long long)placed, (unsigned long long)st.served,
	              (unsigned long long)st.active, (unsigned long long)st.queued,
	              (unsigned long long)st.accepted);
	close(fd);
	close(connected_fd);
	cr_assert_eq(tf_stop(&ts, 1, IO_MS), 0);
}

/* Wait until the connection from 127.0.0.1:CLIENT_PORT to SERVER_PORT has
 * left /proc/net/tcp: its reset was taken, and the socket waiting in the
 * backlog is closed. 0, -ETIMEDOUT, or a negative errno. */
static int wait_gone_from_proc_net_tcp(unsigned server_port, unsigned client_port,
                                       unsigned timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;

	for (;; poll(NULL, 0, 1)) {
		FILE *f = fopen("/proc/net/tcp", "r");
		char row[256];
		unsigned lport, rport;
		bool seen = false;

		if (!f)
			return -errno;
		while (fgets(row, sizeof row, f))
			if (sscanf(row, " %*d: %*8s:%x %*8s:%x", &lport, &rport) == 2 &&
			    lport == server_port && rport == client_port)
				seen = true;
		fclose(f);
		if (!seen)
			return 0;
		if (th_ms_left(deadline) == 0)
			return -ETIMEDOUT;
	}
}

/* With every worker busy and the queue full (PE_OVERFLOW_REJECT), a client
 * that connected and reset before the accept loop took it is refused with
 * a warning that must still name it: below -v the address was asked of the
 * socket with getpeername(2), which a reset socket no longer answers, and
 * the warning said "(unknown peer: Transport endpoint is not connected)". */
Test(stop_races, a_queue_full_warning_names_a_client_that_reset_in_the_backlog)
{
	struct pe_server_config cfg;
	struct tf_server ts;
	struct linger reset = {.l_onoff = 1, .l_linger = 0};
	int held, queued, over, over_port;
	int64_t deadline;
	char want[96];

	tf_config(&cfg, 1, 1);
	cfg.overflow = PE_OVERFLOW_REJECT;
	cfg.idle_timeout_ms = 0;
	cfg.log = tf_log_keep;
	cfg.log_level = PE_LOG_INFO; /* below -v: the queue's items hold no address */
	cr_assert_eq(tf_start(&ts, &cfg), 0);
	held = th_connect(ts.port, IO_MS);
	cr_assert_geq(held, 0);
	cr_assert_eq(th_echo_check(held, 10, 1, IO_MS), 0, "the first client was not served");

	/* The accept loop is held pushing the second client, the queue's one. */
	atomic_store(&hold_push, 1);
	queued = th_connect(ts.port, IO_MS);
	cr_assert_geq(queued, 0);
	deadline = th_now_ms() + IO_MS;
	while (atomic_load(&hold_push) != 2 && th_ms_left(deadline) > 0)
		usleep(1000);
	cr_assert_eq(atomic_load(&hold_push), 2, "the accept loop never pushed the second client");

	/* The third connects and resets while it waits in the backlog. */
	over = th_connect(ts.port, IO_MS);
	cr_assert_geq(over, 0);
	over_port = th_local_port(over);
	snprintf(want, sizeof want, "rejected 127.0.0.1:%d: the queue is full", over_port);
	cr_assert_eq(setsockopt(over, SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
	close(over);
	cr_assert_eq(wait_gone_from_proc_net_tcp(ts.port, (unsigned)over_port, IO_MS), 0,
	             "the server's side of the reset connection never closed");
	atomic_store(&hold_push, 3);

	cr_assert_eq(tf_wait_stat(&ts, rejected, 1, IO_MS), 0, "the third client was not rejected");
	close(held);
	close(queued);
	cr_assert_eq(tf_stop(&ts, 1, IO_MS), 0);
	cr_expect(strstr(tf_log_text(), want), "no '%s' in the log:\n%s", want, tf_log_text());
}
