"""A WebSocket (RFC 6455) client for the tests, speaking the Kubernetes
channel protocols (v5.channel.k8s.io, v4.channel.k8s.io and the base64
variants): every message starts with a channel byte (0 stdin, 1 stdout,
2 stderr, 3 error/status, 4 resize; v5: 255 closes a channel).

Only the standard library.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import threading

from spdy import HTTPError, Result, http_upgrade

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]


class WsConn:
    def __init__(self, url, protocols=None, method="GET", key=None, version="13"):
        key = key or base64.b64encode(os.urandom(16)).decode()
        hdrs = [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", version),
                ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Protocol", ", ".join(protocols or PROTOCOLS))]
        self.sock, status, headers, rest = http_upgrade(url, hdrs, method)
        if status != 101:
            self.sock.close()
            raise HTTPError(status, headers, rest)
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept", [""])[0] != want:
            raise ConnectionError("bad Sec-WebSocket-Accept")
        self.protocol = headers.get("sec-websocket-protocol", [""])[0]
        self.b64 = "base64" in self.protocol
        self.buf = bytearray(rest)
        self.wlock = threading.Lock()
        self.closed_by_server = None

    def send_frame(self, opcode, payload, fin=True, mask=True):
        hdr = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            hdr += bytes([mbit | n])
        elif n < 65536:
            hdr += bytes([mbit | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([mbit | 127]) + struct.pack(">Q", n)
        if mask:
            m = os.urandom(4)
            payload = bytes(b ^ m[i % 4] for i, b in enumerate(payload))
            hdr += m
        with self.wlock:
            self.sock.sendall(hdr + payload)

    def send_chan(self, ch, data):
        if self.b64:
            self.send_frame(1, str(ch).encode() + base64.b64encode(data))
        else:
            self.send_frame(2, bytes([ch]) + data)

    def _need(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(65536)
            if not b:
                raise EOFError
            self.buf += b

    def recv_frame(self):
        self._need(2)
        op, ln = self.buf[0] & 0x0f, self.buf[1] & 0x7f
        off = 2
        if ln == 126:
            self._need(4)
            ln, off = struct.unpack_from(">H", self.buf, 2)[0], 4
        elif ln == 127:
            self._need(10)
            ln, off = struct.unpack_from(">Q", self.buf, 2)[0], 10
        self._need(off + ln)
        payload = bytes(self.buf[off:off + ln])
        del self.buf[:off + ln]
        return op, payload

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def remotecommand(url, stdin=None, resize=None, protocols=None, timeout=30):
    """A whole session: stdin sent then closed (v5 close message; v4: kept
    open), output collected until the server's close frame."""
    c = WsConn(url, protocols)
    c.sock.settimeout(timeout)
    out = {1: b"", 2: b"", 3: b""}
    try:
        for w, h in resize or []:
            c.send_chan(4, json.dumps({"Width": w, "Height": h}).encode())
        if stdin is not None:
            if stdin:
                c.send_chan(0, stdin)
            if c.protocol.startswith("v5"):
                c.send_frame(2, bytes([255, 0]))
        while True:
            try:
                op, p = c.recv_frame()
            except EOFError:
                break
            if op == 8:
                c.closed_by_server = struct.unpack(">H", p[:2])[0] if len(p) >= 2 else None
                break
            if op == 9:
                c.send_frame(10, p)
                continue
            if op in (1, 2) and p:
                if c.b64:
                    ch, data = int(chr(p[0])), base64.b64decode(p[1:])
                else:
                    ch, data = p[0], p[1:]
                if ch in out:
                    out[ch] += data
        return Result(out[1], out[2], out[3])
    finally:
        c.close()
