/*
 * frontd streaming server: WebSocket frames (RFC 6455 section 5).
 */
#include <string.h>

#include <sodium.h>

#include "frontd/stream_ws.h"

/*
 * SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept only: the handshake needs it
 * and nothing else does.  libsodium has no SHA-1, and OpenSSL's libcrypto
 * initialises itself on first use (reading its configuration file), which
 * frontd's sandbox forbids; these 60 lines are checked against the FIPS
 * vectors in tests/unit/test_stream_ws.c.
 */
static uint32_t rol(uint32_t x, int n)
{
	return x << n | x >> (32 - n);
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	for (int i = 0; i < 80; i++) {
		uint32_t f, k, t;

		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
		else
			f = b ^ c ^ d, k = 0xca62c1d6;
		t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

void ws_sha1(const uint8_t *msg, size_t len, uint8_t out[20])
{
	uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
	uint8_t tail[128];
	size_t full = len / 64 * 64, rest = len - full, tl;
	uint64_t bits = (uint64_t)len * 8;

	for (size_t i = 0; i < full; i += 64)
		sha1_block(h, msg + i);
	memset(tail, 0, sizeof tail);
	memcpy(tail, msg + full, rest);
	tail[rest] = 0x80;
	tl = rest + 1 + 8 <= 64 ? 64 : 128;
	for (int i = 0; i < 8; i++)
		tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
	sha1_block(h, tail);
	if (tl == 128)
		sha1_block(h, tail + 64);
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

ssize_t ws_parse_frame(uint8_t *buf, size_t len, struct ws_frame *f, const char **why)
{
	size_t hl = 2;
	uint64_t plen;
	uint8_t *mask;

	*why = "";
	if (len < 2)
		return 0;
	memset(f, 0, sizeof *f);
	f->fin = (buf[0] & 0x80) != 0;
	f->opcode = buf[0] & 0x0f;
	if (buf[0] & 0x70) {
		*why = "reserved bits set";
		return -1;
	}
	if (f->opcode > WS_OP_BINARY && f->opcode < WS_OP_CLOSE) {
		*why = "unknown opcode";
		return -1;
	}
	if (f->opcode > WS_OP_PONG) {
		*why = "unknown opcode";
		return -1;
	}
	if (!(buf[1] & 0x80)) {
		*why = "client frame not masked";
		return -1;
	}
	plen = buf[1] & 0x7f;
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		if (plen < 126) {
			*why = "length not minimally encoded";
			return -1;
		}
		hl = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		if (plen < 65536 || (plen >> 63)) {
			*why = "length not minimally encoded";
			return -1;
		}
		hl = 10;
	}
	if (f->opcode >= WS_OP_CLOSE && (plen > 125 || !f->fin)) {
		*why = "control frame fragmented or too long";
		return -1;
	}
	if (plen > WS_MAX_PAYLOAD) {
		*why = "frame too large";
		return -1;
	}
	if (len < hl + 4 + plen)
		return 0;
	mask = buf + hl;
	f->payload = buf + hl + 4;
	f->len = (size_t)plen;
	for (size_t i = 0; i < f->len; i++)
		f->payload[i] ^= mask[i & 3];
	return (ssize_t)(hl + 4 + plen);
}

size_t ws_build_hdr(uint8_t out[10], uint8_t opcode, size_t len)
{
	out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len < 65536) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

int ws_accept_key(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char raw[16], md[20];
	char cat[24 + sizeof guid];
	size_t rawlen = 0;

	if (strlen(key) != 24 ||
	    sodium_base642bin(raw, sizeof raw, key, 24, NULL, &rawlen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    rawlen != 16)
		return -1;
	memcpy(cat, key, 24);
	memcpy(cat + 24, guid, sizeof guid - 1);
	ws_sha1((const uint8_t *)cat, 24 + sizeof guid - 1, md);
	sodium_bin2base64(out, 29, md, sizeof md, sodium_base64_VARIANT_ORIGINAL);
	return 0;
}
