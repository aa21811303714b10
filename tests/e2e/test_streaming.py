"""The streaming server end to end: Exec, Attach and PortForward return a
URL of frontd's streaming server; real SPDY/3.1 and WebSocket clients
(tests/e2e/spdy.py, wsclient.py, written after the Kubernetes clients)
open it and the bytes flow through frontd to execd's session socket or
netd's TCP connection in the pod.  Tokens are single use; malformed frames
and oversize heads cost the client its connection, never frontd."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import grpc
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spdy  # noqa: E402
import wsclient  # noqa: E402
from test_pods import pod_config  # noqa: E402

ECHO_SERVER = r"""
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
def serve(c):
    data = bytearray()
    while True:
        b = c.recv(65536)
        if not b:
            break
        data += b
    c.sendall(b"echo:" + bytes(data))
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def run_pod(crisp, pb, name="stream"):
    return crisp.runtime().RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config(pb, name=name)),
                                         timeout=60).pod_sandbox_id


class PodListener:
    """An echo server on 127.0.0.1:port inside the pod's network namespace,
    started with nsenter and killed by pid."""

    def __init__(self, crisp, pod, port):
        netns = os.path.join(crisp.runroot, "netns", pod)
        self.proc = subprocess.Popen(["nsenter", f"--net={netns}", "/usr/bin/python3", "-c", ECHO_SERVER, str(port)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def pod_listener(crisp, cri):
    pb, _ = cri
    pod = run_pod(crisp, pb)
    made = []

    def start(port):
        pl = PodListener(crisp, pod, port)
        made.append(pl)
        return pl
    yield pod, start
    for pl in made:
        pl.stop()
    crisp.runtime().StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)


def pf_url(crisp, pb, pod, ports=()):
    return crisp.runtime().PortForward(pb.PortForwardRequest(pod_sandbox_id=pod, port=list(ports)), timeout=10).url


def frontd_pid(crisp):
    return crisp.roles()["crisp-frontd"]


def test_port_forward_relays_to_the_pod(crisp, cri, pod_listener):
    pb, _ = cri
    pod, start = pod_listener
    start(8080)
    url = pf_url(crisp, pb, pod)
    u = urllib.parse.urlsplit(url)
    assert u.scheme == "http" and u.hostname == "127.0.0.1" and u.path.startswith("/portforward/")
    assert len(u.path.rsplit("/", 1)[1]) == 43
    data, err = spdy.port_forward(url, 8080, b"hello pod")
    assert err == "" and data == b"echo:hello pod"


def test_port_forward_several_requests_and_ports_on_one_connection(crisp, cri, pod_listener):
    pb, _ = cri
    pod, start = pod_listener
    start(8080)
    start(9090)
    c = spdy.SpdyConn(pf_url(crisp, pb, pod), ["portforward.k8s.io"])
    try:
        big = os.urandom(300 * 1024)
        for i, port in enumerate((8080, 9090, 8080)):
            data, err = spdy.port_forward(None, port, b"%d:" % i + big, requestid=i, conn=c)
            assert err == "" and data == b"echo:%d:" % i + big
        # A port nobody listens on: the error stream says so, the
        # connection stays usable.
        data, err = spdy.port_forward(None, 7070, b"x", requestid=10, conn=c)
        assert data == b"" and "7070" in err
        data, err = spdy.port_forward(None, 9090, b"again", requestid=11, conn=c)
        assert data == b"echo:again"
        # More requests than a connection has pair slots (16): finished
        # pairs free theirs even when the client never resets the streams.
        for i in range(12, 40):
            assert spdy.port_forward(None, 8080, b"r%d" % i, requestid=i, conn=c) == (b"echo:r%d" % i, "")
    finally:
        c.close()


def test_port_forward_parallel_connections(crisp, cri, pod_listener):
    pb, _ = cri
    pod, start = pod_listener
    start(8080)
    results, errors = {}, []

    def one(i):
        try:
            results[i] = spdy.port_forward(pf_url(crisp, pb, pod), 8080, b"n%d" % i)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    assert all(results[i] == (b"echo:n%d" % i, "") for i in range(24))


def test_port_forward_limited_to_the_requested_ports(crisp, cri, pod_listener):
    pb, _ = cri
    pod, start = pod_listener
    start(8080)
    c = spdy.SpdyConn(pf_url(crisp, pb, pod, ports=[9090]), ["portforward.k8s.io"])
    try:
        with pytest.raises(ConnectionError):
            c.create_stream({"streamType": "error", "port": "8080", "requestID": "0"})
    finally:
        c.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_port_forward_host_network_pod(crisp, cri):
    """A pod on the host's network has no namespace in netd: execd checks
    it is such a pod and connects on the host's loopback."""
    pb, _ = cri
    port = free_port()
    srv = subprocess.Popen(["/usr/bin/python3", "-c", ECHO_SERVER, str(port)], stdout=subprocess.PIPE, text=True)
    pod = None
    try:
        assert srv.stdout.readline().strip() == "ready"
        pod = crisp.runtime().RunPodSandbox(pb.RunPodSandboxRequest(
            config=pod_config(pb, name="hostnet", host_net=True)), timeout=60).pod_sandbox_id
        data, err = spdy.port_forward(pf_url(crisp, pb, pod), port, b"hello host")
        assert err == "" and data == b"echo:hello host"
        # Nothing listens: the error stream says so, the session ends cleanly.
        srv.kill()
        srv.wait(10)
        data, err = spdy.port_forward(pf_url(crisp, pb, pod), port, b"x")
        assert data == b"" and err, (data, err)
    finally:
        srv.kill()
        srv.wait(10)
        if pod:
            crisp.runtime().StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
            crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)


