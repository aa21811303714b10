/*
 * frontd streaming server: WebSocket (RFC 6455) framing for the
 * Kubernetes channel protocols (v4/v5.channel.k8s.io and their base64
 * variants): each message starts with a channel byte.
 *
 * Only what a server needs: client frames must be masked, RSV bits clear,
 * control frames unfragmented and at most 125 bytes, opcodes known, and a
 * payload at most WS_MAX_PAYLOAD (checked on the header, before any of it
 * is buffered).
 */
#ifndef CRISP_FRONTD_STREAM_WS_H
#define CRISP_FRONTD_STREAM_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WS_MAX_PAYLOAD (64u * 1024)
#define WS_MAX_HDR 14

enum ws_opcode {
	WS_OP_CONT = 0,
	WS_OP_TEXT = 1,
	WS_OP_BINARY = 2,
	WS_OP_CLOSE = 8,
	WS_OP_PING = 9,
	WS_OP_PONG = 10,
};

struct ws_frame {
	bool fin;
	uint8_t opcode;
	uint8_t *payload; /* unmasked in place */
	size_t len;
};

/* Parse (and unmask in place) one client frame at buf.  Returns its total
 * length, 0 when incomplete, -1 when malformed (*why says how). */
ssize_t ws_parse_frame(uint8_t *buf, size_t len, struct ws_frame *f, const char **why);

/* A server frame header (FIN set, unmasked) for a payload of len bytes;
 * returns the header length (2, 4 or 10). */
size_t ws_build_hdr(uint8_t out[10], uint8_t opcode, size_t len);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key GUID)).
 * The key must be the base64 of 16 bytes (24 characters); -1 otherwise. */
int ws_accept_key(const char *key, char out[29]);

/* SHA-1 of msg (the handshake's only use of it). */
void ws_sha1(const uint8_t *msg, size_t len, uint8_t out[20]);

#endif
