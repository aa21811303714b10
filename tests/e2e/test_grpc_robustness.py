"""frontd against hostile bytes on the raw CRI socket.

Every test speaks HTTP/2 by hand (h2raw: frames, HPACK and gRPC prefixes
written there, not by grpcio) to a real crispd's frontd, checks the answer
the protocol calls for (GOAWAY code, RST_STREAM, grpc-status), and then
asserts with h2raw.FrontWatch that the abuse cost at most a connection or a
stream: the same frontd pid, no death or kill of frontd and no error or
warning of frontd or crispd in crispd's log, no sanitizer report, Version
still answers, every client connection is closed, frontd's other fds are
exactly those of the baseline, and its VmRSS is back within a tolerance of
the baseline.

Each abuse runs twice: a first round (the same, or smaller) warms frontd up
(allocator size classes, nghttp2's and our buffers, ASan's quarantine),
then the baseline is taken, then the full round runs and is checked.

Memory tolerance.  Under ASan (build-san) a freed block is not reused at
once: it waits in the allocator's quarantine, 256 MiB by default, so RSS
grows with the volume of memory an abuse churns through whether or not
anything leaks (10 000 abandoned streams: +54 MiB per round with the
default).  These tests therefore run crispd with ASAN_OPTIONS
quarantine_size_mb=4 (h2raw.watched_crisp): use-after-free is still caught
for the most recent 4 MiB of frees, and RSS then follows live memory.  The
tolerance is that quarantine plus 4 MiB for allocator regions first touched
by the full round (measured: at most +3 MiB after the warm-up), 8 MiB in
all, against a baseline of 10-20 MiB under ASan (90 MiB once the Status
burst has peaked).  With a plain build it is 4 MiB (measured: at most
+1.5 MiB, after the Status burst).  A leak of the partial request buffer
of each abandoned stream (+30 MiB) fails test_10000_abandoned_streams;
small per-call leaks are below what RSS can show in a test this short, and
are the unit tests' (LeakSanitizer) job.
"""

import os
import random
import struct
import time

import pytest

from h2raw import (ACK, CANCEL, COMPRESSION_ERROR, CONTINUATION, DATA, DEADLINE_EXCEEDED,
                   END_HEADERS, END_STREAM, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, HEADERS,
                   INTERNAL, INVALID_ARGUMENT, MAX_WINDOW, NO_ERROR, OK, PADDED, PING, PREFACE,
                   PRIORITY, PRIORITY_FLAG, PROTOCOL_ERROR, PUSH_PROMISE, RESOURCE_EXHAUSTED,
                   RST_STREAM, S_HEADER_TABLE_SIZE, S_INITIAL_WINDOW_SIZE,
                   S_MAX_CONCURRENT_STREAMS, S_MAX_FRAME_SIZE, SETTINGS, STREAM_CLOSED,
                   UNIMPLEMENTED, WINDOW_UPDATE,
                   H2Conn, encode_headers, frame, grpc_msg, request_headers,
                   settings_payload, watched_crisp)

V = "/runtime.v1.RuntimeService/Version"
S = "/runtime.v1.RuntimeService/Status"
MIB = 1024 * 1024
MAX_MSG = 16 * MIB              # frontd.max_recv_msg_size (default)
MAX_HDR_LIST = 64 * 1024        # frontd.max_header_list_size (default)
MAX_STREAMS = 256               # frontd.max_streams (default)
MAX_CONNS = 64                  # frontd.max_connections (default)

VERSION_REQ = b"\x0a\x02v1"     # VersionRequest{version: "v1"}


@pytest.fixture
def front(tmpdir_short, monkeypatch):
    """A crispd of the build under test with ASan's quarantine bounded (see
    above), and a FrontWatch on its frontd."""
    with watched_crisp(tmpdir_short, monkeypatch) as w:
        yield w


