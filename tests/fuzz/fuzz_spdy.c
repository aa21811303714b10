/*
 * libFuzzer: SPDY/3.1 frames and header blocks (frontd/stream_spdy.c) as a
 * connection sees them: frames one after the other, header blocks through
 * one zlib stream.  Decoded headers must survive a re-encode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontd/stream_spdy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spdy_zin zi, zi2;
	struct spdy_zout zo;
	size_t off = 0;

	if (spdy_zin_init(&zi) < 0 || spdy_zin_init(&zi2) < 0 || spdy_zout_init(&zo) < 0)
		abort();
	while (off < size) {
		struct spdy_frame f;
		struct spdy_header h[SPDY_MAX_PAIRS], h2[SPDY_MAX_PAIRS];
		size_t n = 0, n2 = 0;
		const char *why;
		ssize_t k = spdy_parse_frame(data + off, size - off, &f);

		if (k <= 0)
			break;
		if ((size_t)k > size - off || f.len > SPDY_MAX_FRAME || (f.len && f.data < data + off) ||
		    f.data + f.len > data + off + (size_t)k)
			abort();
		off += (size_t)k;
		if (!f.control || (f.type != SPDY_SYN_STREAM && f.type != SPDY_HEADERS))
			continue;
		if (spdy_headers_decode(&zi, f.data, f.len, h, &n, &why) < 0)
			break; /* the connection would end here */
		if (n > SPDY_MAX_PAIRS)
			abort();
		{
			uint8_t out[4096];
			ssize_t m = spdy_build_syn_stream(&zo, 1, 0, h, n, out, sizeof out);
			struct spdy_frame g;

			if (m < 0)
				continue; /* does not fit our small reply buffer: fine */
			if (spdy_parse_frame(out, (size_t)m, &g) != m ||
			    spdy_headers_decode(&zi2, g.data, g.len, h2, &n2, &why) < 0 || n2 != n)
				abort();
			for (size_t i = 0; i < n; i++)
				if (strcmp(h[i].name, h2[i].name) || strcmp(h[i].value, h2[i].value))
					abort();
		}
	}
	spdy_zin_free(&zi);
	spdy_zin_free(&zi2);
	spdy_zout_free(&zo);
	return 0;
}
