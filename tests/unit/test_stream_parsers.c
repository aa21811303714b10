/*
 * crisp: unit tests of the streaming server's parsers: the HTTP/1.1
 * upgrade request (frontd/stream_http.c), SPDY/3.1 frames and header
 * blocks (frontd/stream_spdy.c), WebSocket frames and the handshake's
 * SHA-1 (frontd/stream_ws.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frontd/stream_http.h"
#include "frontd/stream_spdy.h"
#include "frontd/stream_ws.h"

/* ---- HTTP ---- */

static ssize_t parse(const char *s, struct http_req *r, int *status)
{
	const char *why;

	return http_parse_request(s, strlen(s), r, status, &why);
}

static void test_http_spdy_upgrade(void **state)
{
	const char *s = "POST /exec/abc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: Upgrade\r\n"
			"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
			"X-Stream-Protocol-Version: v3.channel.k8s.io, v2.channel.k8s.io\r\nContent-Length: 0\r\n\r\nrest";
	struct http_req r;
	int st;

	(void)state;
	assert_int_equal(parse(s, &r, &st), (ssize_t)strlen(s) - 4);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.path, "/exec/abc");
	assert_string_equal(r.query, "x=1");
	assert_true(r.conn_upgrade && r.up_spdy && !r.up_websocket);
	assert_int_equal(r.nprotos, 3);
	assert_string_equal(r.protos[0], "v4.channel.k8s.io");
	assert_string_equal(r.protos[2], "v2.channel.k8s.io");
	/* Every prefix is incomplete, never an error. */
	for (size_t i = 0; i < strlen(s) - 4; i++)
		assert_int_equal(http_parse_request(s, i, &r, &st, &(const char *){ NULL }), 0);
}