def test_port_forward_rpc_refusals(crisp, cri):
    pb, _ = cri
    with pytest.raises(grpc.RpcError) as e:
        pf_url(crisp, pb, "0" * 64)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        pf_url(crisp, pb, "0" * 64, ports=[70000])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_token_is_single_use_and_bound_to_its_verb(crisp, cri, pod_listener):
    pb, _ = cri
    pod, start = pod_listener
    start(8080)
    url = pf_url(crisp, pb, pod)
    assert spdy.port_forward(url, 8080, b"a") == (b"echo:a", "")
    with pytest.raises(spdy.HTTPError) as e:
        spdy.port_forward(url, 8080, b"b")
    assert e.value.status == 404
    # A token taken to another verb's path is refused (and consumed).
    url = pf_url(crisp, pb, pod)
    with pytest.raises(spdy.HTTPError) as e:
        spdy.SpdyConn(url.replace("/portforward/", "/exec/"), spdy.PROTOCOLS)
    assert e.value.status == 404
    with pytest.raises(spdy.HTTPError) as e:
        spdy.port_forward(url, 8080, b"c")
    assert e.value.status == 404
    # Made-up tokens.
    base = url.rsplit("/", 1)[0]
    for tok in ("x", "A" * 43, "../../etc", "A" * 300):
        with pytest.raises(spdy.HTTPError) as e:
            spdy.port_forward(base + "/" + tok, 8080, b"d")
        assert e.value.status in (404, 414)


def test_protocol_negotiation_and_plain_http_refused(crisp, cri, pod_listener):
    pb, _ = cri
    pod, _start = pod_listener
    with pytest.raises(spdy.HTTPError) as e:
        spdy.SpdyConn(pf_url(crisp, pb, pod), ["v4.channel.k8s.io"])
    assert e.value.status == 403
    u = urllib.parse.urlsplit(pf_url(crisp, pb, pod))
    sock, status, _h, _r = spdy.http_upgrade(u.geturl(), [], method="GET")
    sock.close()
    assert status == 400


