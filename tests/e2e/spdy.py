"""A SPDY/3.1 client for the tests, following what Kubernetes clients do
(github.com/moby/spdystream under k8s.io/client-go): an HTTP/1.1 upgrade
with X-Stream-Protocol-Version, then streams opened by SYN_STREAM with a
`streamtype` header (remotecommand: error, stdin, stdout, stderr, resize;
port-forward: error and data per `port` and `requestid`).

Only the standard library (socket, zlib, threading).
"""

import json
import socket
import struct
import threading
import time
import urllib.parse
import zlib

# The SPDY/3 header compression dictionary, byte for byte.
DICT = bytes.fromhex(
    "000000076f7074696f6e73000000046865616400000004706f7374000000037075740000000664656c65746500000005"
    "7472616365000000066163636570740000000e6163636570742d636861727365740000000f6163636570742d656e636f"
    "64696e670000000f6163636570742d6c616e67756167650000000d6163636570742d72616e6765730000000361676500"
    "000005616c6c6f770000000d617574686f72697a6174696f6e0000000d63616368652d636f6e74726f6c0000000a636f"
    "6e6e656374696f6e0000000c636f6e74656e742d6261736500000010636f6e74656e742d656e636f64696e6700000010"
    "636f6e74656e742d6c616e67756167650000000e636f6e74656e742d6c656e67746800000010636f6e74656e742d6c6f"
    "636174696f6e0000000b636f6e74656e742d6d64350000000d636f6e74656e742d72616e67650000000c636f6e74656e"
    "742d74797065000000046461746500000004657461670000000665787065637400000007657870697265730000000466"
    "726f6d00000004686f73740000000869662d6d617463680000001169662d6d6f6469666965642d73696e63650000000d"
    "69662d6e6f6e652d6d617463680000000869662d72616e67650000001369662d756e6d6f6469666965642d73696e6365"
    "0000000d6c6173742d6d6f646966696564000000086c6f636174696f6e0000000c6d61782d666f727761726473000000"
    "06707261676d610000001270726f78792d61757468656e7469636174650000001370726f78792d617574686f72697a61"
    "74696f6e0000000572616e676500000007726566657265720000000b72657472792d6166746572000000067365727665"
    "7200000002746500000007747261696c6572000000117472616e736665722d656e636f64696e67000000077570677261"
    "64650000000a757365722d6167656e74000000047661727900000003766961000000077761726e696e67000000107777"
    "772d61757468656e746963617465000000066d6574686f64000000036765740000000673746174757300000006323030"
    "204f4b0000000776657273696f6e00000008485454502f312e310000000375726c000000067075626c69630000000a73"
    "65742d636f6f6b69650000000a6b6565702d616c697665000000066f726967696e313030313031323031323032323035"
    "323036333030333032333033333034333035333036333037343032343035343036343037343038343039343130343131"
    "343132343133343134343135343136343137353032353034353035323033204e6f6e2d417574686f7269746174697665"
    "20496e666f726d6174696f6e323034204e6f20436f6e74656e74333031204d6f766564205065726d616e656e746c7934"
    "303020426164205265717565737434303120556e617574686f72697a656434303320466f7262696464656e343034204e"
    "6f7420466f756e6435303020496e7465726e616c20536572766572204572726f72353031204e6f7420496d706c656d65"
    "6e746564353033205365727669636520556e617661696c61626c654a616e20466562204d617220417072204d6179204a"
    "756e204a756c204175672053657074204f6374204e6f76204465632030303a30303a3030204d6f6e2c205475652c2057"
    "65642c205468752c204672692c205361742c2053756e2c20474d546368756e6b65642c746578742f68746d6c2c696d61"
    "67652f706e672c696d6167652f6a70672c696d6167652f6769662c6170706c69636174696f6e2f786d6c2c6170706c69"
    "636174696f6e2f7868746d6c2b786d6c2c746578742f706c61696e2c746578742f6a6176617363726970742c7075626c"
    "6963707269766174656d61782d6167653d677a69702c6465666c6174652c73646368636861727365743d7574662d3863"
    "6861727365743d69736f2d383835392d312c7574662d2c2a2c656e713d302e"
)

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FIN = 1


class HTTPError(Exception):
    def __init__(self, status, headers, body):
        super().__init__(f"HTTP {status}: {body!r}")
        self.status, self.headers, self.body = status, headers, body


def read_http_response(sock, deadline):
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.time()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"connection closed during the HTTP response: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, rest


