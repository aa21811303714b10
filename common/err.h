/*
 * crisp: one error convention for every process.
 *
 * A function that can fail returns int (0 on success, -1 on failure) and
 * fills a crisp_err with a status code, the errno that caused it (0 when
 * none) and a message.  The status codes are gRPC's, so an error can cross
 * ipc as {code, errnum, msg} and reach the CRI client unchanged.  Library
 * code never logs; the top of each process logs once (see log.h).
 */
#ifndef CRISP_ERR_H
#define CRISP_ERR_H

#include <stddef.h>

enum crisp_code {
	CRISP_OK = 0,
	CRISP_CANCELLED = 1,
	CRISP_UNKNOWN = 2,
	CRISP_INVALID_ARGUMENT = 3,
	CRISP_DEADLINE_EXCEEDED = 4,
	CRISP_NOT_FOUND = 5,
	CRISP_ALREADY_EXISTS = 6,
	CRISP_PERMISSION_DENIED = 7,
	CRISP_RESOURCE_EXHAUSTED = 8,
	CRISP_FAILED_PRECONDITION = 9,
	CRISP_ABORTED = 10,
	CRISP_OUT_OF_RANGE = 11,
	CRISP_UNIMPLEMENTED = 12,
	CRISP_INTERNAL = 13,
	CRISP_UNAVAILABLE = 14,
	CRISP_DATA_LOSS = 15,
	CRISP_UNAUTHENTICATED = 16,
};

#define CRISP_ERR_MSG_MAX 512

typedef struct crisp_err {
	int code;   /* enum crisp_code */
	int errnum; /* errno, 0 if none */
	char msg[CRISP_ERR_MSG_MAX];
} crisp_err_t;

#define CRISP_ERR_INIT { 0, 0, { 0 } }

/* Fill err (when not NULL) and return -1.  The message is truncated to fit. */
int crisp_error(crisp_err_t *err, int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Prefix an existing error's message with more context; returns -1. */
int crisp_error_wrap(crisp_err_t *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void crisp_error_clear(crisp_err_t *err);

/* Name of a status code ("NOT_FOUND"...), never NULL. */
const char *crisp_code_name(int code);

#endif
