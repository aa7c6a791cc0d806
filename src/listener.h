/*
 * listener.h -- the accept loop and its overflow policy.
 */
#ifndef POOLECHO_LISTENER_H
#define POOLECHO_LISTENER_H

#include <stdint.h>

#include "server_internal.h"

/* How often a recurring accept error, or a kind of refusal, is named in the
 * log, in ms (10 s); the tests alone shorten it, before a server starts. */
extern int64_t pe_listener_log_interval_ms;

/* Accept connections into srv->queue until a stop is requested. Returns 0
 * on a stop, or a negative errno when accepting failed for good. */
int pe_listener_run(pe_server *srv);

#endif /* POOLECHO_LISTENER_H */
