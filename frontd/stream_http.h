/*
 * frontd streaming server: the HTTP/1.1 request that opens a stream.
 *
 * A client opens an Exec/Attach/PortForward URL with one HTTP/1.1 request
 * that asks to switch protocols (SPDY/3.1 or WebSocket).  Only the request
 * head is parsed (no body is accepted) and only what the upgrade needs is
 * kept; everything is bounded: the head (HTTP_MAX_HEAD bytes), the number
 * of header lines, the target, and each kept value.
 */
#ifndef CRISP_FRONTD_STREAM_HTTP_H
#define CRISP_FRONTD_STREAM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_PROTOS 8
#define HTTP_PROTO_LEN 48

struct http_req {
	char method[8];
	char path[256];  /* target up to '?' */
	char query[512]; /* after '?', may be empty */
	bool conn_upgrade;  /* Connection lists "upgrade" */
	bool up_spdy;       /* Upgrade: SPDY/3.1 */
	bool up_websocket;  /* Upgrade: websocket */
	char ws_key[64];    /* Sec-WebSocket-Key */
	int ws_version;     /* Sec-WebSocket-Version, 0 when absent */
	/* X-Stream-Protocol-Version (SPDY) or Sec-WebSocket-Protocol, in
	 * the client's order, comma lists split */
	char protos[HTTP_MAX_PROTOS][HTTP_PROTO_LEN];
	int nprotos;
	char ws_protos[HTTP_MAX_PROTOS][HTTP_PROTO_LEN];
	int nws_protos;
};

/*
 * Parse the request head at buf (len bytes received so far).  Returns the
 * length of the head (through the empty line) when complete, 0 when more
 * bytes are needed, -1 when the request is refused: *status gets the HTTP
 * status to answer (400, 413 body, 414 target, 431 head too large, 505
 * version) and *why a static reason.
 */
ssize_t http_parse_request(const char *buf, size_t len, struct http_req *r, int *status, const char **why);

/* Whether name is one of the values of the comma-separated header list. */
bool http_list_has(const char *list, size_t len, const char *name);

#endif
