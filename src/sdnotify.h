/*
 * sdnotify.h -- tell a service manager (systemd's Type=notify) that the
 * daemon is ready or stopping.
 */
#ifndef POOLECHO_SDNOTIFY_H
#define POOLECHO_SDNOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

/* The socket to the manager named by $NOTIFY_SOCKET, opened once, at
 * start: a send must not fail later for want of a descriptor. */
struct pe_sd_notifier {
	int fd;                 /* -1: no manager, or it could not be opened */
	int error;              /* why not (a negative errno), or 0 */
	struct sockaddr_un sa;
	socklen_t salen;
};

/* Open N for $NOTIFY_SOCKET: 1 when a manager asked for notifications, 0
 * when none did (the variable is unset or empty), -errno when it cannot
 * be used (also kept in N->error, for pe_sd_notify_send to return). */
int pe_sd_notify_open(struct pe_sd_notifier *n);

/* Send STATE ("READY=1", "STOPPING=1"...) as one datagram: 1 when sent, 0
 * when no manager asked for it, -errno when it could not be sent. A
 * manager whose queue is full is waited for, a slice of 100 ms at a time,
 * TIMEOUT_MS at most (-1: as long as it takes; then -EAGAIN), and until
 * GIVE_UP (when not NULL), asked with CTX between slices, returns nonzero
 * (then -ECANCELED). */
int pe_sd_notify_send(const struct pe_sd_notifier *n, const char *state, int timeout_ms,
                      int (*give_up)(void *ctx), void *ctx);

void pe_sd_notify_close(struct pe_sd_notifier *n);

#endif
