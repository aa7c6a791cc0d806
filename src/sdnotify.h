/*
 * sdnotify.h -- tell a service manager (systemd's Type=notify) that the
 * daemon is ready or stopping.
 */
#ifndef POOLECHO_SDNOTIFY_H
#define POOLECHO_SDNOTIFY_H

#include <signal.h>

/* Send STATE ("READY=1", "STOPPING=1"...) as one datagram to the socket
 * named by $NOTIFY_SOCKET: 1 when sent, 0 when no manager asked for it
 * (the variable is unset or empty), -errno when it could not be sent.
 * A manager whose queue is full is waited for, TIMEOUT_MS at most (-1:
 * as long as it takes; then -EAGAIN), and while no signal of GIVE_UP_ON
 * (when not NULL; blocked, as sigwait wants them) is pending (then
 * -ECANCELED, the signal left pending). */
int pe_sd_notify_until(const char *state, int timeout_ms, const sigset_t *give_up_on);

#endif
