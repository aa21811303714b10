/*
 * frontd streaming server: SPDY/3.1 framing, as spoken by kubelet, crictl
 * and kubectl through github.com/moby/spdystream (the server side of
 * k8s.io/apimachinery/pkg/util/httpstream/spdy).
 *
 *   control frame: 1 | version(15)=3 | type(16) | flags(8) | length(24) | data
 *   data frame:    0 | stream-id(31)           | flags(8) | length(24) | data
 *
 * Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams with the
 * SPDY/3 dictionary, one per direction for the whole connection; a block
 * that does not inflate breaks the connection (the shared state is lost).
 * Everything is bounded: frame length (SPDY_MAX_FRAME), inflated header
 * block (SPDY_MAX_HEADER_BLOCK), pairs per block, name and value sizes.
 */
#ifndef CRISP_FRONTD_STREAM_SPDY_H
#define CRISP_FRONTD_STREAM_SPDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>

#define SPDY_VERSION 3
#define SPDY_HDR_LEN 8
#define SPDY_MAX_FRAME (256u * 1024)     /* any frame's payload */
#define SPDY_MAX_HEADER_BLOCK (16u * 1024) /* inflated header block */
#define SPDY_MAX_PAIRS 32
#define SPDY_NAME_MAX 64
#define SPDY_VALUE_MAX 256
#define SPDY_DATA_CHUNK 32768u            /* what we send per data frame */

enum spdy_type {
	SPDY_SYN_STREAM = 1,
	SPDY_SYN_REPLY = 2,
	SPDY_RST_STREAM = 3,
	SPDY_SETTINGS = 4,
	SPDY_PING = 6,
	SPDY_GOAWAY = 7,
	SPDY_HEADERS = 8,
	SPDY_WINDOW_UPDATE = 9,
};

#define SPDY_FLAG_FIN 0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02

/* RST_STREAM status codes */
#define SPDY_RST_PROTOCOL_ERROR 1
#define SPDY_RST_INVALID_STREAM 2
#define SPDY_RST_REFUSED_STREAM 3
#define SPDY_RST_CANCEL 5
#define SPDY_RST_INTERNAL_ERROR 6
#define SPDY_RST_STREAM_IN_USE 8
#define SPDY_RST_FRAME_TOO_LARGE 11

struct spdy_frame {
	bool control;
	uint16_t type;      /* control frames */
	uint8_t flags;
	uint32_t stream_id; /* data, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE */
	uint32_t value;     /* RST/GOAWAY status, PING id, WINDOW_UPDATE delta, GOAWAY last id */
	const uint8_t *data; /* data payload, header block, or SETTINGS body */
	size_t len;
};

/*
 * Parse one frame at buf.  Returns its total length, 0 when incomplete,
 * -1 when malformed (bad version, length over SPDY_MAX_FRAME, a control
 * frame too short or with a zero stream id where one is required).
 * Unknown control types parse (type set, data = payload): the caller
 * ignores them, as SPDY requires.
 */
ssize_t spdy_parse_frame(const uint8_t *buf, size_t len, struct spdy_frame *f);

struct spdy_header {
	char name[SPDY_NAME_MAX];
	char value[SPDY_VALUE_MAX]; /* NUL-separated multi-values kept as the first one */
};

struct spdy_zin {
	z_stream z;
	bool live; /* initialised: freed by spdy_zin_free */
	bool ok;   /* in step with the peer: false after any failure */
};
struct spdy_zout {
	z_stream z;
	bool live;
	bool ok;
};

int spdy_zin_init(struct spdy_zin *zi);
void spdy_zin_free(struct spdy_zin *zi);
int spdy_zout_init(struct spdy_zout *zo);
void spdy_zout_free(struct spdy_zout *zo);

/* Inflate and parse a header block into h (up to SPDY_MAX_PAIRS).  0, or
 * -1 with *why set: the connection must then be closed. */
int spdy_headers_decode(struct spdy_zin *zi, const uint8_t *blk, size_t len, struct spdy_header *h, size_t *n,
			const char **why);

/* The value of name in h, or NULL. */
const char *spdy_header_get(const struct spdy_header *h, size_t n, const char *name);

/* Frame builders: each writes a whole frame into out (outsz bytes) and
 * returns its length, or -1 when it does not fit. */
ssize_t spdy_build_syn_reply(struct spdy_zout *zo, uint32_t stream_id, uint8_t flags, uint8_t *out, size_t outsz);
ssize_t spdy_build_syn_stream(struct spdy_zout *zo, uint32_t stream_id, uint8_t flags, const struct spdy_header *h,
			      size_t n, uint8_t *out, size_t outsz);
void spdy_build_data_hdr(uint8_t out[SPDY_HDR_LEN], uint32_t stream_id, uint8_t flags, uint32_t len);
void spdy_build_rst(uint8_t out[16], uint32_t stream_id, uint32_t status);
void spdy_build_ping(uint8_t out[12], uint32_t id);
void spdy_build_goaway(uint8_t out[16], uint32_t last_id, uint32_t status);

#endif
