/*
 * client_pipe.h -- pipe mode: copy one descriptor to the server and the
 * echo to another, checking every byte, until the input ends and the
 * server has echoed it all and closed.
 */
#ifndef POOLECHO_CLIENT_PIPE_H
#define POOLECHO_CLIENT_PIPE_H

#include "client_cli.h"

enum pipe_failure {
	PIPE_OK,
	PIPE_CONNECT,     /* could not connect */
	PIPE_MISMATCH,    /* a byte differed, or more came back than was sent */
	PIPE_EARLY_CLOSE, /* the server closed (or reset) before echoing everything */
	PIPE_TIMEOUT,     /* --timeout ran out */
	PIPE_IO           /* reading the input or writing the output failed */
};

struct pipe_result {
	enum pipe_failure failure;
	char message[512];        /* what went wrong, with the address and errno text */
	char output_error[256];   /* after a failure, why not every verified byte
	                           * could be written out; empty when they were */
};

/* Run pipe mode for CFG, reading IN_FD and writing the echo to OUT_FD.
 * 0 when every byte came back intact, -1 otherwise (RES says why). Either
 * way, every byte verified has been written to OUT_FD, and none other,
 * unless writing it failed or stayed blocked for CFG's timeout. */
int client_pipe_run(const struct client_config *cfg, int in_fd, int out_fd,
                    struct pipe_result *res);

#endif /* POOLECHO_CLIENT_PIPE_H */
