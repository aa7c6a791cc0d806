/*
 * blocking_floor.c -- a plain blocking thread-per-connection echo server,
 * the bare design with nothing of poolechod's: N threads, each accept(2)ing
 * on one shared listener and echoing its connection with blocking
 * recv(2)/send(2) until the client closes, then accepting again. No
 * queue, no options, no counters, no busy polling, no idle timeout. Served
 * beside poolechod and ref_epoll (bench/run and bench/perfstat, server name
 * blocking_floor), it tells what the design costs from what poolechod adds
 * to it.
 *
 * Usage: blocking_floor N [batch]   (N from 1 to 100000)
 * Listens on 127.0.0.1, a free port, backlog 4096, with TCP_NODELAY on the
 * listener (accepted sockets inherit it, as in poolechod). With "batch"
 * the threads run SCHED_BATCH, as poolechod's workers do. Once every
 * thread is started, prints the port on stdout and "listening on
 * 127.0.0.1:PORT" on stderr, as ref_epoll -p 0 does; SIGTERM or SIGINT
 * ends it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_SIZE (128 * 1024) /* poolechod's defaults */
#define STACK_SIZE (128 * 1024)

static int listener;

static void die(const char *what)
{
	fprintf(stderr, "blocking_floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Echo everything until the client closes or fails. */
static void echo(int fd, char *buf)
{
	ssize_t n;

	while ((n = recv(fd, buf, BUFFER_SIZE, 0)) > 0 || (n < 0 && errno == EINTR)) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return;
			off += w;
		}
	}
}

static void *worker(void *arg)
{
	char *buf = malloc(BUFFER_SIZE);

	(void)arg;
	if (!buf)
		die("buffer");
	for (;;) {
		int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				usleep(100000);  /* out of something another close frees */
				continue;
			}
			if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK || errno == EFAULT)
				die("accept");
			continue;  /* EINTR, ECONNABORTED, EPROTO, network errors: the next one */
		}
		echo(fd, buf);
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int args_ok = argc == 2 || (argc == 3 && strcmp(argv[2], "batch") == 0);
	char *end = NULL;
	int digits = args_ok && isdigit((unsigned char)argv[1][0]);
	unsigned long n = digits ? strtoul(argv[1], &end, 10) : 0;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	pthread_attr_t attr;
	int one = 1, rc;

	if (n == 0 || n > 100000 || *end != '\0') {
		fprintf(stderr, "usage: blocking_floor N [batch]  (N: threads, 1 to 100000)\n");
		return 2;
	}
	if (argc == 3) {
		struct sched_param sp = {.sched_priority = 0};

		if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
			die("SCHED_BATCH");
	}
	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0)
		die("socket");
	if (setsockopt(listener, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
		die("TCP_NODELAY");
	if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0)
		die("bind 127.0.0.1");
	if (listen(listener, 4096) != 0)
		die("listen");
	if (getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
		die("getsockname");
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, STACK_SIZE);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (unsigned long i = 0; i < n; i++) {
		pthread_t t;

		if ((rc = pthread_create(&t, &attr, worker, NULL)) != 0) {
			errno = rc;
			die("pthread_create");
		}
	}
	printf("%u\n", ntohs(addr.sin_port));
	fflush(stdout);
	fprintf(stderr, "listening on 127.0.0.1:%u\n", ntohs(addr.sin_port));
	pause();  /* SIGTERM and SIGINT end the process by default */
	return 0;
}
