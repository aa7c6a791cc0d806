/*
 * helpers.h -- what every poolecho test needs and none should copy: clocks
 * and deadlines, a timed event to wait on, loopback clients with deadlines,
 * descriptor counting, and spawned programs with captured output.
 *
 * Nothing here links libpoolecho (tests/server_fixture.h has the in-process
 * server) and nothing here uses Criterion, so the plain-main stress driver
 * can use it too. Functions return 0 or a negative errno, like src/.
 */
#ifndef POOLECHO_TESTS_HELPERS_H
#define POOLECHO_TESTS_HELPERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>

/* ---- time ---------------------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
int64_t th_now_ms(void);

/* Milliseconds left until DEADLINE (a th_now_ms() value), never negative. */
int th_ms_left(int64_t deadline);

/* CLOCK's time TIMEOUT_MS from now, for a timed wait on that clock. */
struct timespec th_deadline_on(clockid_t clock, unsigned timeout_ms);

/* ---- a timed event: a counter threads raise and others wait on ---------- */

struct th_event {
	pthread_mutex_t lock;
	pthread_cond_t cond;  /* on CLOCK_MONOTONIC */
	long value;
};

void th_event_init(struct th_event *ev);
void th_event_destroy(struct th_event *ev);
void th_event_add(struct th_event *ev, long n);
long th_event_get(struct th_event *ev);

/* Wait until the value is >= TARGET: 0, or -ETIMEDOUT after TIMEOUT_MS. */
int th_event_wait(struct th_event *ev, long target, unsigned timeout_ms);

/* Join THREAD within TIMEOUT_MS: 0, or -ETIMEDOUT (the thread is left). */
int th_join(pthread_t thread, unsigned timeout_ms);
/* The same, with what the thread returned (PTHREAD_CANCELED, if cancelled)
 * in *RESULT (NULL: not wanted). */
int th_join_result(pthread_t thread, unsigned timeout_ms, void **result);

/* A thread that sleeps 10 ms at a time and keeps the longest it overslept:
 * how long this process went unscheduled while it ran. A loaded machine
 * holds a process up for over a second now and then (1.9 s seen on a
 * shared 2-CPU machine, a test beside it saturating both CPUs); a test whose
 * margin such a hold-up eats makes its run again only when one came. */
struct th_stall_watch {
	pthread_t thread;
	/* The thread's own, on the heap: a test an assertion ends (Criterion
	 * longjmps out of its frame) leaves the thread running there, not
	 * writing into a frame Criterion's teardown now uses. */
	struct th_watch_state *state;
};

/* Start watching: 0, or a negative errno. */
int th_stall_watch_start(struct th_stall_watch *w);

/* Stop watching; the longest hold-up seen, in ms (-1 if the thread would not end).
 * A test that makes a run again says so with cr_log_info: Criterion 2.4.1
 * exits 1 after any cr_log_warn, even when every test passed. */
int64_t th_stall_watch_stop(struct th_stall_watch *w);

/* The same for another process (a daemon this test started): how long,
 * in ms, it was held up while watched -- stopped (SIGSTOP), frozen (cgroup
 * v1's freezer; v2's cgroup.freeze leaves its tasks 'S', unseen), plus the
 * most time one of its threads spent runnable with no CPU (run_delay in its
 * schedstat: summed over every wait, so an upper bound) -- however busy
 * this process was. A test judging another process's timing to within a
 * second cannot tell it slow from held up. */
struct th_hold_watch {
	pthread_t thread;
	struct th_watch_state *state; /* the thread's own, as th_stall_watch's */
};

/* Start watching PID: 0, or a negative errno. */
int th_hold_watch_start(struct th_hold_watch *w, pid_t pid);

/* Stop watching; PID's hold-ups meanwhile in ms (-1 if the thread would not end). */
int64_t th_hold_watch_stop(struct th_hold_watch *w);

/* ---- loopback clients ---------------------------------------------------- */

/* The local port FD is bound to (IPv4 or IPv6), or a negative errno. */
int th_local_port(int fd);

