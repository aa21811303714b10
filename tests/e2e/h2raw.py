"""A hand-driven HTTP/2 + gRPC client for tests that must send what no real
client would: raw frames over a unix socket, with the framing written here
(RFC 9113), HPACK (RFC 7541: literal requests without Huffman, a complete
decoder with Huffman and the dynamic table for answers) and gRPC's 5-byte
message prefix.

    c = H2Conn(sock_path)            # preface + SETTINGS, waits for the server's
    r = c.call("/runtime.v1.RuntimeService/Version", b"")
    r.grpc_status, r.grpc_message, r.messages()

Lower level: c.send(frame(type, flags, stream, payload)), c.recv_frame(),
c.wait_stream(sid), c.read_until_closed().  No third-party package.
"""

import contextlib
import os
import re
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
# Flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# Settings
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, \
    S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = range(1, 7)
# Error codes (RFC 9113 7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, \
    STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, \
    CONNECT_ERROR, ENHANCE_YOUR_CALM = range(12)

DEFAULT_MAX_FRAME = 16384
MAX_WINDOW = (1 << 31) - 1

# gRPC status codes
OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, \
    PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, \
    UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED = range(17)


# ---- framing ----

def frame(ftype, flags, sid, payload=b"", length=None):
    """One frame.  length: a length field that lies about the payload."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7fffffff) + payload


def settings_payload(pairs):
    return b"".join(struct.pack(">HI", k, v) for k, v in pairs)


def grpc_msg(body, flag=0, length=None):
    """gRPC length-prefixed message; length: a prefix that lies."""
    return struct.pack(">BI", flag, len(body) if length is None else length) + body


def split_msgs(data):
    """Length-prefixed messages of a response body: [(flag, bytes)]."""
    out, i = [], 0
    while i < len(data):
        if len(data) - i < 5:
            raise ValueError(f"partial prefix at {i}: {data[i:]!r}")
        flag, n = struct.unpack(">BI", data[i:i + 5])
        if len(data) - i - 5 < n:
            raise ValueError(f"message at {i} claims {n} bytes, {len(data) - i - 5} left")
        out.append((flag, data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


# ---- HPACK ----

class HpackError(Exception):
    pass


STATIC = [
    (b":authority", b""), (b":method", b"GET"), (b":method", b"POST"), (b":path", b"/"),
    (b":path", b"/index.html"), (b":scheme", b"http"), (b":scheme", b"https"),
    (b":status", b"200"), (b":status", b"204"), (b":status", b"206"), (b":status", b"304"),
    (b":status", b"400"), (b":status", b"404"), (b":status", b"500"),
    (b"accept-charset", b""), (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""), (b"accept-ranges", b""), (b"accept", b""),
    (b"access-control-allow-origin", b""), (b"age", b""), (b"allow", b""),
    (b"authorization", b""), (b"cache-control", b""), (b"content-disposition", b""),
    (b"content-encoding", b""), (b"content-language", b""), (b"content-length", b""),
    (b"content-location", b""), (b"content-range", b""), (b"content-type", b""),
    (b"cookie", b""), (b"date", b""), (b"etag", b""), (b"expect", b""), (b"expires", b""),
    (b"from", b""), (b"host", b""), (b"if-match", b""), (b"if-modified-since", b""),
    (b"if-none-match", b""), (b"if-range", b""), (b"if-unmodified-since", b""),
    (b"last-modified", b""), (b"link", b""), (b"location", b""), (b"max-forwards", b""),
    (b"proxy-authenticate", b""), (b"proxy-authorization", b""), (b"range", b""),
    (b"referer", b""), (b"refresh", b""), (b"retry-after", b""), (b"server", b""),
    (b"set-cookie", b""), (b"strict-transport-security", b""), (b"transfer-encoding", b""),
    (b"user-agent", b""), (b"vary", b""), (b"via", b""), (b"www-authenticate", b""),
]
assert len(STATIC) == 61

# RFC 7541 Appendix B: code lengths of symbols 0..256.  The code is
# canonical (codes of one length are consecutive, in symbol order), so the
# lengths determine it; _huff_build() checks it against known codes.
_HUFF_LENS = """
13 23 28 28 28 28 28 28 28 24 30 28 28 30 28 28 28 28 28 28 28 28 30 28 28 28 28 28 28 28 28 28
6 10 10 12 13 6 8 11 10 10 8 11 8 6 6 6 5 5 5 6 6 6 6 6 6 6 7 8 15 6 12 10
13 6 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 8 7 8 13 19 13 14 6
15 5 6 5 6 5 6 6 6 5 7 7 6 6 6 5 6 7 6 5 5 6 7 7 7 7 7 15 11 14 13 28
20 22 20 20 22 22 22 23 22 23 23 23 23 23 24 23 24 24 22 23 24 23 23 23 23 21 22 23 22 23 23 24
22 21 20 22 22 23 23 21 23 22 22 24 21 22 23 23 21 21 22 21 23 22 23 23 20 22 22 22 23 22 22 23
26 26 20 19 22 23 22 25 26 26 26 27 27 26 24 25 19 21 26 27 27 26 27 24 21 21 26 26 28 27 27 27
20 24 20 21 22 21 21 23 22 22 25 25 24 24 26 23 26 27 26 26 27 27 27 27 27 28 27 27 27 27 27 26
30
"""


def _huff_build():
    lens = [int(x) for x in _HUFF_LENS.split()]
    assert len(lens) == 257
    codes = [None] * 257
    table = {}
    code, prev = 0, 0
    for ln, sym in sorted((ln, s) for s, ln in enumerate(lens)):
        code <<= ln - prev
        prev = ln
        codes[sym] = (code, ln)
        table[(ln, code)] = sym
        code += 1
    # Kraft equality (a complete code), and known codes of RFC 7541.
    assert code == 1 << prev
    assert codes[0] == (0x1ff8, 13) and codes[256] == (0x3fffffff, 30)
    assert codes[ord("0")] == (0x0, 5) and codes[ord("a")] == (0x3, 5)
    assert codes[9] == (0xffffea, 24) and codes[255] == (0x3ffffee, 26)
    return codes, table


_HUFF_CODES, _HUFF_TABLE = _huff_build()
_HUFF_MAXLEN = 30


def huffman_decode(data):
    out = bytearray()
    code, ln = 0, 0
    for byte in data:
        for bit in range(7, -1, -1):
            code = (code << 1) | ((byte >> bit) & 1)
            ln += 1
            sym = _HUFF_TABLE.get((ln, code))
            if sym is not None:
                if sym == 256:
                    raise HpackError("EOS in a Huffman string")
                out.append(sym)
                code, ln = 0, 0
            elif ln > _HUFF_MAXLEN:
                raise HpackError("bad Huffman code")
    # Padding: fewer than 8 bits, all ones (a prefix of EOS).
    if ln > 7 or code != (1 << ln) - 1:
        raise HpackError("bad Huffman padding")
    return bytes(out)


def huffman_encode(data):
    bits, n = 0, 0
    for b in data:
        c, ln = _HUFF_CODES[b]
        bits = (bits << ln) | c
        n += ln
    pad = -n % 8
    bits = (bits << pad) | ((1 << pad) - 1)
    return (bits).to_bytes((n + pad) // 8, "big")


def hpack_int(v, nbits, first=0):
    m = (1 << nbits) - 1
    if v < m:
        return bytes([first | v])
    out = bytearray([first | m])
    v -= m
    while v >= 128:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack_str(s, huffman=False):
    if isinstance(s, str):
        s = s.encode()
    if huffman:
        h = huffman_encode(s)
        return hpack_int(len(h), 7, 0x80) + h
    return hpack_int(len(s), 7) + s


def encode_headers(headers, huffman=False):
    """Literal header fields without indexing, new names: no encoder state."""
    return b"".join(b"\x00" + hpack_str(n, huffman) + hpack_str(v, huffman)
                    for n, v in headers)


def _read_int(data, i, nbits):
    if i >= len(data):
        raise HpackError("truncated integer")
    m = (1 << nbits) - 1
    v = data[i] & m
    i += 1
    if v < m:
        return v, i
    shift = 0
    while True:
        if i >= len(data) or shift > 28:
            raise HpackError("bad integer")
        b = data[i]
        i += 1
        v += (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def _read_str(data, i):
    if i >= len(data):
        raise HpackError("truncated string")
    huff = data[i] & 0x80
    n, i = _read_int(data, i, 7)
    if i + n > len(data):
        raise HpackError("truncated string")
    s = bytes(data[i:i + n])
    return (huffman_decode(s) if huff else s), i + n


class Decoder:
    """HPACK decoder with the dynamic table (the peer's encoder uses it)."""

    def __init__(self, max_size=4096):
        self.dyn = []
        self.size = 0
        self.max = max_size

    def _get(self, idx):
        if idx == 0:
            raise HpackError("index 0")
        if idx <= len(STATIC):
            return STATIC[idx - 1]
        idx -= len(STATIC) + 1
        if idx >= len(self.dyn):
            raise HpackError("index past the dynamic table")
        return self.dyn[idx]

    def _evict(self):
        while self.size > self.max and self.dyn:
            n, v = self.dyn.pop()
            self.size -= len(n) + len(v) + 32

    def _add(self, n, v):
        self.dyn.insert(0, (n, v))
        self.size += len(n) + len(v) + 32
        self._evict()

    def decode(self, data):
        out, i = [], 0
        while i < len(data):
            b = data[i]
            if b & 0x80:                      # indexed
                idx, i = _read_int(data, i, 7)
                out.append(self._get(idx))
                continue
            if b & 0xe0 == 0x20:              # dynamic table size update
                self.max, i = _read_int(data, i, 5)
                self._evict()
                continue
            nbits = 6 if b & 0x40 else 4      # incremental indexing, or not
            idx, i = _read_int(data, i, nbits)
            if idx:
                name = self._get(idx)[0]
            else:
                name, i = _read_str(data, i)
            value, i = _read_str(data, i)
            if b & 0x40:
                self._add(name, value)
            out.append((name, value))
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in out]


