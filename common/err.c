#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

int crisp_error(crisp_err_t *err, int code, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	err->errnum = errnum;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	if (errnum != 0) {
		size_t n = strlen(err->msg);
		if (n < sizeof err->msg)
			snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(errnum));
	}
	return -1;
}

int crisp_error_wrap(crisp_err_t *err, const char *fmt, ...)
{
	char prefix[CRISP_ERR_MSG_MAX], old[CRISP_ERR_MSG_MAX];
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	old[sizeof old - 1] = '\0';
	/* Build by hand: truncation is intended, not a warning. */
	size_t n = crisp_strlcpy(err->msg, prefix, sizeof err->msg);
	if (n + 2 < sizeof err->msg) {
		memcpy(err->msg + n, ": ", 3);
		crisp_strlcpy(err->msg + n + 2, old, sizeof err->msg - n - 2);
	}
	if (err->code == CRISP_OK)
		err->code = CRISP_INTERNAL;
	return -1;
}

void crisp_error_clear(crisp_err_t *err)
{
	if (err != NULL) {
		err->code = CRISP_OK;
		err->errnum = 0;
		err->msg[0] = '\0';
	}
}

const char *crisp_code_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
		"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	if (code < 0 || (size_t)code >= sizeof names / sizeof names[0])
		return "UNKNOWN";
	return names[code];
}