def test_malformed_input_costs_only_the_connection(crisp, cri, pod_listener):
    pb, _ = cri
    pod, start = pod_listener
    start(8080)
    pid = frontd_pid(crisp)
    u = urllib.parse.urlsplit(pf_url(crisp, pb, pod))

    # Oversize request head: 431, closed.
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    s.sendall(b"GET /portforward/x HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 9000 + b"\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 431")
    s.close()
    # Garbage instead of HTTP.
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    s.sendall(b"\x16\x03\x01\x02\x00" + os.urandom(200) + b"\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    # After the upgrade: a frame of a wrong version, a frame over the size
    # bound, a header block that does not inflate: GOAWAY and close.
    for bad in (b"\x80\x02\x00\x01\x00\x00\x00\x04abcd",
                b"\x00\x00\x00\x01\x00\xff\xff\xff",
                b"\x80\x03\x00\x01\x00\x00\x00\x0e" + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"junk"):
        c = spdy.SpdyConn(pf_url(crisp, pb, pod), ["portforward.k8s.io"])
        c.send_raw(bad)
        assert c.wait(lambda: c.closed, 10)
        assert c.goaway is not None
        c.close()
    # An oversize header block (many headers).
    c = spdy.SpdyConn(pf_url(crisp, pb, pod), ["portforward.k8s.io"])
    with pytest.raises(ConnectionError):
        c.create_stream({f"h{i}": "v" * 200 for i in range(100)})
    c.close()
    # frontd is the same process and still serves.
    assert frontd_pid(crisp) == pid
    data, err = spdy.port_forward(pf_url(crisp, pb, pod), 8080, b"still")
    assert data == b"echo:still"
    assert crisp.runtime().Version(pb.VersionRequest(), timeout=5).runtime_name == "crisp"


def test_client_vanishing_mid_forward_cleans_up(crisp, cri, pod_listener):
    pb, _ = cri
    pod, start = pod_listener
    start(8080)
    pid = frontd_pid(crisp)
    base = len(os.listdir(f"/proc/{pid}/fd"))
    for _ in range(10):
        c = spdy.SpdyConn(pf_url(crisp, pb, pod), ["portforward.k8s.io"])
        h = {"streamType": "error", "port": "8080", "requestID": "1"}
        c.create_stream(h)
        h["streamType"] = "data"
        ds = c.create_stream(h)
        c.send_data(ds, b"half")
        c.close()
    deadline = time.time() + 10
    while time.time() < deadline and len(os.listdir(f"/proc/{pid}/fd")) > base:
        time.sleep(0.1)
    assert len(os.listdir(f"/proc/{pid}/fd")) <= base


def test_ping_answered(crisp, cri, pod_listener):
    pb, _ = cri
    pod, _start = pod_listener
    c = spdy.SpdyConn(pf_url(crisp, pb, pod), ["portforward.k8s.io"])
    try:
        assert c.ping(7)
    finally:
        c.close()


# ---- exec and attach: need running containers ----

from conftest import CNI_BRIDGE, cleanup_host  # noqa: E402
from images import regconf, registry  # noqa: E402,F401  (fixtures)


@pytest.fixture
def crisp_ctr(crisp_factory, regconf, tmpdir_short):  # noqa: F811
    """A crisp that pulls from the test registry and has a pod network."""
    c = crisp_factory(regconf.crisp_conf())
    with open(os.path.join(c.cni_dir, "10-test.conflist"), "w") as f:
        f.write(CNI_BRIDGE.replace("IPAM_DIR", os.path.join(tmpdir_short, "ipam")))
    c.start()
    yield c
    c.stop()
    cleanup_host(c)


@pytest.fixture
def container(crisp_ctr, registry, cri):  # noqa: F811
    """start(cmd) -> container id: a running busybox container in a pod, or
    a skip when this build cannot run containers yet."""
    pb, _ = cri
    ref = registry.busybox().ref
    crisp_ctr.image().PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=120)
    pod = run_pod(crisp_ctr, pb, name="execpod")

    def start(cmd):
        cid = crisp_ctr.runtime().CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod,
            config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c%d" % time.monotonic_ns()),
                                      image=pb.ImageSpec(image=ref), command=cmd),
            sandbox_config=pod_config(pb, name="execpod")), timeout=60).container_id
        crisp_ctr.runtime().StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        return cid
    yield start
    crisp_ctr.runtime().StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    crisp_ctr.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)