def http_upgrade(url, upgrade_headers, method="POST", timeout=10, ssl_context=None):
    """Open url and send an upgrade request; returns (sock, status, headers,
    rest).  rest: bytes after the head (the body of an error answer, or the
    first frames).  https URLs go through ssl_context (an ssl.SSLContext)."""
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    if u.scheme == "https":
        try:
            sock = ssl_context.wrap_socket(sock, server_hostname=u.hostname)
        except BaseException:
            sock.close()
            raise
    path = u.path + (("?" + u.query) if u.query else "")
    req = f"{method} {path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
    for k, v in upgrade_headers:
        req += f"{k}: {v}\r\n"
    req += "\r\n"
    sock.sendall(req.encode())
    status, headers, rest = read_http_response(sock, time.time() + timeout)
    return sock, status, headers, rest


def encode_headers(h):
    out = struct.pack(">I", len(h))
    for k, v in h.items():
        kb, vb = k.lower().encode(), str(v).encode()
        out += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
    return out


def decode_headers(raw):
    n, = struct.unpack_from(">I", raw, 0)
    off, h = 4, {}
    for _ in range(n):
        kl, = struct.unpack_from(">I", raw, off)
        k = raw[off + 4:off + 4 + kl].decode()
        off += 4 + kl
        vl, = struct.unpack_from(">I", raw, off)
        h[k] = raw[off + 4:off + 4 + vl].decode()
        off += 4 + vl
    return h


class Stream:
    def __init__(self, sid, headers):
        self.sid, self.headers = sid, headers
        self.data = bytearray()
        self.replied = False
        self.remote_fin = False
        self.rst = None


class SpdyConn:
    """One upgraded connection; a reader thread files frames into streams."""

    def __init__(self, url, protocols, method="POST", timeout=10, ssl_context=None):
        hdrs = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
        hdrs += [("X-Stream-Protocol-Version", p) for p in protocols]
        self.sock, status, headers, rest = http_upgrade(url, hdrs, method, timeout, ssl_context)
        if status != 101:
            body = rest
            try:
                self.sock.settimeout(1)
                while True:
                    more = self.sock.recv(4096)
                    if not more:
                        break
                    body += more
            except OSError:
                pass
            self.sock.close()
            raise HTTPError(status, headers, body)
        self.protocol = headers.get("x-stream-protocol-version", [""])[0]
        self.zout = zlib.compressobj(zdict=DICT)
        self.zin = zlib.decompressobj(zdict=DICT)
        self.cv = threading.Condition()
        self.streams = {}
        self.next_sid = 1
        self.pings = []
        self.goaway = None
        self.closed = False
        self.wlock = threading.Lock()
        self.buf = bytearray(rest)
        self.sock.settimeout(None)
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    # ---- writing ----
    def send_raw(self, b):
        with self.wlock:
            self.sock.sendall(b)

    def _ctl(self, typ, flags, payload):
        return struct.pack(">HHI", 0x8000 | 3, typ, (flags << 24) | len(payload)) + payload

    def create_stream(self, headers, fin=False, wait=True, timeout=10):
        with self.cv:
            sid = self.next_sid
            self.next_sid += 2
            self.streams[sid] = Stream(sid, headers)
        blk = self.zout.compress(encode_headers(headers)) + self.zout.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack(">IIBB", sid, 0, 0, 0) + blk
        self.send_raw(self._ctl(SYN_STREAM, FIN if fin else 0, payload))
        if wait:
            self.wait(lambda: self.streams[sid].replied or self.streams[sid].rst is not None or self.closed,
                      timeout)
            if not self.streams[sid].replied:
                raise ConnectionError(f"stream {headers} not accepted (rst={self.streams[sid].rst})")
        return sid

    def send_data(self, sid, data, fin=False):
        for i in range(0, max(len(data), 1), 16384):
            chunk = data[i:i + 16384]
            last = i + 16384 >= len(data)
            self.send_raw(struct.pack(">II", sid, ((FIN if fin and last else 0) << 24) | len(chunk)) + chunk)

    def close_stream(self, sid):
        self.send_data(sid, b"", fin=True)

    def reset(self, sid, status=5):
        self.send_raw(self._ctl(RST_STREAM, 0, struct.pack(">II", sid, status)))

    def ping(self, pid, timeout=5):
        self.send_raw(self._ctl(PING, 0, struct.pack(">I", pid)))
        self.wait(lambda: pid in self.pings or self.closed, timeout)
        return pid in self.pings

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)

    # ---- reading ----
    def wait(self, pred, timeout=10):
        end = time.time() + timeout
        with self.cv:
            while not pred():
                left = end - time.time()
                if left <= 0:
                    return False
                self.cv.wait(left)
            return True

    def read_all(self, sid, timeout=20):
        """The stream's data once the server finished it (FIN or RST or the
        connection's end)."""
        s = self.streams[sid]
        if not self.wait(lambda: s.remote_fin or s.rst is not None or self.closed, timeout):
            raise TimeoutError(f"stream {sid} {s.headers} not finished")
        return bytes(s.data)

    def _read_loop(self):
        try:
            while True:
                while len(self.buf) < 8 or len(self.buf) < 8 + (struct.unpack_from(">I", self.buf, 4)[0] & 0xffffff):
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise EOFError
                    self.buf += chunk
                ln = struct.unpack_from(">I", self.buf, 4)[0] & 0xffffff
                flags = self.buf[4]
                frame, payload = bytes(self.buf[:8]), bytes(self.buf[8:8 + ln])
                del self.buf[:8 + ln]
                with self.cv:
                    self._frame(frame, flags, payload)
                    self.cv.notify_all()
        except (EOFError, OSError):
            pass
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def _frame(self, frame, flags, payload):
        if frame[0] & 0x80:
            typ = struct.unpack_from(">H", frame, 2)[0]
            if typ == SYN_REPLY:
                sid = struct.unpack_from(">I", payload, 0)[0] & 0x7fffffff
                self.zin.decompress(payload[4:])
                if sid in self.streams:
                    self.streams[sid].replied = True
                    if flags & FIN:
                        self.streams[sid].remote_fin = True
            elif typ == RST_STREAM:
                sid, status = struct.unpack_from(">II", payload, 0)
                if sid in self.streams:
                    self.streams[sid].rst = status
            elif typ == PING:
                self.pings.append(struct.unpack_from(">I", payload, 0)[0])
            elif typ == GOAWAY:
                self.goaway = struct.unpack_from(">II", payload, 0)
            elif typ in (SYN_STREAM, HEADERS):
                self.zin.decompress(payload[10 if typ == SYN_STREAM else 4:])
        else:
            sid = struct.unpack_from(">I", frame, 0)[0] & 0x7fffffff
            s = self.streams.get(sid)
            if s is not None:
                s.data += payload
                if flags & FIN:
                    s.remote_fin = True


