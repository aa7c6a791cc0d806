/*
 * quiet_thread.c -- see quiet_thread.h.
 */
#include <config.h>

#include "quiet_thread.h"

/* Raised by the thread's own fault, for that thread alone. Blocked, the
 * kernel would kill the process with one past every handler. */
static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};

void pe_quiet_signals(sigset_t *old)
{
	sigset_t quiet;

	sigfillset(&quiet);
	for (size_t i = 0; i < sizeof fault_signals / sizeof fault_signals[0]; i++)
		sigdelset(&quiet, fault_signals[i]);
	pthread_sigmask(SIG_SETMASK, &quiet, old);
}