def exec_url(crisp, pb, cid, cmd, stdin=False, tty=False, stderr=True):
    return crisp.runtime().Exec(pb.ExecRequest(container_id=cid, cmd=cmd, stdin=stdin, stdout=True,
                                               stderr=stderr and not tty, tty=tty), timeout=10).url


def exec_or_skip(fn):
    """(kept for the call sites) runs fn: exec is built, nothing is skipped."""
    return fn()


def test_exec_stdout_stderr_and_exit_codes(crisp_ctr, cri, container):
    crisp = crisp_ctr
    pb, _ = cri
    cid = container(["/bin/busybox", "sleep", "3600"])
    r = exec_or_skip(lambda: spdy.remotecommand(exec_url(crisp, pb, cid, ["/bin/sh", "-c", "echo out; echo err >&2"])))
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 0)
    r = spdy.remotecommand(exec_url(crisp, pb, cid, ["/bin/sh", "-c", "exit 7"]))
    assert r.exit_code == 7 and r.status["reason"] == "NonZeroExitCode"


def test_exec_stdin_piped(crisp_ctr, cri, container):
    crisp = crisp_ctr
    pb, _ = cri
    cid = container(["/bin/busybox", "sleep", "3600"])
    payload = os.urandom(200 * 1024).hex().encode()
    r = exec_or_skip(lambda: spdy.remotecommand(exec_url(crisp, pb, cid, ["/bin/busybox", "wc", "-c"], stdin=True), stdin=payload))
    assert r.stdout.strip() == str(len(payload)).encode() and r.exit_code == 0


def test_exec_tty_and_resize(crisp_ctr, cri, container):
    crisp = crisp_ctr
    pb, _ = cri
    cid = container(["/bin/busybox", "sleep", "3600"])
    r = exec_or_skip(lambda: spdy.remotecommand(
        exec_url(crisp, pb, cid, ["/bin/sh", "-c", "busybox sleep 1; busybox stty size"], stdin=True, tty=True),
        stdin=b"", close_stdin=False, tty=True, resize=[(100, 30)], timeout=30))
    assert b"30 100" in r.stdout


def test_exec_websocket_v5(crisp_ctr, cri, container):
    crisp = crisp_ctr
    pb, _ = cri
    cid = container(["/bin/busybox", "sleep", "3600"])
    r = exec_or_skip(lambda: wsclient.remotecommand(exec_url(crisp, pb, cid, ["/bin/sh", "-c", "busybox cat; echo e >&2; exit 3"],
                                                             stdin=True), stdin=b"abc"))
    assert r.stdout == b"abc" and r.stderr == b"e\n" and r.exit_code == 3
    # v4 (no channel close: stdin stays open, the command must not read it)
    # and the base64 variant carry the same session.
    for proto in ("v4.channel.k8s.io", "v4.base64.channel.k8s.io"):
        r = wsclient.remotecommand(exec_url(crisp, pb, cid, ["/bin/sh", "-c", "echo x; echo y >&2; exit 4"]),
                                   protocols=[proto])
        assert (r.stdout, r.stderr, r.exit_code) == (b"x\n", b"y\n", 4), proto
    # A client offering nothing we speak is refused.
    with pytest.raises(spdy.HTTPError) as e:
        wsclient.WsConn(exec_url(crisp, pb, cid, ["true"]), protocols=["v9.channel.k8s.io"])
    assert e.value.status == 403


def test_exec_many_parallel_sessions(crisp_ctr, cri, container):
    crisp = crisp_ctr
    pb, _ = cri
    cid = container(["/bin/busybox", "sleep", "3600"])
    out, errors = {}, []

    def one(i):
        try:
            out[i] = spdy.remotecommand(exec_url(crisp, pb, cid, ["/bin/sh", "-c", "echo %d" % i])).stdout
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    exec_or_skip(lambda: one(-1))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors and all(out[i] == b"%d\n" % i for i in range(20))


