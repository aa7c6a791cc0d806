/*
 * sigstate.c -- signal dispositions as the caller left them.
 */
#include <config.h>

#include <signal.h>
#include <stddef.h>

#include "sigstate.h"

int pe_signal_ignored(int sig)
{
	struct sigaction sa;

	return sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}
