/*
 * libFuzzer: WebSocket client frames (frontd/stream_ws.c), one after the
 * other as on a connection, unmasked in place.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontd/stream_ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	size_t off = 0;

	memcpy(buf, data, size);
	while (off < size) {
		struct ws_frame f;
		const char *why;
		ssize_t k = ws_parse_frame(buf + off, size - off, &f, &why);

		if (k <= 0) {
			if (k < 0 && (why == NULL || why[0] == '\0'))
				abort();
			break;
		}
		if ((size_t)k > size - off || f.len > WS_MAX_PAYLOAD || f.payload + f.len != buf + off + (size_t)k)
			abort();
		if (f.opcode >= WS_OP_CLOSE && (f.len > 125 || !f.fin))
			abort();
		if ((f.opcode > WS_OP_BINARY && f.opcode < WS_OP_CLOSE) || f.opcode > WS_OP_PONG)
			abort();
		off += (size_t)k;
	}
	if (size >= 24) {
		char key[25], out[29];

		memcpy(key, data, 24);
		key[24] = '\0';
		if (memchr(key, 0, 24) == NULL && ws_accept_key(key, out) == 0 && strlen(out) != 28)
			abort();
	}
	free(buf);
	return 0;
}