def test_attach_sees_container_output(crisp_ctr, cri, container):
    crisp = crisp_ctr
    pb, _ = cri
    cid = container(["/bin/sh", "-c", "while true; do echo tick; busybox sleep 0.2; done"])
    url = exec_or_skip(lambda: crisp.runtime().Attach(pb.AttachRequest(container_id=cid, stdout=True, stderr=True),
                                                      timeout=10).url)
    c = spdy.SpdyConn(url, spdy.PROTOCOLS)
    try:
        c.create_stream({"streamType": "error"})
        so = c.create_stream({"streamType": "stdout"})
        c.create_stream({"streamType": "stderr"})
        assert c.wait(lambda: b"tick" in c.streams[so].data, 10)
    finally:
        c.close()


def test_exec_refused_for_unknown_container(crisp, cri):
    pb, _ = cri
    with pytest.raises(grpc.RpcError) as e:
        crisp.runtime().Exec(pb.ExecRequest(container_id="f" * 64, cmd=["true"], stdout=True), timeout=10)
    assert e.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)


# ---- TLS ([streaming] tls_cert, tls_key, tls_client_ca) ----

import ssl  # noqa: E402


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmpdir_short):
    """A CA, a server certificate for IP 127.0.0.1 and a client certificate,
    made with openssl in a directory of their own.  Certificates 0644, keys
    0600 (owned by root: frontd reads them before it drops privileges)."""
    d = os.path.join(tmpdir_short, "pki")
    os.makedirs(d)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=crisp test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client", "rogue"):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
                f"/CN=crisp test {name}", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    for name in ("server", "client"):
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=d)
    # Signed by itself, not by the CA.
    openssl("x509", "-req", "-in", "rogue.csr", "-signkey", "rogue.key", "-days", "2", "-extfile", "client.ext",
            "-out", "rogue.crt", cwd=d)
    for n in os.listdir(d):
        os.chmod(os.path.join(d, n), 0o600 if n.endswith(".key") else 0o644)
    return d


def tls_conf(pki, client_ca=False):
    # sandbox_debug: a syscall missing from frontd's allowlist on the TLS
    # paths ends frontd with its name in the log (the tests check its pid).
    conf = (f"\n[crisp]\nsandbox_debug = true\n[streaming]\ntls_cert = {pki}/server.crt\n"
            f"tls_key = {pki}/server.key\n")
    if client_ca:
        conf += f"tls_client_ca = {pki}/ca.crt\n"
    return conf


