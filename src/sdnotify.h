/*
 * sdnotify.h -- tell a service manager (systemd's Type=notify) that the
 * daemon is ready or stopping.
 */
#ifndef POOLECHO_SDNOTIFY_H
#define POOLECHO_SDNOTIFY_H

/* Send STATE ("READY=1", "STOPPING=1"...) as one datagram to the socket
 * named by $NOTIFY_SOCKET: 1 when sent, 0 when no manager asked for it
 * (the variable is unset or empty), -errno when it could not be sent. */
int pe_sd_notify(const char *state);

#endif