# ---- Kubernetes remotecommand (exec, attach) ----

PROTOCOLS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]


class Result:
    def __init__(self, stdout, stderr, status_raw):
        self.stdout, self.stderr, self.status_raw = stdout, stderr, status_raw
        self.status = json.loads(status_raw) if status_raw else None

    @property
    def exit_code(self):
        """0, the NonZeroExitCode cause's code, or None for other failures."""
        if self.status is None or self.status.get("status") == "Success":
            return 0
        if self.status.get("reason") == "NonZeroExitCode":
            for c in self.status.get("details", {}).get("causes", []):
                if c.get("reason") == "ExitCode":
                    return int(c["message"])
        return None


def remotecommand(url, stdin=None, stdout=True, stderr=True, tty=False, resize=None, protocols=None,
                  close_stdin=True, timeout=30):
    """Run one session the way client-go's v4 executor does.  stdin: bytes
    or None; resize: a list of (width, height) sent after the streams are up."""
    c = SpdyConn(url, protocols or PROTOCOLS)
    try:
        sids = {"error": c.create_stream({"streamType": "error"})}
        if stdin is not None:
            sids["stdin"] = c.create_stream({"streamType": "stdin"})
        if stdout:
            sids["stdout"] = c.create_stream({"streamType": "stdout"})
        if stderr and not tty:
            sids["stderr"] = c.create_stream({"streamType": "stderr"})
        if tty and c.protocol in ("v4.channel.k8s.io", "v3.channel.k8s.io"):
            sids["resize"] = c.create_stream({"streamType": "resize"})
        for w, h in resize or []:
            c.send_data(sids["resize"], json.dumps({"Width": w, "Height": h}).encode() + b"\n")
        if stdin is not None:
            if stdin:
                c.send_data(sids["stdin"], stdin)
            if close_stdin:
                c.close_stream(sids["stdin"])
        out = c.read_all(sids["stdout"], timeout) if "stdout" in sids else b""
        err = c.read_all(sids["stderr"], timeout) if "stderr" in sids else b""
        st = c.read_all(sids["error"], timeout)
        return Result(out, err, st)
    finally:
        c.close()


# ---- Kubernetes port-forward ----

def port_forward(url, port, payload, requestid=0, conn=None, timeout=20, half_close=True, ssl_context=None):
    """One port-forward request: send payload on the data stream (then FIN
    when half_close), read until the server finishes it.  Returns (data,
    error message)."""
    own = conn is None
    c = conn or SpdyConn(url, ["portforward.k8s.io"], ssl_context=ssl_context)
    try:
        h = {"streamType": "error", "port": str(port), "requestID": str(requestid)}
        es = c.create_stream(h)
        c.close_stream(es)
        h["streamType"] = "data"
        ds = c.create_stream(h)
        if payload:
            c.send_data(ds, payload)
        if half_close:
            c.close_stream(ds)
        data = c.read_all(ds, timeout)
        err = c.read_all(es, timeout)
        return data, err.decode()
    finally:
        if own:
            c.close()
