/*
 * embed_example.c -- an echo server inside a program of its own, the
 * whole of README's "Using libpoolecho": serve on 127.0.0.1 (a free port),
 * echo a message through it, stop, print the stats. Exits 0 when the echo
 * came back intact. Build it against an installed libpoolecho:
 *
 *     cc -std=c11 embed_example.c $(pkg-config --cflags --libs libpoolecho)
 *
 * .ci/run builds and runs it against a staged `make install`.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h> /* pthread_sigmask */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <poolecho/server.h>
#include <poolecho/version.h>

/* Send MSG to the server on PORT and check that it comes back whole. */
static int echo_once(unsigned port, const char *msg)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	size_t len = strlen(msg), got = 0;
	char back[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
		perror("embed_example: echo");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (got < len) {
		ssize_t n = recv(fd, back + got, sizeof back - got, 0);

		if (n <= 0) {
			fprintf(stderr, "embed_example: the echo ended after %zu of %zu bytes\n", got, len);
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	return memcmp(back, msg, len) == 0 ? 0 : -1;
}

int main(void)
{
	struct pe_server_config cfg;
	struct pe_server_stats stats;
	char line[PE_STATS_LINE_MAX];
	pe_server *srv;
	sigset_t stop_signals;
	int rc, ok;

	/* Before the server's threads exist, as server.h asks: a program that
	 * stops on these would take them with sigwait(3) on a thread of its own. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	pe_server_config_init(&cfg);
	cfg.bind_address = "127.0.0.1"; /* the default would be every address */
	cfg.port = 0;
	cfg.workers = 4;
	if ((rc = pe_server_create(&srv, &cfg)) < 0) {
		fprintf(stderr, "embed_example: pe_server_create: %s\n", strerror(-rc));
		return 1;
	}
	if ((rc = pe_server_start(srv)) < 0) {
		fprintf(stderr, "embed_example: pe_server_start: %s\n", strerror(-rc));
		pe_server_destroy(srv);
		return 1;
	}
	ok = echo_once(pe_server_port(srv), "hello, echo\n") == 0;
	pe_server_stop(srv);
	if ((rc = pe_server_wait(srv)) < 0) {
		fprintf(stderr, "embed_example: the run failed: %s\n", strerror(-rc));
		ok = 0;
	}
	pe_server_stats(srv, &stats);
	pe_server_stats_format(&stats, line, sizeof line);
	printf("libpoolecho %s (built against %s), port %u: %s\n%s\n", pe_version(),
	       PE_VERSION_STRING, pe_server_port(srv), ok ? "echoed intact" : "echo FAILED", line);
	pe_server_destroy(srv);
	return ok ? 0 : 1;
}