def abuse_twice(front, abuse, warm=None):
    """warm() (or abuse()), baseline, abuse(), check.  Returns the RSS delta."""
    t0 = time.monotonic()
    (warm or abuse)()
    base_fds, base_rss = front.baseline()
    t1 = time.monotonic()
    abuse()
    t2 = time.monotonic()
    delta = front.check()
    print(f"\n{os.environ.get('PYTEST_CURRENT_TEST', '?').split(' ')[0]}: warm-up {t1 - t0:.2f}s, "
          f"abuse {t2 - t1:.2f}s; frontd fds {base_fds}, VmRSS {base_rss} kB at the baseline, "
          f"{delta:+d} kB after (tolerance {front.rss_tol_kb} kB)")
    return delta


def expect_closed(c, timeout=5.0):
    """The server closes the connection in time (not by its 10 s handshake
    timeout).  Returns the GOAWAY seen, or None."""
    try:
        c.read_until_closed(timeout)
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open (goaway {c.goaway})")
    finally:
        c.close()
    return c.goaway


def expect_goaway(c, code, timeout=5.0):
    g = expect_closed(c, timeout)
    assert g is not None and g[1] == code, f"want GOAWAY code {code}, got {g}"
    return g


def hdr_block(path=V, extra=(), **kw):
    return encode_headers(request_headers(path, extra, **kw))


def call_ok(c, path=V, msg=VERSION_REQ):
    r = c.call(path, msg)
    assert r.grpc_status == OK, r
    assert len(r.messages()) == 1, r
    return r


# ---- the connection preface ----

def test_garbage_instead_of_preface(front):
    rnd = random.Random(1)
    cases = [
        b"GET / HTTP/1.1\r\nHost: crisp\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(SETTINGS, 0, 0),
        bytes.fromhex("16030100c8010000c40303") + rnd.randbytes(200),   # a TLS hello
        rnd.randbytes(4096),
        b"\0" * (1 * MIB),
    ]

    def abuse():
        for data in cases:
            c = H2Conn(front.sock, handshake=False)
            c.try_send(data)
            expect_closed(c)
        # A partial preface, then gone; connect and go at once.
        for data in (PREFACE[:10], b""):
            c = H2Conn(front.sock, handshake=False)
            c.try_send(data)
            c.close()

    abuse_twice(front, abuse)


def test_preface_then_garbage_frames(front):
    rnd = random.Random(2)
    req = hdr_block()
    cases = [   # (frames after a good handshake, GOAWAY code)
        (frame(DATA, 0, 0, b"xx"), PROTOCOL_ERROR),
        (frame(SETTINGS, 0, 0, b"\0" * 5), FRAME_SIZE_ERROR),
        (frame(SETTINGS, ACK, 0, b"\0" * 6), FRAME_SIZE_ERROR),
        (frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)), PROTOCOL_ERROR),
        (frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW)), FLOW_CONTROL_ERROR),
        (frame(HEADERS, END_HEADERS | END_STREAM, 2, req), PROTOCOL_ERROR),     # even id
        (frame(HEADERS, END_HEADERS | END_STREAM, 0, req), PROTOCOL_ERROR),
        (frame(HEADERS, END_HEADERS | PRIORITY_FLAG, 1, b"\0\0\0\1\x10" + req), PROTOCOL_ERROR),
        (frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2" + req), PROTOCOL_ERROR),
        (frame(CONTINUATION, END_HEADERS, 1, req), PROTOCOL_ERROR),
        (frame(HEADERS, 0, 1, req) + frame(CONTINUATION, END_HEADERS, 3, b""), PROTOCOL_ERROR),
        (frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\xff\x0f"), COMPRESSION_ERROR),
        (frame(PING, 0, 0, b"\0" * 7), FRAME_SIZE_ERROR),
        (frame(PING, 0, 1, b"\0" * 8), PROTOCOL_ERROR),
        (frame(PRIORITY, 0, 1, b"\0" * 4), FRAME_SIZE_ERROR),
        (frame(RST_STREAM, 0, 99, struct.pack(">I", CANCEL)), PROTOCOL_ERROR),
        (frame(DATA, 0, 5, b"xx"), PROTOCOL_ERROR),                             # idle stream
        (frame(HEADERS, END_HEADERS, 1, req) +
         frame(DATA, PADDED, 1, bytes([200]) + b"x" * 9), PROTOCOL_ERROR),     # padding > frame
        (frame(HEADERS, END_HEADERS | END_STREAM, 1, req) + frame(DATA, 0, 1, b"x"),
         STREAM_CLOSED),
        (rnd.randbytes(65536), None),                                          # whatever it makes of it
    ]

    def abuse():
        for data, code in cases:
            c = H2Conn(front.sock)
            c.try_send(data)
            if code is None:
                expect_closed(c)
            else:
                expect_goaway(c, code)
        # The first frame is not SETTINGS.
        c = H2Conn(front.sock, handshake=False)
        c.try_send(PREFACE + frame(PING, 0, 0, b"\0" * 8))
        expect_goaway(c, PROTOCOL_ERROR)
        # Stream errors cost the stream only (RST_STREAM PROTOCOL_ERROR),
        # and unknown frame types are ignored (RFC 9113 4.1).
        with H2Conn(front.sock) as c:
            bad = [
                request_headers(V, [("X-Upper", "1")]),
                request_headers(V, [("connection", "close")]),
                request_headers(V, [("x-nul", "a\0b")]),
                request_headers(V, [(":path", V)]),
                request_headers(V) + [(":late", "x")],
                request_headers("*"),
                [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                 ("content-type", "application/grpc")],
            ]
            for h in bad:
                sid = c.new_sid()
                c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, encode_headers(h)))
                st = c.wait_stream(sid)
                assert st.rst == PROTOCOL_ERROR and st.headers is None, (h, st)
            c.send(frame(0x42, 0, 0, b"unknown") + frame(0xfa, 0xff, 7, b"x" * 100))
            call_ok(c)

    abuse_twice(front, abuse)