/* Connect to 127.0.0.1:PORT with SO_RCVTIMEO/SO_SNDTIMEO of TIMEOUT_MS.
 * Returns the descriptor or a negative errno. */
int th_connect(unsigned port, unsigned timeout_ms);

/* Write all LEN bytes before TIMEOUT_MS run out (poll + non-blocking send,
 * never SIGPIPE). 0, -ETIMEDOUT, or the send errno. */
int th_write_all(int fd, const void *buf, size_t len, unsigned timeout_ms);

/* Read exactly LEN bytes before TIMEOUT_MS run out. Returns LEN, fewer
 * when the peer closed first, -ETIMEDOUT, or the read errno. */
ssize_t th_read_exact(int fd, void *buf, size_t len, unsigned timeout_ms);

/* Wait for the peer to close: 0 on end of stream, -ECONNRESET on a reset,
 * -EPROTO when data arrived instead, -ETIMEDOUT. */
int th_wait_eof(int fd, unsigned timeout_ms);

/* Like th_wait_eof but any close counts: 0 on end of stream or reset. */
int th_wait_closed(int fd, unsigned timeout_ms);

/* SO_LINGER 0 then close(): the peer sees a reset, not a FIN. */
void th_close_reset(int fd);

/* Fill BUF with a pattern that differs at every offset of a long stream
 * (so a dropped or repeated chunk is caught); SEED varies it per client. */
void th_fill_pattern(unsigned char *buf, size_t len, size_t offset, unsigned seed);

/* The longest time between two marks (a thread's reads, say): how long
 * that thread alone may have been held up, which a watching thread that
 * runs on cannot see. */
struct th_gaps {
	int64_t last_ms, longest_ms;
};

/* Start counting from now. */
void th_gaps_start(struct th_gaps *g);

/* Mark now. */
void th_gaps_mark(struct th_gaps *g);

/* How long a client kept the server waiting for its next bytes. The
 * server's idle wait begins after it read and echoed a send's bytes, so
 * no earlier than that send began (or the connect, for the first wait),
 * and ends when the next send's bytes (or the shutdown's FIN) arrive, so
 * no later than that call returned. A client the idle timeout closed has
 * had one such span at least the timeout long. A wait for an echo counts
 * only up to the next send: a server echoes what it read before it waits
 * again, so one that loses an echo and then times out the client waiting
 * for it is caught, not excused. */
struct th_silence {
	int64_t since_ms;   /* the send the server may be waiting after began */
	int64_t began_ms;   /* the send under way began */
	int64_t longest_ms;
};

/* How much shorter than a span the server's idle timeout may close it: a
 * kernel's receive timeout may end up to a clock tick (10 ms at HZ=100)
 * early; the rest is for reading the clocks. */
#define TH_TIMEOUT_SLACK_MS 50

/* Start counting (before the connect: the server's first wait comes after). */
void th_silence_start(struct th_silence *s);

/* Call around each send, write or shutdown(2): _begins before it and
 * _ended once it returned, whatever it returned, but for a write that
 * timed out blocked on full buffers: the server was not waiting then. */
void th_silence_send_begins(struct th_silence *s);
void th_silence_send_ended(struct th_silence *s);

/* Round trip LEN pattern bytes in chunks and compare: 0 or a negative errno
 * (-EBADMSG when the echo differs, -EPROTO when it ended early). */
int th_echo_check(int fd, size_t len, unsigned seed, unsigned timeout_ms);

/* th_echo_check timing each send in SILENCE (when not NULL). */
int th_echo_check_marked(int fd, size_t len, unsigned seed, unsigned timeout_ms,
                         struct th_silence *silence);

/* ---- descriptors ---------------------------------------------------------- */

/* Open descriptors of this process (/proc/self/fd, not counting the one
 * used to read it), or a negative errno. */
int th_count_fds(void);

/* Write to FD, a non-blocking pipe's write end, until it is full: the
 * bytes written, or a negative errno. */
