/*
 * sigstate.h -- signal dispositions as the caller left them.
 */
#ifndef POOLECHO_SIGSTATE_H
#define POOLECHO_SIGSTATE_H

/* Whether SIG is ignored. Asked at start, it tells a program run as a
 * background job of a shell without job control (SIGINT) or under nohup
 * (SIGHUP), which is meant to outlive the terminal's Ctrl-C or hangup:
 * such a program leaves that signal ignored, as the shell intends. */
int pe_signal_ignored(int sig);

#endif /* POOLECHO_SIGSTATE_H */
