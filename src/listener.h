/*
 * listener.h -- the accept loop and its overflow policy.
 */
#ifndef POOLECHO_LISTENER_H
#define POOLECHO_LISTENER_H

#include "server_internal.h"

/* Accept connections into srv->queue until a stop is requested. Returns 0
 * on a stop, or a negative errno when accepting failed for good. */
int pe_listener_run(pe_server *srv);

#endif /* POOLECHO_LISTENER_H */