def test_frame_over_max_frame_size(front):
    def abuse():
        # The server advertised no SETTINGS_MAX_FRAME_SIZE: 16384 applies.
        c = H2Conn(front.sock)
        assert c.peer[S_MAX_FRAME_SIZE] == 16384
        sid = c.new_sid()
        c.send(frame(HEADERS, END_HEADERS, sid, hdr_block()))
        c.try_send(frame(DATA, 0, sid, b"\0" * 16385))
        expect_goaway(c, FRAME_SIZE_ERROR)

        c = H2Conn(front.sock)
        c.try_send(frame(HEADERS, END_HEADERS, c.new_sid(), hdr_block() + b"\0" * 20000))
        expect_goaway(c, FRAME_SIZE_ERROR)

        # A header that claims 16 MiB - 1: refused on the header alone,
        # nothing waited for or allocated.
        c = H2Conn(front.sock)
        c.try_send(frame(DATA, 0, 1, b"x" * 100, length=(1 << 24) - 1))
        expect_goaway(c, FRAME_SIZE_ERROR)

    abuse_twice(front, abuse)


# ---- header blocks ----

def test_header_list_too_large(front):
    many = [(f"x-h{i}", "v" * 1000) for i in range(80)]             # 82 KiB of fields
    tiny = [(f"x{i}", "") for i in range(MAX_HDR_LIST // 34 + 10)]    # 32 B overhead each

    def abuse():
        with H2Conn(front.sock) as c:
            for extra in (many, tiny):
                sid = c.new_sid()
                c.send_headers(sid, request_headers(V, extra))
                c.send_data(sid, grpc_msg(VERSION_REQ), end_stream=True)
                st = c.wait_stream(sid)
                assert st.trailers_only and st.grpc_status == RESOURCE_EXHAUSTED, st
                assert "header list too large" in st.grpc_message
            # Trailers from the client count too.
            sid = c.new_sid()
            c.send_headers(sid, request_headers(V))
            c.send_data(sid, grpc_msg(VERSION_REQ))
            c.send_headers(sid, many, end_stream=True)
            st = c.wait_stream(sid)
            assert st.grpc_status == RESOURCE_EXHAUSTED, st
            # Header blocks after the request's, again and again (HTTP/2
            # allows trailers only once, with END_STREAM; frontd checks the
            # rules itself, nghttp2's HTTP messaging is off): they count
            # against the same limit and cost no memory beyond it.
            sid = c.new_sid()
            c.send_headers(sid, request_headers(V))
            blk = encode_headers([("x-again", "v" * 200)])
            c.send(frame(HEADERS, END_HEADERS, sid, blk) * 2000)
            c.send_data(sid, grpc_msg(VERSION_REQ), end_stream=True)
            st = c.wait_stream(sid)
            assert st.grpc_status == RESOURCE_EXHAUSTED or st.rst == PROTOCOL_ERROR, st
            # Just under the limit is served.
            under = [(f"x-u{i}", "v" * 1000) for i in range(55)]
            sid = c.new_sid()
            c.send_headers(sid, request_headers(V, under))
            c.send_data(sid, grpc_msg(VERSION_REQ), end_stream=True)
            assert c.wait_stream(sid).grpc_status == OK
            call_ok(c)
        # One field longer than nghttp2 decodes (64 KiB): the connection.
        c = H2Conn(front.sock)
        sid = c.new_sid()
        try:
            c.send_headers(sid, request_headers(V, [("x-big", "v" * 70000)]), end_stream=True)
        except (BrokenPipeError, ConnectionResetError):
            pass  # frontd may close before the last CONTINUATION is written
        expect_goaway(c, COMPRESSION_ERROR)

    abuse_twice(front, abuse)


def test_continuation_flood(front):
    def abuse():
        # HEADERS without END_HEADERS, then CONTINUATION frames without end:
        # empty ones (CVE-2024-27316 style), and full ones.
        for payload, n in ((b"", 10000), (b"\0" * 16384, 200)):
            c = H2Conn(front.sock)
            sid = c.new_sid()
            c.send(frame(HEADERS, 0, sid, hdr_block()))
            t0 = time.monotonic()
            burst = frame(CONTINUATION, 0, sid, payload) * 100
            for _ in range(n // 100):
                if not c.try_send(burst):
                    break
            expect_closed(c)
            assert time.monotonic() - t0 < 5

    abuse_twice(front, abuse)


# ---- gRPC messages ----

def test_grpc_message_framing(front):
    cases = [   # (body bytes, extra headers, grpc-status, message part)
        (grpc_msg(VERSION_REQ, length=100), (), INTERNAL, "truncated"),
        (grpc_msg(VERSION_REQ)[:3], (), INTERNAL, "truncated"),                 # half a prefix
        (grpc_msg(VERSION_REQ, length=2), (), INTERNAL, "more than one"),     # body longer
        (grpc_msg(VERSION_REQ) * 2, (), INTERNAL, "more than one"),
        (grpc_msg(VERSION_REQ, flag=1), (), INTERNAL, "compressed flag"),
        (grpc_msg(VERSION_REQ, flag=1), (("grpc-encoding", "identity"),), INTERNAL, "compressed flag"),
        (grpc_msg(VERSION_REQ, flag=0x80), (), INTERNAL, "unexpected payload format"),
        (grpc_msg(VERSION_REQ), (("grpc-encoding", "gzip"),), UNIMPLEMENTED, "grpc-encoding"),
        (b"", (), INTERNAL, "no request message"),
    ]

    def abuse():
        with H2Conn(front.sock) as c:
            for body, extra, code, text in cases:
                sid = c.start_call(V, body, extra)
                st = c.wait_stream(sid)
                assert st.grpc_status == code and text in st.grpc_message, (body, st)
                assert st.messages() == [], st
            # A message cut into 1-byte DATA frames, and after 10 000 empty
            # DATA frames, is one message all the same.
            sid = c.new_sid()
            c.send_headers(sid, request_headers(V))
            c.send(b"".join(frame(DATA, 0, sid, bytes([b])) for b in grpc_msg(VERSION_REQ)))
            c.send(frame(DATA, END_STREAM, sid, b""))
            assert c.wait_stream(sid).grpc_status == OK
            sid = c.new_sid()
            c.send_headers(sid, request_headers(V))
            c.send(frame(DATA, 0, sid, b"") * 10000 + frame(DATA, END_STREAM, sid, grpc_msg(VERSION_REQ)))
            assert c.wait_stream(sid).grpc_status == OK
            # Bodies on methods that answer from another role (Status: execd
            # and netd) are checked the same way before any ipc.
            sid = c.start_call(S, grpc_msg(b"", length=7))
            assert c.wait_stream(sid).grpc_status == INTERNAL
            call_ok(c)

    abuse_twice(front, abuse)


def test_malformed_trailers_and_extra_header_blocks(front):
    """RFC 9113 8.1: pseudo-headers or bad names in trailers, or a second
    header block that does not end the request, make the request malformed:
    the stream is reset with PROTOCOL_ERROR and nothing is dispatched."""
    bad_trailers = [
        ((":path", "/x"),),
        (("X-Bad", "1"),),
        (("connection", "close"),),
        (("x-nl", "a\nb"),),
    ]

    def abuse():
        with H2Conn(front.sock) as c:
            for tr in bad_trailers:
                sid = c.new_sid()
                c.send_headers(sid, request_headers(V))
                c.send_data(sid, grpc_msg(VERSION_REQ))
                c.send_headers(sid, list(tr), end_stream=True)
                st = c.wait_stream(sid)
                assert st.rst == 1 and st.grpc_status is None, (tr, st)
            # A second header block without END_STREAM, then the end.
            sid = c.new_sid()
            c.send_headers(sid, request_headers(V))
            c.send_data(sid, grpc_msg(VERSION_REQ))
            c.send_headers(sid, [("x-trailer", "1")])
            c.send(frame(DATA, END_STREAM, sid, b""))
            st = c.wait_stream(sid)
            assert st.rst == 1, st
            # Well-formed trailers are fine.
            sid = c.new_sid()
            c.send_headers(sid, request_headers(V))
            c.send_data(sid, grpc_msg(VERSION_REQ))
            c.send_headers(sid, [("x-trailer", "1")], end_stream=True)
            assert c.wait_stream(sid).grpc_status == OK
            call_ok(c)

    abuse_twice(front, abuse)


def test_message_over_max_size(front):
    def varint(v):
        out = bytearray()
        while v >= 0x80:
            out.append(v & 0x7f | 0x80)
            v >>= 7
        out.append(v)
        return bytes(out)

    # A VersionRequest of exactly max_recv_msg_size: one unknown field 15.
    n = MAX_MSG - 1 - len(varint(MAX_MSG))
    exact = b"\x7a" + varint(n) + b"z" * n
    assert len(exact) == MAX_MSG

    def abuse():
        with H2Conn(front.sock, timeout=30) as c:
            # The prefix alone decides: RESOURCE_EXHAUSTED before anything is
            # buffered, while the client is still sending.
            for claim in (MAX_MSG + 1, 0xffffffff):
                sid = c.start_call(V, grpc_msg(b"x" * 60000, length=claim), end_stream=False)
                st = c.wait_stream(sid)
                assert st.trailers_only and st.grpc_status == RESOURCE_EXHAUSTED, st
                assert f"larger than max ({claim} vs. {MAX_MSG})" in st.grpc_message, st
                # The server stops the request with RST_STREAM(NO_ERROR);
                # what the client still sends for it is dropped, not fatal.
                c.ping()
                c.send_data(sid, b"y" * 200000)
                c.ping()
                assert st.rst in (None, NO_ERROR), st
                call_ok(c)
            # Exactly the limit passes the transport and reaches the
            # decoder, which bounds what a request may carry in strings,
            # bytes and unknown fields (8 MiB): INVALID_ARGUMENT, not
            # RESOURCE_EXHAUSTED.  One byte more never reaches it.
            sid = c.start_call(V, grpc_msg(exact))
            st = c.wait_stream(sid)
            assert st.grpc_status == INVALID_ARGUMENT and "exceed" in st.grpc_message, st
            sid = c.start_call(V, grpc_msg(exact + b"z"))
            st = c.wait_stream(sid)
            assert st.grpc_status == RESOURCE_EXHAUSTED, st
            call_ok(c)
        # A client that announces 16 MiB, sends 1 MiB and vanishes.
        with H2Conn(front.sock) as c:
            c.start_call(V, grpc_msg(b"x" * MIB, length=MAX_MSG), end_stream=False)
            c.ping()

    abuse_twice(front, abuse)


def test_invalid_protobuf(front):
    bad = [
        b"\x0a\x10abc",                 # length past the end
        b"\x0a",                        # tag, no length
        b"\x0f",                        # wire type 7
        b"\x08" + b"\xff" * 11,         # varint over 10 bytes
        b"\x00\x01",                    # field number 0
        b"\x0a\x02v1\x0b",              # start group, no end
        b"\x0a\xff\xff\xff\xff\x0f",    # length 4 GiB
    ]

    def abuse():
        with H2Conn(front.sock) as c:
            for body in bad:
                for path, name in ((V, "VersionRequest"), (S, "StatusRequest")):
                    st = c.call(path, body)
                    assert st.grpc_status == INVALID_ARGUMENT, (path, body, st)
                    assert st.grpc_message == f"malformed {name} message", st
            # Unknown fields are not an error.
            call_ok(c, V, VERSION_REQ + b"\x7a\x03abc" + b"\xa0\x06\x01")
            call_ok(c)

    abuse_twice(front, abuse)


def test_unknown_method_and_bad_requests(front):
    def abuse():
        with H2Conn(front.sock) as c:
            for path in ("/runtime.v1.RuntimeService/NoSuch", "/runtime.v1.NoService/Version",
                         "/runtime.v1.RuntimeService/Version/", "/" + "p" * 10000):
                st = c.call(path, VERSION_REQ)
                assert st.trailers_only and st.grpc_status == UNIMPLEMENTED, (path, st)
                assert st.grpc_message.startswith("unknown method " + path[:100]), st
                assert len(st.grpc_message) <= len("unknown method ") + 128
            # Bytes that are not printable ASCII come back percent-encoded.
            st = c.call("/\xff\x01bad%", VERSION_REQ)
            assert st.grpc_status == UNIMPLEMENTED, st
            msg = dict(st.headers)["grpc-message"]
            assert msg == "unknown method /%C3%BF%01bad%25", msg
            assert st.grpc_message == "unknown method /\xff\x01bad%"
            # Not POST: HTTP 405; not application/grpc: 415 (grpc-go's way).
            sid = c.new_sid()
            c.send_headers(sid, request_headers(V, method="GET"), end_stream=True)
            st = c.wait_stream(sid)
            assert st.status == "405" and st.grpc_status == INTERNAL, st
            sid = c.new_sid()
            c.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", V),
                                 (":authority", "x"), ("content-type", "text/plain")],
                           end_stream=True)
            st = c.wait_stream(sid)
            assert st.status == "415" and st.grpc_status == INTERNAL, st
            sid = c.start_call(V, grpc_msg(VERSION_REQ), [("grpc-timeout", "123456789S")])
            st = c.wait_stream(sid)
            assert st.grpc_status == INTERNAL and "grpc-timeout" in st.grpc_message, st
            call_ok(c)

    abuse_twice(front, abuse)


# ---- streams ----

def open_and_abandon(sock, total, per_conn=200, partial_every=2):
    """Open `total` streams, per_conn at a time on sequential connections
    (under SETTINGS_MAX_CONCURRENT_STREAMS), each HEADERS without
    END_STREAM and every partial_every-th with half a message; then reset
    them all (odd connections) or just close the connection (even ones)."""
    done = k = 0
    while done < total:
        n = min(per_conn, total - done)
        c = H2Conn(sock)
        out, sids = bytearray(), []
        for i in range(n):
            sid = c.new_sid()
            sids.append(sid)
            out += frame(HEADERS, END_HEADERS, sid, hdr_block())
            if partial_every and i % partial_every == 0:
                out += frame(DATA, 0, sid, grpc_msg(b"x" * 3000, length=8000))
        c.send(bytes(out))
        c.ping()                                # the server has read them all
        assert all(s.done is False for s in c.streams.values()), c.streams
        if k % 2:
            c.send(b"".join(frame(RST_STREAM, 0, s, struct.pack(">I", CANCEL)) for s in sids))
            c.ping()
        c.close()
        done += n
        k += 1


def test_10000_abandoned_streams(front):
    abuse_twice(front, lambda: open_and_abandon(front.sock, 10000),
                warm=lambda: open_and_abandon(front.sock, 2000))


def test_stream_limit(front):
    def abuse():
        # More than SETTINGS_MAX_CONCURRENT_STREAMS at once: the connection
        # goes (nghttp2 treats it as a connection error), nothing else.
        c = H2Conn(front.sock)
        assert c.peer[S_MAX_CONCURRENT_STREAMS] == MAX_STREAMS
        c.try_send(b"".join(frame(HEADERS, END_HEADERS, c.new_sid(), hdr_block())
                            for _ in range(MAX_STREAMS + 20)))
        g = expect_goaway(c, PROTOCOL_ERROR)
        assert b"max concurrent streams" in g[2], g

    abuse_twice(front, abuse)


def test_rapid_reset(front):
    def abuse():
        # HEADERS + RST_STREAM pairs (CVE-2023-44487): nghttp2's rate limit
        # (burst 1000) ends the connection long before 5000.
        c = H2Conn(front.sock)
        out = bytearray()
        for _ in range(5000):
            sid = c.new_sid()
            out += frame(HEADERS, END_HEADERS, sid, hdr_block())
            out += frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
        c.try_send(bytes(out))
        g = expect_closed(c)
        assert g is not None and g[0] < 2 * 5000 - 1, f"all 5000 streams were processed: {g}"

    abuse_twice(front, abuse)


def test_connection_limit(front):
    def abuse():
        conns = [H2Conn(front.sock) for _ in range(MAX_CONNS)]
        try:
            for c in conns[::8]:
                call_ok(c)
            # Every connection has a call in progress (a request not yet
            # finished): one more is accepted by the kernel and closed by
            # frontd at once.
            for c in conns:
                c.send_headers(c.new_sid(), request_headers(V))
            for _ in range(20):
                with H2Conn(front.sock, handshake=False) as c:
                    c.try_send(PREFACE + frame(SETTINGS, 0, 0))
                    frames = c.read_until_closed(5)
                    assert frames == [], f"connection {MAX_CONNS + 1} was served: {frames}"
            call_ok(conns[-1])
        finally:
            for c in conns:
                c.close()
        front.wait_no_conns()
        # Idle connections (critest opens one per spec and never closes
        # them): a newcomer takes the slot of the one idle the longest.
        conns = [H2Conn(front.sock) for _ in range(MAX_CONNS)]
        try:
            call_ok(conns[0])              # conns[1] is now the oldest idle
            with H2Conn(front.sock) as c:
                call_ok(c)
            conns[1].read_until_closed(5)  # evicted
            for c in conns[0:1] + conns[2::9]:
                call_ok(c)                 # the others are untouched
        finally:
            for c in conns:
                c.close()
        # Slots come back as connections close.
        front.wait_no_conns()
        with H2Conn(front.sock) as c:
            call_ok(c)

    abuse_twice(front, abuse)


def test_status_burst(front):
    """As many Status calls at once as frontd admits (60 connections x 250
    streams): each is an asynchronous request to execd and one to netd over
    ipc; every one is answered correctly, nothing is refused or dropped."""
    def abuse():
        conns = [H2Conn(front.sock, timeout=60) for _ in range(MAX_CONNS - 4)]
        try:
            sids = []
            for c in conns:
                out, mine = bytearray(), []
                for _ in range(MAX_STREAMS - 6):
                    sid = c.new_sid()
                    mine.append(sid)
                    out += frame(HEADERS, END_HEADERS, sid, hdr_block(S))
                    out += frame(DATA, END_STREAM, sid, grpc_msg(b""))
                c.send(bytes(out))
                sids.append(mine)
            for c, mine in zip(conns, sids):
                for sid in mine:
                    st = c.wait_stream(sid)
                    assert st.grpc_status == OK, st
                    m = st.messages()[0]
                    assert b"\x0cRuntimeReady\x10\x01" in m and b"\x0cNetworkReady\x10\x01" in m, m
        finally:
            for c in conns:
                c.close()

    abuse_twice(front, abuse)


# ---- clients that go away ----

def test_client_vanishes_mid_call(front):
    def abuse(n=200):
        # Status crosses to execd and netd: the answer comes back after the
        # client is gone (the call is cancelled under the handler).
        for i in range(n):
            c = H2Conn(front.sock)
            extra = [("grpc-timeout", ("1m", "1u", "5S")[i % 3])] if i % 2 else []
            c.start_call(S, grpc_msg(b""), extra)
            c.close()
        # Gone with a request half sent: inside the body, inside a frame,
        # inside a header block.
        for i in range(n // 2):
            c = H2Conn(front.sock)
            sid = c.new_sid()
            c.send_headers(sid, request_headers(V))
            tail = (grpc_msg(VERSION_REQ, length=50),
                    frame(DATA, 0, sid, b"x" * 1000)[:500],
                    frame(HEADERS, 0, sid + 2, hdr_block())[:20])[i % 3]
            c.send(tail)
            c.close()
        # 250 calls pipelined and never read, then gone.
        c = H2Conn(front.sock)
        out = bytearray()
        for i in range(250):
            sid = c.new_sid()
            out += frame(HEADERS, END_HEADERS, sid, hdr_block(S if i % 2 else V))
            out += frame(DATA, END_STREAM, sid, grpc_msg(b"" if i % 2 else VERSION_REQ))
        c.send(bytes(out))
        c.close()
        # Still answered properly when the client stays; a deadline that
        # passes while execd and netd are being asked is answered
        # DEADLINE_EXCEEDED, and their late answers go nowhere.
        with H2Conn(front.sock) as c:
            st = c.call(S, b"", extra=[("grpc-timeout", "0m")])
            assert st.grpc_status == DEADLINE_EXCEEDED, st
            st = c.call(S, b"")
            assert st.grpc_status == OK, st

    abuse_twice(front, abuse, warm=lambda: abuse(60))


# ---- PING ----

def test_ping_is_answered(front):
    def abuse():
        with H2Conn(front.sock) as c:
            assert c.ping(b"\x00\x01crisp\xff") == b"\x00\x01crisp\xff"
            # 200 at once (under nghttp2's limit of 256 unsent ACKs): 200
            # ACKs, in order; 10 times.
            for k in range(10):
                pays = [struct.pack(">Q", k * 1000 + i) for i in range(200)]
                n0 = len(c.pings)
                c.send(b"".join(frame(PING, 0, 0, p) for p in pays))
                deadline = time.monotonic() + 10
                while len(c.pings) < n0 + len(pays):
                    c.recv_frame(timeout=max(0.0, deadline - time.monotonic()))
                assert c.pings[n0:] == pays
            # An unsolicited PING ACK is ignored.
            c.send(frame(PING, ACK, 0, b"unasked!"))
            assert c.ping(b"again!!!") == b"again!!!"
            call_ok(c)
        # A PING flood that never reads the ACKs is cut off (nghttp2's
        # outbound ACK limit), the process is not.
        c = H2Conn(front.sock)
        burst = frame(PING, 0, 0, b"12345678") * 10000
        for _ in range(30):
            if not c.try_send(burst):
                break
        try:
            expect_closed(c)
        except AssertionError:
            pytest.fail("a client that floods PINGs and reads nothing was not dropped")

    abuse_twice(front, abuse)


def test_settings_abuse(front):
    def abuse():
        # A SETTINGS flood without reading the ACKs: dropped.
        c = H2Conn(front.sock)
        burst = frame(SETTINGS, 0, 0, settings_payload([(S_INITIAL_WINDOW_SIZE, 65535)])) * 10000
        for _ in range(30):
            if not c.try_send(burst):
                break
        expect_closed(c)
        # Odd but legal settings keep working: tiny window and frame size,
        # a header table of 0.
        with H2Conn(front.sock, handshake=False) as c:
            c.handshake(settings=((S_HEADER_TABLE_SIZE, 0), (S_INITIAL_WINDOW_SIZE, 1),
                                  (S_MAX_FRAME_SIZE, 16384)))
            sid = c.start_call(V, grpc_msg(VERSION_REQ))
            # 1-byte stream window: the server sends the answer a byte at a time.
            deadline = time.monotonic() + 10
            while not c.stream(sid).done:
                f = c.recv_frame(timeout=max(0.0, deadline - time.monotonic()))
                if f.type == DATA and f.payload:
                    c.send(frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", len(f.payload))))
            st = c.stream(sid)
            assert st.grpc_status == OK and len(st.messages()) == 1, st

    abuse_twice(front, abuse)