ssize_t th_fill_pipe(int fd);

/* A pipe into FDS, both ends close-on-exec, filled by th_fill_pipe, its
 * write end blocking again: a program given it as its output finds no
 * room until the read end is drained. The bytes of filler it holds, or a
 * negative errno. */
ssize_t th_pipe_full(int fds[2]);

/* Read FD to its end, or for TIMEOUT_MS, into OUT (CAP bytes, NUL-ended);
 * close it. Returns the count. */
size_t th_read_to_end(int fd, char *out, size_t cap, unsigned timeout_ms);

/* Resident memory of this process in KiB (VmRSS), or -1 where /proc has none. */
long th_resident_kib(void);

/* The calling thread's kernel ID (Linux), for /proc/self/task/ID; 0 elsewhere. */
pid_t th_gettid(void);

/* Field FIELD (numbered as in proc(5), 3 and up) of /proc/PID/task/TID/stat,
 * copied into OUT; 0, or -1 if the thread is gone or the field missing. */
int th_task_stat_field(pid_t pid, pid_t tid, int field, char *out, size_t len);

/* The scheduler state of thread TID of this process ('R', 'S', ...), or 0. */
char th_thread_state(pid_t tid);

/* Wait up to TIMEOUT_MS for thread TID to sleep; its last state ('S' if it did). */
char th_wait_asleep(pid_t tid, unsigned timeout_ms);

/* Wait up to TIMEOUT_MS for a thread of this process to sleep inside system
 * call NR (a SYS_ number, from /proc/self/task/ID/syscall): its ID, or 0 if
 * none did. For tests that need a worker blocked in one particular call. */
pid_t th_wait_asleep_in_syscall(long nr, unsigned timeout_ms);

/* Wait until the main thread of process PID is in system call NR (from
 * /proc/PID/syscall) with ARG0 as its first argument (any when negative),
 * and, unless COMM is NULL, runs the program named COMM (/proc/PID/comm):
 * 0, or -1 after TIMEOUT_MS. */
int th_wait_in_syscall(pid_t pid, const char *comm, long nr, long arg0, unsigned timeout_ms);

/* The call glibc's poll(3) makes: poll(2) where the kernel has it, ppoll(2)
 * where that is all there is (arm64). */
#ifdef SYS_poll
#define TH_SYS_POLL SYS_poll
#else
#define TH_SYS_POLL SYS_ppoll
#endif

/* How many threads this process has (/proc/self/task), or a negative errno. */
int th_count_threads(void);

/* How many of this process's threads the kernel runs with POLICY
 * (sched_getscheduler(2) of each in /proc/self/task), or a negative errno. */
int th_count_threads_with_policy(int policy);

/* How many of this process's threads block signal SIG (SigBlk in
 * /proc/self/task/N/status), or a negative errno. */
int th_count_threads_blocking(int sig);

/* ---- sanitizers ----------------------------------------------------------- */

/* TH_HAVE_LSAN: built with LeakSanitizer (ASan's, or LSan alone). gcc says
 * so with __SANITIZE_ADDRESS__; clang only with __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define TH_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define TH_HAVE_LSAN 1
#endif
#endif

/* Under ASan/LSan: run a leak check now and return its verdict (non-zero
 * means leaks were reported on stderr). Without LSan: 0. */
int th_leak_check(void);

/* For Criterion tests: end a test with this so leaks fail it (under ASan
 * the normal leak report comes after the test's verdict). */
#define TH_ASSERT_NO_LEAKS() \
	cr_assert_eq(th_leak_check(), 0, "LeakSanitizer reported leaks (see the report above)")

/* ---- spawned programs ---------------------------------------------------- */

struct th_buf {
	char *data;  /* NUL-terminated */
	size_t len, cap;
	int fd;      /* read end of the pipe, -1 at end of stream */
};

struct th_proc {
	pid_t pid;      /* 0 once reaped */
	int pidfd;      /* -1 when the kernel has no pidfd_open */
	int status;     /* waitpid status, valid once reaped */
	struct th_buf out, err;
};

