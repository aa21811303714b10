/*
 * libFuzzer: the streaming server's HTTP/1.1 request head parser
 * (frontd/stream_http.c), with the invariants the server relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontd/stream_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req r;
	int status;
	const char *why;
	/* not NUL-terminated: the parser takes a length */
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	memcpy(buf, data, size);
	n = http_parse_request(buf, size, &r, &status, &why);
	if (n > 0) {
		if ((size_t)n > size || (size_t)n > HTTP_MAX_HEAD || memcmp(buf + n - 4, "\r\n\r\n", 4) != 0)
			abort();
		if (strlen(r.method) >= sizeof r.method || strlen(r.path) >= sizeof r.path || r.path[0] != '/' ||
		    strlen(r.query) >= sizeof r.query || strlen(r.ws_key) >= sizeof r.ws_key)
			abort();
		if (r.nprotos < 0 || r.nprotos > HTTP_MAX_PROTOS || r.nws_protos < 0 || r.nws_protos > HTTP_MAX_PROTOS)
			abort();
		for (int i = 0; i < r.nprotos; i++)
			if (strlen(r.protos[i]) == 0 || strlen(r.protos[i]) >= HTTP_PROTO_LEN)
				abort();
	} else if (n < 0) {
		if (status < 400 || status > 505 || why == NULL || why[0] == '\0')
			abort();
	} else if (size >= HTTP_MAX_HEAD) {
		abort(); /* incomplete beyond the bound must be refused */
	}
	free(buf);
	return 0;
}