static void test_http_websocket_upgrade(void **state)
{
	const char *s = "GET /attach/t HTTP/1.1\r\nconnection: keep-alive, upgrade\r\nupgrade: websocket\r\n"
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
			"Sec-WebSocket-Protocol: v5.channel.k8s.io,v4.channel.k8s.io\r\n\r\n";
	struct http_req r;
	int st;

	(void)state;
	assert_true(parse(s, &r, &st) > 0);
	assert_true(r.conn_upgrade && r.up_websocket && r.ws_version == 13);
	assert_string_equal(r.ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
	assert_int_equal(r.nws_protos, 2);
	assert_string_equal(r.ws_protos[1], "v4.channel.k8s.io");
}

static void test_http_refusals(void **state)
{
	static const struct {
		const char *req;
		int status;
	} bad[] = {
		{ "GET /x HTTP/1.0\r\n\r\n", 505 },
		{ "GET /x HTTP/2.0\r\n\r\n", 400 },
		{ "GET x HTTP/1.1\r\n\r\n", 400 },
		{ "GET  /x HTTP/1.1\r\n\r\n", 400 },
		{ "G(T /x HTTP/1.1\r\n\r\n", 400 },
		{ "GET /x HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400 },
		{ "GET /x HTTP/1.1\r\nA b\r\n\r\n", 400 },
		{ "GET /x HTTP/1.1\r\nA\x01: b\r\n\r\n", 400 },
		{ "GET /x HTTP/1.1\r\nA: b\x7f\r\n\r\n", 400 },
		{ "GET /x HTTP/1.1\r\nA: b\rc\r\n\r\n", 400 },
		{ "GET /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 413 },
		{ "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413 },
		{ "GET /x HTTP/1.1\r\nSec-WebSocket-Version: x\r\n\r\n", 400 },
		{ "GET /x HTTP/1.1\r\nSec-WebSocket-Key: a\r\nSec-WebSocket-Key: b\r\n\r\n", 400 },
		{ "GET /x HTTP/1.1\r\nX-Stream-Protocol-Version: a,b,c,d,e,f,g,h,i\r\n\r\n", 400 },
	};
	struct http_req r;
	int st;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(parse(bad[i].req, &r, &st), -1);
		assert_int_equal(st, bad[i].status);
	}
}

static void test_http_bounds(void **state)
{
	char *big = malloc(HTTP_MAX_HEAD + 100), *many = malloc(8192);
	struct http_req r;
	int st;
	size_t n = 0;

	(void)state;
	/* No end of head within the bound: 431 as soon as the bound is hit. */
	memset(big, 'a', HTTP_MAX_HEAD + 99);
	big[HTTP_MAX_HEAD + 99] = '\0';
	assert_int_equal(parse(big, &r, &st), -1);
	assert_int_equal(st, 431);
	/* A 300-byte target: 414. */
	n = (size_t)sprintf(big, "GET /");
	memset(big + n, 'p', 300);
	strcpy(big + n + 300, " HTTP/1.1\r\n\r\n");
	assert_int_equal(parse(big, &r, &st), -1);
	assert_int_equal(st, 414);
	/* 65 header lines: 431. */
	n = (size_t)sprintf(many, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 65; i++)
		n += (size_t)sprintf(many + n, "H%d: v\r\n", i);
	strcpy(many + n, "\r\n");
	assert_int_equal(parse(many, &r, &st), -1);
	assert_int_equal(st, 431);
	assert_true(http_list_has("a, Upgrade ,b", 13, "upgrade"));
	assert_false(http_list_has("upgrades", 8, "upgrade"));
	free(big);
	free(many);
}

/* ---- SPDY ---- */

static void test_spdy_headers_roundtrip(void **state)
{
	struct spdy_zout zo;
	struct spdy_zin zi;
	struct spdy_header h[3], got[SPDY_MAX_PAIRS];
	uint8_t buf[1024];
	size_t n;
	const char *why;

	(void)state;
	assert_int_equal(spdy_zout_init(&zo), 0);
	assert_int_equal(spdy_zin_init(&zi), 0);
	memset(h, 0, sizeof h);
	strcpy(h[0].name, "streamtype");
	strcpy(h[0].value, "data");
	strcpy(h[1].name, "port");
	strcpy(h[1].value, "8080");
	strcpy(h[2].name, "requestid");
	strcpy(h[2].value, "0");
	/* Several blocks on the same zlib streams, as on a connection. */
	for (uint32_t sid = 1; sid < 20; sid += 2) {
		struct spdy_frame f;
		ssize_t len = spdy_build_syn_stream(&zo, sid, 0, h, 3, buf, sizeof buf);

		assert_true(len > 18);
		assert_int_equal(spdy_parse_frame(buf, (size_t)len, &f), len);
		assert_true(f.control);
		assert_int_equal(f.type, SPDY_SYN_STREAM);
		assert_int_equal(f.stream_id, sid);
		assert_int_equal(spdy_headers_decode(&zi, f.data, f.len, got, &n, &why), 0);
		assert_int_equal(n, 3);
		assert_string_equal(spdy_header_get(got, n, "port"), "8080");
		assert_string_equal(spdy_header_get(got, n, "streamtype"), "data");
		assert_null(spdy_header_get(got, n, "nothere"));
		assert_int_equal(spdy_parse_frame(buf, (size_t)len - 1, &f), 0);
	}
	spdy_zout_free(&zo);
	spdy_zin_free(&zi);
}

static void test_spdy_header_refusals(void **state)
{
	struct spdy_header h[SPDY_MAX_PAIRS + 1], got[SPDY_MAX_PAIRS];
	uint8_t buf[8192];
	size_t n;
	const char *why;
	struct spdy_frame f;

	(void)state;
	memset(h, 0, sizeof h);
	for (int i = 0; i <= SPDY_MAX_PAIRS; i++)
		sprintf(h[i].name, "h%d", i);
	{ /* one pair over the bound */
		struct spdy_zout zo;
		struct spdy_zin zi;
		ssize_t len;

		spdy_zout_init(&zo);
		spdy_zin_init(&zi);
		len = spdy_build_syn_stream(&zo, 1, 0, h, SPDY_MAX_PAIRS + 1, buf, sizeof buf);
		assert_true(len > 0);
		assert_int_equal(spdy_parse_frame(buf, (size_t)len, &f), len);
		assert_int_equal(spdy_headers_decode(&zi, f.data, f.len, got, &n, &why), -1);
		assert_string_equal(why, "too many headers");
		spdy_zout_free(&zo);
		spdy_zin_free(&zi);
	}
	{ /* uppercase and duplicate names */
		static const char *const names[][2] = { { "Port", "x" }, { "a", "a" } };

		for (int k = 0; k < 2; k++) {
			struct spdy_zout zo;
			struct spdy_zin zi;
			ssize_t len;

			spdy_zout_init(&zo);
			spdy_zin_init(&zi);
			memset(h, 0, sizeof h);
			strcpy(h[0].name, names[k][0]);
			strcpy(h[1].name, names[k][1]);
			len = spdy_build_syn_stream(&zo, 1, 0, h, 2, buf, sizeof buf);
			assert_int_equal(spdy_parse_frame(buf, (size_t)len, &f), len);
			assert_int_equal(spdy_headers_decode(&zi, f.data, f.len, got, &n, &why), -1);
			spdy_zout_free(&zo);
			spdy_zin_free(&zi);
		}
	}
	{ /* not zlib at all; and a decompressor that failed stays failed */
		struct spdy_zin zi;
		static const uint8_t junk[] = "not a zlib stream";

		spdy_zin_init(&zi);
		assert_int_equal(spdy_headers_decode(&zi, junk, sizeof junk, got, &n, &why), -1);
		assert_int_equal(spdy_headers_decode(&zi, junk, sizeof junk, got, &n, &why), -1);
		spdy_zin_free(&zi);
	}
}

static void test_spdy_frames(void **state)
{
	struct spdy_frame f;
	uint8_t b[32];

	(void)state;
	spdy_build_ping(b, 7);
	assert_int_equal(spdy_parse_frame(b, 12, &f), 12);
	assert_true(f.control && f.type == SPDY_PING && f.value == 7);
	spdy_build_rst(b, 5, SPDY_RST_CANCEL);
	assert_int_equal(spdy_parse_frame(b, 16, &f), 16);
	assert_true(f.type == SPDY_RST_STREAM && f.stream_id == 5 && f.value == SPDY_RST_CANCEL);
	spdy_build_goaway(b, 9, 1);
	assert_int_equal(spdy_parse_frame(b, 16, &f), 16);
	assert_true(f.type == SPDY_GOAWAY && f.value == 1);
	spdy_build_data_hdr(b, 3, SPDY_FLAG_FIN, 4);
	memcpy(b + 8, "abcd", 4);
	assert_int_equal(spdy_parse_frame(b, 12, &f), 12);
	assert_true(!f.control && f.stream_id == 3 && f.flags == SPDY_FLAG_FIN && f.len == 4);
	assert_memory_equal(f.data, "abcd", 4);
	/* version 2 */
	spdy_build_ping(b, 1);
	b[1] = 2;
	assert_int_equal(spdy_parse_frame(b, 12, &f), -1);
	/* length over the bound, known before the payload is there */
	spdy_build_data_hdr(b, 3, 0, SPDY_MAX_FRAME + 1);
	assert_int_equal(spdy_parse_frame(b, 8, &f), -1);
	/* data on stream 0 */
	spdy_build_data_hdr(b, 0, 0, 0);
	assert_int_equal(spdy_parse_frame(b, 8, &f), -1);
	/* PING of the wrong length, RST too short, SYN_STREAM too short */
	spdy_build_ping(b, 1);
	b[7] = 5;
	assert_int_equal(spdy_parse_frame(b, 13, &f), -1);
	spdy_build_rst(b, 1, 1);
	b[7] = 4;
	assert_int_equal(spdy_parse_frame(b, 12, &f), -1);
	memcpy(b, "\x80\x03\x00\x01\x00\x00\x00\x04\x00\x00\x00\x01", 12);
	assert_int_equal(spdy_parse_frame(b, 12, &f), -1);
	/* SETTINGS whose count does not match its length */
	memcpy(b, "\x80\x03\x00\x04\x00\x00\x00\x0c\x00\x00\x00\x02\x00\x00\x00\x05\x00\x00\x00\x01", 20);
	assert_int_equal(spdy_parse_frame(b, 20, &f), -1);
	/* an unknown control type parses (and is ignored by the caller) */
	memcpy(b, "\x80\x03\x00\x63\x00\x00\x00\x01x", 9);
	assert_int_equal(spdy_parse_frame(b, 9, &f), 9);
	assert_int_equal(f.type, 0x63);
}

/* ---- WebSocket ---- */

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_ws_sha1_vectors(void **state)
{
	uint8_t md[20];
	char h[41];
	char *million = malloc(1000000);

	(void)state;
	ws_sha1((const uint8_t *)"abc", 3, md);
	hex(md, 20, h);
	assert_string_equal(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
	ws_sha1((const uint8_t *)"", 0, md);
	hex(md, 20, h);
	assert_string_equal(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	ws_sha1((const uint8_t *)"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, md);
	hex(md, 20, h);
	assert_string_equal(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	memset(million, 'a', 1000000);
	ws_sha1((const uint8_t *)million, 1000000, md);
	hex(md, 20, h);
	assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	free(million);
}

static void test_ws_accept(void **state)
{
	char out[29];

	(void)state;
	/* RFC 6455 section 1.3 */
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(ws_accept_key("short", out), -1);
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=!", out), -1);
}

static void test_ws_frames(void **state)
{
	/* RFC 6455 5.7: a masked "Hello" */
	uint8_t hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	uint8_t b[80000];
	struct ws_frame f;
	const char *why;

	(void)state;
	assert_int_equal(ws_parse_frame(hello, sizeof hello, &f, &why), (ssize_t)sizeof hello);
	assert_true(f.fin && f.opcode == WS_OP_TEXT && f.len == 5);
	assert_memory_equal(f.payload, "Hello", 5);
	for (size_t i = 0; i < sizeof hello; i++) {
		uint8_t c[sizeof hello];

		memcpy(c, hello, sizeof hello);
		c[0] = 0x81;
		assert_int_equal(ws_parse_frame(c, i, &f, &why), 0);
	}
	/* unmasked */
	memcpy(b, "\x81\x05Hello", 7);
	assert_int_equal(ws_parse_frame(b, 7, &f, &why), -1);
	/* RSV1 */
	memcpy(b, hello, sizeof hello);
	b[0] = 0xc1;
	assert_int_equal(ws_parse_frame(b, sizeof hello, &f, &why), -1);
	/* opcode 3 */
	b[0] = 0x83;
	assert_int_equal(ws_parse_frame(b, sizeof hello, &f, &why), -1);
	/* fragmented ping */
	b[0] = 0x09;
	assert_int_equal(ws_parse_frame(b, sizeof hello, &f, &why), -1);
	/* 16-bit length: 200 bytes */
	memset(b, 0, sizeof b);
	b[0] = 0x82;
	b[1] = 0x80 | 126;
	b[2] = 0;
	b[3] = 200;
	assert_int_equal(ws_parse_frame(b, 8 + 200, &f, &why), 8 + 200);
	assert_int_equal(f.len, 200);
	/* non-minimal 16-bit length */
	b[3] = 100;
	assert_int_equal(ws_parse_frame(b, 8 + 100, &f, &why), -1);
	/* 64-bit length over the bound: refused from the header alone */
	b[1] = 0x80 | 127;
	memcpy(b + 2, "\x00\x00\x00\x00\x00\x02\x00\x00", 8);
	assert_int_equal(ws_parse_frame(b, 10, &f, &why), -1);
	/* control frame over 125 */
	b[0] = 0x89;
	b[1] = 0x80 | 126;
	b[2] = 0;
	b[3] = 126;
	assert_int_equal(ws_parse_frame(b, 8 + 126, &f, &why), -1);
	{
		uint8_t h[10];

		assert_int_equal(ws_build_hdr(h, WS_OP_BINARY, 5), 2);
		assert_int_equal(h[0], 0x82);
		assert_int_equal(h[1], 5);
		assert_int_equal(ws_build_hdr(h, WS_OP_BINARY, 300), 4);
		assert_int_equal(ws_build_hdr(h, WS_OP_BINARY, 70000), 10);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_spdy_upgrade),
		cmocka_unit_test(test_http_websocket_upgrade),
		cmocka_unit_test(test_http_refusals),
		cmocka_unit_test(test_http_bounds),
		cmocka_unit_test(test_spdy_headers_roundtrip),
		cmocka_unit_test(test_spdy_header_refusals),
		cmocka_unit_test(test_spdy_frames),
		cmocka_unit_test(test_ws_sha1_vectors),
		cmocka_unit_test(test_ws_accept),
		cmocka_unit_test(test_ws_frames),
	};

	return cmocka_run_group_tests_name("stream_parsers", tests, NULL, NULL);
}