/* In a child just forked from PARENT: be killed when the thread that
 * forked it ends. A test killed by its timeout, or crashing, runs no fini,
 * and a daemon it started would run on. 0, or -1 if PARENT is gone. */
int th_die_with_parent(pid_t parent);

/* Start ARGV[0] (a path) with ARGV, stdin from /dev/null, stdout and
 * stderr into pipes; the program is killed if the calling thread ends
 * first. 0 or a negative errno. */
int th_proc_spawn(struct th_proc *p, const char *const argv[]);

/* The same with stderr on a pseudo-terminal in raw mode, read from its
 * master as from the pipe. */
int th_proc_spawn_tty(struct th_proc *p, const char *const argv[]);
/* The same with the terminal's settings as a login leaves them (output
 * processing on: ONLCR makes each newline two bytes). */
int th_proc_spawn_cooked_tty(struct th_proc *p, const char *const argv[]);

/* The same as th_proc_spawn with $JOURNAL_STREAM naming the stderr pipe's
 * device and inode, as systemd sets it when stderr is the journal. */
int th_proc_spawn_journal(struct th_proc *p, const char *const argv[]);

/* The same with stderr a stream socket, as systemd's journal gives it,
 * with a send buffer of a few kilobytes. */
int th_proc_spawn_journal_socket(struct th_proc *p, const char *const argv[]);

/* What a service manager passes in systemd's socket activation: FD
 * becomes descriptor 3 (TH_LISTEN_FD), closed there when FD is -1;
 * $LISTEN_FDS is FDS, and $LISTEN_PID the program's own process ID, or PID
 * when it is not 0. */
#define TH_LISTEN_FD 3
struct th_listen_fds {
	int fd;
	const char *fds;
	pid_t pid;
};

/* The same as th_proc_spawn with the socket and variables of LISTEN. */
int th_proc_spawn_activated(struct th_proc *p, const char *const argv[],
                            const struct th_listen_fds *listen);

/* The same as th_proc_spawn with IN_FD as standard input. */
int th_proc_spawn_stdin(struct th_proc *p, const char *const argv[], int in_fd);

/* Read whatever the program wrote, waiting at most TIMEOUT_MS for
 * something: 0, -ETIMEDOUT, or -EPIPE when both pipes are at end. */
int th_proc_pump(struct th_proc *p, unsigned timeout_ms);

/* Pump until stderr (from byte FROM on) contains NEEDLE: 0, -ETIMEDOUT,
 * or -EPIPE when the program closed stderr first. */
int th_proc_wait_stderr(struct th_proc *p, size_t from, const char *needle, unsigned timeout_ms);

/* Wait for the readiness line "listening on HOST:PORT" and return PORT
 * (1..65535), or a negative errno. */
int th_proc_wait_ready(struct th_proc *p, unsigned timeout_ms);

int th_proc_signal(struct th_proc *p, int sig);

/* Wait for the program to exit, pumping its output meanwhile: 0 once
 * reaped (see th_proc_exit_code), -ETIMEDOUT otherwise. */
int th_proc_wait_exit(struct th_proc *p, unsigned timeout_ms);

/* The exit status once reaped: 0..255, 128+N for signal N, -1 if not reaped. */
int th_proc_exit_code(const struct th_proc *p);

/* Spawn, wait for exit within TIMEOUT_MS and return the exit code (or a
 * negative errno); the output stays in P until th_proc_cleanup. */
int th_proc_run(struct th_proc *p, const char *const argv[], unsigned timeout_ms);

/* The first sanitizer report marker found in the program's stderr, or NULL. */
const char *th_proc_sanitizer_report(const struct th_proc *p);

/* Kill (SIGKILL, only this PID) a program still running, reap it, close the
 * pipes and free the buffers. Safe to call twice. */
void th_proc_cleanup(struct th_proc *p);

/* ---- cgroups --------------------------------------------------------------- */