def client_ctx(pki, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(pki, "ca.crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(pki, f"{cert}.crt"), os.path.join(pki, f"{cert}.key"))
    return ctx


@pytest.fixture
def tls_pod(crisp_factory, tmpdir_short, cri, pki):
    """start(client_ca) -> (crisp, pod, listener on 8080): a crisp serving
    its streaming URLs over TLS, a pod and an echo server in it."""
    made = []

    def start(client_ca=False):
        pb, _ = cri
        c = crisp_factory(tls_conf(pki, client_ca))
        with open(os.path.join(c.cni_dir, "10-test.conflist"), "w") as f:
            f.write(CNI_BRIDGE.replace("IPAM_DIR", os.path.join(tmpdir_short, "ipam")))
        c.start()
        made.append((c, None, None))
        pod = run_pod(c, pb, name="tls")
        made[-1] = (c, pod, None)
        pl = PodListener(c, pod, 8080)
        made[-1] = (c, pod, pl)
        return c, pod
    yield start
    pb, _ = cri
    for c, pod, pl in made:
        if pl:
            pl.stop()
        if pod:
            c.runtime().StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        c.stop()
        cleanup_host(c)


def test_tls_port_forward(cri, tls_pod, pki):
    pb, _ = cri
    c, pod = tls_pod()
    url = pf_url(c, pb, pod)
    u = urllib.parse.urlsplit(url)
    assert u.scheme == "https" and u.hostname == "127.0.0.1" and u.path.startswith("/portforward/")
    data, err = spdy.port_forward(url, 8080, b"over tls " * 20000, ssl_context=client_ctx(pki))
    assert err == "" and data == b"echo:" + b"over tls " * 20000
    # Several requests on one TLS connection, then a ping.
    conn = spdy.SpdyConn(pf_url(c, pb, pod), ["portforward.k8s.io"], ssl_context=client_ctx(pki))
    try:
        for i in range(3):
            data, err = spdy.port_forward(None, 8080, b"r%d" % i, requestid=i, conn=conn)
            assert err == "" and data == b"echo:r%d" % i
        assert conn.ping(1)
    finally:
        conn.close()
    assert "TLS" in c.logtext()


def test_tls_refuses_plain_http_and_garbage_unharmed(cri, tls_pod, pki):
    pb, _ = cri
    c, pod = tls_pod()
    pid = frontd_pid(c)
    url = pf_url(c, pb, pod)
    u = urllib.parse.urlsplit(url)
    plain = "http://" + u.netloc + u.path
    # A plain HTTP/1.1 upgrade: the handshake fails, the connection closes.
    with pytest.raises((ConnectionError, OSError)):
        spdy.SpdyConn(plain, ["portforward.k8s.io"])
    # Random bytes, a truncated ClientHello, a client that connects and leaves.
    for junk in (os.urandom(300), bytes.fromhex("160301020001"), b""):
        s = socket.create_connection((u.hostname, u.port), timeout=5)
        try:  # frontd may have closed already
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
    # A client that does not trust the server's CA refuses it.
    with pytest.raises(ssl.SSLError):
        spdy.SpdyConn(url, ["portforward.k8s.io"], ssl_context=ssl.create_default_context())
    # frontd is unharmed; the URL's token was not consumed by any of this.
    assert frontd_pid(c) == pid
    data, err = spdy.port_forward(url, 8080, b"still fine", ssl_context=client_ctx(pki))
    assert err == "" and data == b"echo:still fine"
    assert "TLS handshake failed" in c.logtext()


def test_tls_client_certificate_required(cri, tls_pod, pki):
    pb, _ = cri
    c, pod = tls_pod(client_ca=True)
    pid = frontd_pid(c)
    url = pf_url(c, pb, pod)
    # No certificate; a certificate the CA did not sign.  TLS 1.3 reports
    # the server's refusal on the first read, not in the handshake.
    for cert in (None, "rogue"):
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            spdy.port_forward(url, 8080, b"x", ssl_context=client_ctx(pki, cert), timeout=5)
    # TLS 1.2 too.
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        spdy.port_forward(url, 8080, b"x", ssl_context=ctx, timeout=5)
    assert frontd_pid(c) == pid
    # A certificate of the CA works, with the same token (never consumed).
    data, err = spdy.port_forward(url, 8080, b"with a cert", ssl_context=client_ctx(pki, "client"))
    assert err == "" and data == b"echo:with a cert"
    ctx = client_ctx(pki, "client")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    data, err = spdy.port_forward(pf_url(c, pb, pod), 8080, b"tls1.2", ssl_context=ctx)
    assert err == "" and data == b"echo:tls1.2"
    assert frontd_pid(c) == pid
    log = c.logtext()
    assert "forbidden syscall" not in log and "TLS handshake failed" in log


def test_tls_keys_change_only_with_a_restart(crisp_factory, pki):
    c = crisp_factory(tls_conf(pki)).start()
    pid = frontd_pid(c)

    def reload_and_wait(text):
        c.proc.send_signal(signal.SIGHUP)
        t0 = time.monotonic()
        while text not in c.logtext():
            assert time.monotonic() - t0 < 5, f"{text!r} not logged:\n{c.logtext()}"
            time.sleep(0.05)
    # Another key: frontd votes no, the whole reload aborts.
    c.write_conf(extra=tls_conf(pki).replace("server.key", "client.key"))
    reload_and_wait("reload refused, configuration 1 stays: frontd: streaming tls_cert")
    # TLS off: refused the same way.
    c.write_conf(extra="")
    reload_and_wait("reload refused, configuration 1 stays: frontd: streaming tls_cert")
    # The same files: commits.
    c.write_conf(extra=tls_conf(pki))
    reload_and_wait("configuration 2 committed")
    assert frontd_pid(c) == pid