def percent_decode(s):
    """grpc-message's percent-encoding, undone (bytes)."""
    out, i, raw = bytearray(), 0, s.encode("latin-1")
    while i < len(raw):
        h = raw[i + 1:i + 3]
        if raw[i] == 0x25 and len(h) == 2 and all(c in b"0123456789abcdefABCDEF" for c in h):
            out.append(int(h, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


# ---- connection ----

class Frame:
    __slots__ = ("type", "flags", "sid", "payload")

    def __init__(self, ftype, flags, sid, payload):
        self.type, self.flags, self.sid, self.payload = ftype, flags, sid, payload

    def __repr__(self):
        return f"Frame(type={self.type}, flags={self.flags:#x}, sid={self.sid}, len={len(self.payload)})"


class Stream:
    """What came back on one stream."""

    def __init__(self, sid):
        self.sid = sid
        self.headers = None     # first header block
        self.trailers = None    # second header block
        self.data = bytearray()
        self.ended = False      # END_STREAM from the server
        self.rst = None         # RST_STREAM error code

    @property
    def done(self):
        return self.ended or self.rst is not None

    def _field(self, name):
        for block in (self.trailers, self.headers):
            for n, v in block or ():
                if n == name:
                    return v
        return None

    @property
    def status(self):
        for n, v in self.headers or ():
            if n == ":status":
                return v
        return None

    @property
    def grpc_status(self):
        v = self._field("grpc-status")
        return None if v is None else int(v)

    @property
    def grpc_message(self):
        v = self._field("grpc-message")
        return None if v is None else percent_decode(v).decode("utf-8", "replace")

    @property
    def trailers_only(self):
        return self.trailers is None and self.ended and any(
            n == "grpc-status" for n, _ in self.headers or ())

    def messages(self):
        return [m for _, m in split_msgs(bytes(self.data))]

    def __repr__(self):
        return (f"Stream(sid={self.sid}, headers={self.headers}, trailers={self.trailers}, "
                f"data={len(self.data)}B, ended={self.ended}, rst={self.rst})")


class Closed(Exception):
    """The server closed the connection."""


REQ_HEADERS = (("content-type", "application/grpc"), ("te", "trailers"))


def request_headers(path, extra=(), method="POST"):
    return [(":method", method), (":scheme", "http"), (":path", path),
            (":authority", "localhost"), *REQ_HEADERS, *extra]


class H2Conn:
    def __init__(self, path, timeout=10.0, handshake=True):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = bytearray()
        self.dec = Decoder()
        self.next_sid = 1
        self.streams = {}
        self.peer = {S_INITIAL_WINDOW_SIZE: 65535, S_MAX_FRAME_SIZE: DEFAULT_MAX_FRAME}
        self.peer_settings_seen = False
        self.conn_window = 65535          # what we may send
        self.windows = {}                 # per stream, what we may send
        self.goaway = None                # (last stream id, error code, debug)
        self.pings = []                   # payloads of PING ACKs
        self.eof = False
        self._hblock = None               # (sid, block, flags) of a header block in progress
        if handshake:
            try:
                self.handshake()
            except BaseException:
                self.close()
                raise

    # -- raw I/O --

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """send(), but a server that already closed is not an error: False."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the server in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                raise Closed(f"server closed the connection (goaway={self.goaway})")
            self.buf += chunk

    def recv_frame(self, timeout=None):
        """The next frame, after its bookkeeping (SETTINGS acked, windows,
        header blocks decoded).  Raises Closed at EOF, TimeoutError."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(9, deadline)
        n = int.from_bytes(self.buf[0:3], "big")
        self._fill(9 + n, deadline)
        ftype, flags = self.buf[3], self.buf[4]
        sid = int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
        payload = bytes(self.buf[9:9 + n])
        del self.buf[:9 + n]
        f = Frame(ftype, flags, sid, payload)
        self._on_frame(f)
        return f

    # -- bookkeeping of what the server sends --

    def stream(self, sid):
        """What came back on stream sid so far (a Stream, made on first use)."""
        st = self.streams.get(sid)
        if st is None:
            st = self.streams[sid] = Stream(sid)
        return st

    def _header_block(self, sid, block, flags):
        hdrs = self.dec.decode(bytes(block))
        st = self.stream(sid)
        if st.headers is None:
            st.headers = hdrs
        else:
            st.trailers = hdrs
        if flags & END_STREAM:
            st.ended = True

    def _on_frame(self, f):
        p = f.payload
        if f.type == SETTINGS and not f.flags & ACK:
            for i in range(0, len(p) - len(p) % 6, 6):
                k, v = struct.unpack(">HI", p[i:i + 6])
                if k == S_INITIAL_WINDOW_SIZE:
                    delta = v - self.peer[S_INITIAL_WINDOW_SIZE]
                    for s in self.windows:
                        self.windows[s] += delta
                self.peer[k] = v
            self.peer_settings_seen = True
            self.try_send(frame(SETTINGS, ACK, 0))
        elif f.type == WINDOW_UPDATE and len(p) == 4:
            inc = struct.unpack(">I", p)[0] & 0x7fffffff
            if f.sid == 0:
                self.conn_window += inc
            elif f.sid in self.windows:
                self.windows[f.sid] += inc
        elif f.type == GOAWAY and len(p) >= 8:
            last, code = struct.unpack(">II", p[:8])
            self.goaway = (last & 0x7fffffff, code, p[8:])
        elif f.type == PING:
            if f.flags & ACK:
                self.pings.append(p)
            else:
                self.try_send(frame(PING, ACK, 0, p))
        elif f.type == RST_STREAM and len(p) == 4:
            self.stream(f.sid).rst = struct.unpack(">I", p)[0]
        elif f.type == DATA:
            if f.flags & PADDED and p:
                p = p[1:len(p) - p[0]]
            st = self.stream(f.sid)
            st.data += p
            if f.flags & END_STREAM:
                st.ended = True
        elif f.type == HEADERS:
            if f.flags & PADDED:
                pad = p[0]
                p = p[1:len(p) - pad]
            if f.flags & PRIORITY_FLAG:
                p = p[5:]
            if f.flags & END_HEADERS:
                self._header_block(f.sid, p, f.flags)
            else:
                self._hblock = (f.sid, bytearray(p), f.flags)
        elif f.type == CONTINUATION and self._hblock is not None:
            sid, blk, fl = self._hblock
            blk += p
            if f.flags & END_HEADERS:
                self._hblock = None
                self._header_block(sid, blk, fl)

    # -- client side --

    def handshake(self, settings=((S_ENABLE_PUSH, 0), (S_INITIAL_WINDOW_SIZE, MAX_WINDOW))):
        """Preface, our SETTINGS, a connection window as large as it gets;
        then wait for the server's SETTINGS."""
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings_payload(settings)) +
                  frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW - 65535)))
        deadline = time.monotonic() + self.timeout
        while not self.peer_settings_seen:
            self.recv_frame(timeout=max(0.0, deadline - time.monotonic()))

    def new_sid(self):
        sid = self.next_sid
        self.next_sid += 2
        self.windows[sid] = self.peer[S_INITIAL_WINDOW_SIZE]
        return sid

    def send_headers(self, sid, headers, end_stream=False, huffman=False):
        """A header block, split into HEADERS + CONTINUATION at the frame size."""
        blk = encode_headers(headers, huffman)
        mx = self.peer[S_MAX_FRAME_SIZE]
        chunks = [blk[i:i + mx] for i in range(0, len(blk), mx)] or [b""]
        out = bytearray()
        for i, c in enumerate(chunks):
            fl = END_HEADERS if i == len(chunks) - 1 else 0
            if i == 0:
                out += frame(HEADERS, fl | (END_STREAM if end_stream else 0), sid, c)
            else:
                out += frame(CONTINUATION, fl, sid, c)
        self.send(bytes(out))

    def send_data(self, sid, data, end_stream=False, deadline=None):
        """DATA within the frame size and the flow-control windows (reads
        frames while a window is closed)."""
        deadline = deadline or time.monotonic() + self.timeout
        data = memoryview(bytes(data))
        while True:
            n = min(len(data), self.peer[S_MAX_FRAME_SIZE], self.conn_window,
                    self.windows.get(sid, MAX_WINDOW))
            if n <= 0 and len(data) > 0:
                st = self.streams.get(sid)
                if st is not None and st.done:
                    return False          # answered and closed: no more to send
                self.recv_frame(timeout=max(0.0, deadline - time.monotonic()))
                continue
            last = n == len(data)
            self.send(frame(DATA, END_STREAM if (last and end_stream) else 0, sid, bytes(data[:n])))
            self.conn_window -= n
            if sid in self.windows:
                self.windows[sid] -= n
            data = data[n:]
            if last:
                return True

    def start_call(self, path, body=None, extra=(), end_stream=True):
        """HEADERS and (unless body is None) DATA with body as it is (the
        caller adds the gRPC prefix).  Returns the stream id."""
        sid = self.new_sid()
        if body is None:
            self.send_headers(sid, request_headers(path, extra), end_stream=end_stream)
        else:
            self.send_headers(sid, request_headers(path, extra))
            self.send_data(sid, body, end_stream=end_stream)
        return sid

    def wait_stream(self, sid, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        st = self.stream(sid)
        while not st.done:
            self.recv_frame(timeout=max(0.0, deadline - time.monotonic()))
        return st

    def call(self, path, msg=b"", extra=(), timeout=None):
        """A unary call with one well-formed message; the Stream answered."""
        sid = self.start_call(path, grpc_msg(msg), extra)
        return self.wait_stream(sid, timeout)

    def ping(self, payload=b"crisp!!!", timeout=None):
        n = len(self.pings)
        self.send(frame(PING, 0, 0, payload))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.pings) == n:
            self.recv_frame(timeout=max(0.0, deadline - time.monotonic()))
        return self.pings[n]

    def read_until_closed(self, timeout=None):
        """Read (and account) frames until the server closes the connection.
        Returns the frames read; raises TimeoutError if it stays open."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        frames = []
        while True:
            try:
                frames.append(self.recv_frame(timeout=max(0.0, deadline - time.monotonic())))
            except Closed:
                return frames


# ---- frontd's health, before and after an abuse ----

def unix_conn_inodes(sock_path):
    """Inodes of the server ends of connections accepted on sock_path
    (/proc/net/unix lists them with the listening socket's path, state 03)."""
    out = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            p = line.split()
            if len(p) >= 8 and p[7] == sock_path and p[5] == "03":
                out.add(p[6])
    return out


def fd_census(pid, sock_path):
    """(fds that are CRI client connections, every other fd) of pid."""
    conns = unix_conn_inodes(sock_path)
    nconn, other = 0, 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in conns:
            nconn += 1
        else:
            other += 1
    return nconn, other


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def is_sanitized(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


LOG_FAULT = re.compile(r"^(?:error|warn) (?:frontd|crispd)\[\d+\]: .*$", re.M)
ROLE_DEATH = re.compile(r"\b(frontd (exited|killed|ended)|killing frontd)")


class FrontWatch:
    """Watches the running frontd of a conftest.Crisp across an abuse.

    baseline() waits until frontd holds no client connection and records its
    other fds and VmRSS.  check() then asserts: the same frontd pid is still
    crispd's child and crispd logged no death or kill of frontd since the
    watch began, no sanitizer report, no error or warning logged by frontd
    or crispd; a Version call on a fresh connection
    answers; every client connection is gone within a few seconds; the other
    fds are exactly the baseline's; VmRSS is at most baseline + rss_tol_kb."""

    def __init__(self, crisp, rss_tol_kb):
        self.crisp = crisp
        self.sock = crisp.sock
        self.pid = crisp.wait_roles()["crisp-frontd"]
        self.log_from = len(crisp.logtext())
        self.rss_tol_kb = rss_tol_kb
        self.base_fds = None
        self.base_rss = None
        self.last_rss = None

    def conn(self, **kw):
        return H2Conn(self.sock, **kw)

    def census(self):
        return fd_census(self.pid, self.sock)

    def wait_no_conns(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            n, other = self.census()
            if n == 0 or time.monotonic() > deadline:
                return n, other
            time.sleep(0.02)

    def assert_alive(self):
        roles = self.crisp.roles()
        assert roles.get("crisp-frontd") == self.pid, \
            f"frontd {self.pid} is gone (roles now {roles})\n{self.log_tail()}"
        log = self.crisp.logtext()[self.log_from:]
        m = ROLE_DEATH.search(log)
        assert m is None, f"crispd logged {m.group(0)!r}:\n{self.log_tail()}"
        for mark in ("runtime error:", "AddressSanitizer", "UndefinedBehaviorSanitizer"):
            assert mark not in log, f"sanitizer report:\n{self.log_tail()}"
        # frontd logs errors and warnings only for its own faults (buffer
        # accounting, a call unreferenced twice, accept failing, ipc
        # violations), never for what a client sends.
        bad = LOG_FAULT.findall(log)
        assert not bad, f"frontd or crispd logged faults: {bad[:10]}"

    def log_tail(self, n=6000):
        return self.crisp.logtext()[-n:]

    def version(self):
        import crigen
        pb, _ = crigen.load()
        with self.conn() as c:
            r = c.call("/runtime.v1.RuntimeService/Version",
                       pb.VersionRequest(version="v1").SerializeToString())
        assert r.grpc_status == OK, (r, self.log_tail())
        v = pb.VersionResponse.FromString(r.messages()[0])
        assert v.runtime_name == "crisp", v

    def baseline(self):
        self.assert_alive()
        self.version()
        n, other = self.wait_no_conns()
        assert n == 0, f"{n} client connections still open before the baseline"
        self.base_fds = other
        self.base_rss = rss_kb(self.pid)
        return self.base_fds, self.base_rss

    def check(self):
        assert self.base_fds is not None, "baseline() first"
        self.assert_alive()
        self.version()
        n, other = self.wait_no_conns()
        assert n == 0, f"frontd still holds {n} client connections (all were closed)"
        assert other == self.base_fds, \
            f"frontd has {other} non-connection fds, {self.base_fds} at the baseline: " \
            f"{sorted(os.listdir(f'/proc/{self.pid}/fd'))}"
        rss = self.last_rss = rss_kb(self.pid)
        assert rss <= self.base_rss + self.rss_tol_kb, \
            f"frontd VmRSS {rss} kB, baseline {self.base_rss} kB, tolerance {self.rss_tol_kb} kB"
        self.assert_alive()
        return rss - self.base_rss


QUARANTINE_MB = 4
# Tolerance on frontd's VmRSS after an abuse, over its baseline after a
# warm-up.  Sanitizer build: ASan's quarantine (bounded to QUARANTINE_MB by
# watched_crisp) plus 4 MiB for allocator regions that a full round touches
# first (measured: at most +3 MiB).  Plain build: 4 MiB for glibc's arenas
# (measured: at most +1.5 MiB).  See test_grpc_robustness.py's docstring.
RSS_TOL_SAN_KB = (QUARANTINE_MB + 4) * 1024
RSS_TOL_PLAIN_KB = 4 * 1024


def rss_tolerance_kb(build):
    return RSS_TOL_SAN_KB if is_sanitized(os.path.join(build, "bin", "crisp-frontd")) \
        else RSS_TOL_PLAIN_KB


@contextlib.contextmanager
def watched_crisp(tmpdir, monkeypatch, rss_tol_kb=None, log_level="debug"):
    """A crispd of the build under test, as conftest's crisp fixture starts
    it (CNI bridge config included), but with ASan's quarantine bounded to
    QUARANTINE_MB so that frontd's RSS measures live memory; yields a
    FrontWatch on its frontd (RSS tolerance: rss_tolerance_kb() of the build
    unless given).  Stopped by pid whatever happens."""
    import conftest
    monkeypatch.setitem(conftest.SAN_ENV, "ASAN_OPTIONS",
                        conftest.SAN_ENV["ASAN_OPTIONS"] + f":quarantine_size_mb={QUARANTINE_MB}")
    c = conftest.Crisp(tmpdir)
    c.write_conf(log_level=log_level)
    with open(os.path.join(c.cni_dir, "10-test.conflist"), "w") as f:
        f.write(conftest.CNI_BRIDGE.replace("IPAM_DIR", os.path.join(tmpdir, "ipam")))
    c.start()
    try:
        yield FrontWatch(c, rss_tol_kb or rss_tolerance_kb(conftest.BUILD))
    finally:
        c.stop()
    conftest.assert_no_sanitizer_report(c)
