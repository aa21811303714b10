#!/usr/bin/python3
"""Interop check of crisp's gRPC transport against a real gRPC client (grpcio).

Usage: grpc_interop.py SOCKET_PATH

The server on SOCKET_PATH is tests/unit/test_grpc.c's test server, with these
methods (raw bytes, no protobuf):
  /test.Echo/Echo    unary: answers the request
  /test.Echo/Fail    unary: request = code byte + message; finishes with them
  /test.Echo/Stream  server streaming: request = >II count, size; sends count
                     messages of size bytes, message i filled with byte i
  /test.Echo/Hold    unary: never answers (the deadline does)
  /test.Echo/Later   unary: answers the request from a timer, later
and max_recv_msg_size 4 MiB.  Exit status 0 when every check passes.
"""
import struct
import sys

import grpc


def expect_error(fn, code, details=None):
    try:
        fn()
    except grpc.RpcError as e:
        if e.code() != code:
            raise AssertionError(f"want {code}, got {e.code()}: {e.details()!r}")
        if details is not None and e.details() != details:
            raise AssertionError(f"want details {details!r}, got {e.details()!r}")
        return
    raise AssertionError(f"want {code}, got success")


def main():
    path = sys.argv[1]
    ch = grpc.insecure_channel("unix:" + path)
    grpc.channel_ready_future(ch).result(timeout=10)

    echo = ch.unary_unary("/test.Echo/Echo")
    for n in (0, 1, 1000, 100000, 3 << 20):
        msg = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
        got = echo(msg, timeout=20)
        assert got == msg, f"echo of {n} bytes: got {len(got)} bytes"

    expect_error(lambda: ch.unary_unary("/test.Echo/Nope")(b"x", timeout=10),
                 grpc.StatusCode.UNIMPLEMENTED)

    text = "not found: 100% sure \u00fcn\u00efc\u00f6d\u00e9 \u2603\nsecond line\t%41"
    fail = ch.unary_unary("/test.Echo/Fail")
    expect_error(lambda: fail(bytes([5]) + text.encode(), timeout=10),
                 grpc.StatusCode.NOT_FOUND, text)
    expect_error(lambda: fail(bytes([9]), timeout=10),
                 grpc.StatusCode.FAILED_PRECONDITION)

    stream = ch.unary_stream("/test.Echo/Stream")
    got = list(stream(struct.pack(">II", 7, 3000), timeout=10))
    assert len(got) == 7, f"stream: {len(got)} messages"
    for i, m in enumerate(got):
        assert m == bytes([i]) * 3000, f"stream message {i}"
    assert list(stream(struct.pack(">II", 0, 0), timeout=10)) == []

    expect_error(lambda: ch.unary_unary("/test.Echo/Hold")(b"x", timeout=0.3),
                 grpc.StatusCode.DEADLINE_EXCEEDED)

    expect_error(lambda: echo(b"\0" * (5 << 20), timeout=20),
                 grpc.StatusCode.RESOURCE_EXHAUSTED)

    later = ch.unary_unary("/test.Echo/Later")
    futs = [later.future(b"later %d" % i, timeout=10) for i in range(50)]
    futs += [echo.future(b"now %d" % i, timeout=10) for i in range(50)]
    for i, f in enumerate(futs):
        want = b"later %d" % i if i < 50 else b"now %d" % (i - 50)
        assert f.result() == want, f"future {i}"

    # The connection still works after all of the above.
    assert echo(b"bye", timeout=10) == b"bye"
    ch.close()
    print("grpc_interop: ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