/* Make a cgroup named for this process (and a count) in the hierarchy of
 * CONTROLLER ("pids", "cpu"): v1's own, or the v2 tree when its root
 * delegates CONTROLLER. Its path into DIR (SIZE bytes). 0, or a negative
 * errno: why v1's cannot be written (-EACCES: not root; -ENOENT: no such
 * hierarchy) when v2's does not delegate CONTROLLER either. Cgroups that
 * tests of processes now gone left (killed at a timeout) are removed. */
int th_cgroup_make(const char *controller, char *dir, size_t size);

/* Write VALUE (and a newline) to the file NAME of the cgroup DIR. */
int th_cgroup_set(const char *dir, const char *name, const char *value);

/* Give the cgroup DIR (of the "cpu" controller) a CPU quota of QUOTA_US
 * every 100 ms: v2's cpu.max, or v1's cpu.cfs_quota_us and period. */
int th_cgroup_set_cpu_quota(const char *dir, unsigned quota_us);

/* Remove the cgroup DIR, waiting up to 10 s for the processes moved into
 * it to leave (the last thread of one may leave a moment after its exit
 * is seen). */
int th_cgroup_remove(const char *dir);

/* ---- text ------------------------------------------------------------------ */

/* Whether TEXT is whole UTF-8: every lead byte has its continuation bytes
 * and none stands alone, so no character was cut (systemd's journalctl
 * shows a message that is not as "[blob data]"). Overlong forms are not
 * looked for. */
bool th_utf8_whole(const char *text);

/* ---- documentation ------------------------------------------------------- */

/* Check that every long option HELP names ("--word") appears in the file
 * $TOP_SRCDIR/RELPATH, read as plain text or as a man page (its "\\-"
 * escapes and font changes are ignored). 0 when all do; -ENOENT when
 * the option is missing, with its name in MISSING; another negative errno
 * when the file cannot be read. */
int th_doc_lists_options(const char *help, const char *relpath, char *missing, size_t size);

/* 1 when $TOP_SRCDIR/RELPATH, read as th_doc_lists_options reads it,
 * contains TEXT; 0 when not; a negative errno when it cannot be read. */
int th_doc_mentions(const char *relpath, const char *text);

/* The text of the man page entry ".TP" / ".B HEAD" in $TOP_SRCDIR/RELPATH,
 * up to the next .TP, .PP or .SS, escapes dropped: malloc'd, or NULL with
 * errno set (ENOENT: no such entry). */
char *th_doc_entry(const char *relpath, const char *head);

/* 1 when the entry documenting OPTION ("--workers") in TEXT contains WHAT
 * as a whole (no digit or '.' before it, no letter or digit after); 0 when
 * not; -ENOENT when no entry names OPTION. An entry runs from the line that
 * names the option at the left margin (--help, README's copy of it), or in
 * a man page (as read by th_doc_lists_options) the line after ".TP", to
 * the next such line, a blank line, or a ".TP", ".SH" or ".SS". */
int th_entry_mentions(const char *text, const char *option, const char *what);

/* th_entry_mentions over the file $TOP_SRCDIR/RELPATH, or a negative errno
 * when it cannot be read. */
int th_doc_entry_mentions(const char *relpath, const char *option, const char *what);

/* 0 when RANGE stands in OPTION's entry in HELP (--help's text) and in
 * each of the NDOCS files DOCS (th_entry_mentions); otherwise -1, with the
 * first place that lacks it in WHY. */
int th_range_documented(const char *help, const char *option, const char *range,
                        const char *const *docs, size_t ndocs, char *why, size_t size);

/* The length of TEXT's longest line, and in *LINE (when not NULL) where it
 * starts: --help must fit an 80-column terminal. */
size_t th_widest_line(const char *text, const char **line);

/* Whether the program at PATH was built with ThreadSanitizer (its
 * runtime's entry point is in the binary): 1 or 0, or -1 when it cannot
 * be read. */
int th_built_with_tsan(const char *path);

#endif /* POOLECHO_TESTS_HELPERS_H */
