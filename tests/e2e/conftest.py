"""End-to-end fixtures: a real crispd on a real CRI socket.

Each `crisp` fixture starts the crispd of the build under test
(CRISP_BUILD, default ../../build-san) with a configuration of its own in a
fresh temporary directory (root, runroot, socket, CNI config dir), waits
until Version answers, and stops it with SIGTERM afterwards.  Whatever it
started is ended by pid even when a test fails.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import grpc
import pytest

import crigen

# Test registry, test images and registries.conf fixtures (tests/e2e/images.py).
pytest_plugins = ["images"]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("CRISP_BUILD", os.path.join(REPO, "build-san"))

ROLES = ("crisp-frontd", "crisp-imaged", "crisp-execd", "crisp-netd")

# The sanitizer runtime of crisp's processes: LeakSanitizer checks crispd and
# execd when they exit (a report fails the test through the log check); the
# sandboxed roles turn it off themselves, since their seccomp filters forbid
# its exit-time scan (their code is leak-checked by the unit tests).
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}

# A bridge on a private subnet that routes nowhere; host-local keeps its
# reservations in the test's own directory (IPAM_DIR is replaced).
BRIDGE = "crisptest0"
CNI_BRIDGE = """{
  "cniVersion": "1.0.0",
  "name": "crisp-test",
  "plugins": [
    {"type": "loopback"},
    {"type": "bridge", "bridge": "crisptest0", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "IPAM_DIR", "ranges": [[{"subnet": "10.250.0.0/24"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
"""


def binary(name):
    return os.path.join(BUILD, "bin", name)


def child_procs(pid):
    """{(pid, comm)} of the direct children of pid."""
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[1]) == pid:
            out.add((int(d), st[st.index("(") + 1:st.rindex(")")]))
    return out


def children(pid):
    """{comm: pid} of the direct children of pid."""
    return {comm: p for p, comm in child_procs(pid)}


def wait_container_exit(rt, pb, cid, timeout):
    """ContainerStatus until the container is EXITED; its status."""
    end = time.monotonic() + timeout
    while True:
        st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid), timeout=10).status
        if st.state == pb.CONTAINER_EXITED:
            return st
        if time.monotonic() > end:
            raise AssertionError(f"container {cid[:12]} did not exit: {st}")
        time.sleep(0.02)


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


class Crisp:
    def __init__(self, tmp, extra_conf=""):
        self.tmp = tmp
        self.root = os.path.join(tmp, "root")
        self.runroot = os.path.join(tmp, "run")
        self.sock = os.path.join(tmp, "crisp.sock")
        self.cni_dir = os.path.join(tmp, "net.d")
        os.makedirs(self.cni_dir, exist_ok=True)
        self.conf = os.path.join(tmp, "crisp.conf")
        self.write_conf(extra_conf)
        self.log_path = os.path.join(tmp, "crispd.log")
        self.proc = None
        self._chan = None

    def write_conf(self, extra="", log_level="debug"):
        with open(self.conf + ".tmp", "w") as f:
            f.write(f"""[crisp]
root = {self.root}
runroot = {self.runroot}
listen = {self.sock}
log_level = {log_level}

[netd]
cni_config_dir = {self.cni_dir}
{extra}""")
        os.rename(self.conf + ".tmp", self.conf)

    def start(self, timeout=10):
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update(SAN_ENV)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary("crispd"), "--config", self.conf],
                                     stdout=subprocess.PIPE, stderr=self.log, env=env)
        line = self.proc.stdout.readline().decode().strip()
        assert line == f"unix://{self.sock}", f"crispd said {line!r}; log:\n{self.logtext()}"
        self.wait_roles(timeout)
        self.wait_version(timeout)
        return self

    def logtext(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def channel(self):
        if self._chan is None:
            self._chan = crigen.channel(self.sock)
        return self._chan

    def stubs(self):
        return crigen.stubs(self.channel())

    def runtime(self):
        return self.stubs()[0]

    def image(self):
        return self.stubs()[1]

    def wait_version(self, timeout=5.0):
        """Call Version until it answers; returns seconds waited."""
        pb, _ = crigen.load()
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            try:
                chan = crigen.channel(self.sock)
                try:
                    rt = crigen.stubs(chan)[0]
                    rt.Version(pb.VersionRequest(version="v1"), timeout=1)
                    return time.monotonic() - t0
                finally:
                    chan.close()
            except grpc.RpcError as e:
                last = e
            time.sleep(0.02)
        raise AssertionError(f"Version did not answer in {timeout}s: {last}\n{self.logtext()}")

    def roles(self):
        """{binary name: pid} of the running roles."""
        return children(self.proc.pid)

    def wait_roles(self, timeout=5.0, exclude=None):
        """Wait until all four roles run, are configured and connected
        (crispd logged "<role> up (pid N)" for the running pid), and none
        is a pid in exclude.  Returns {binary name: pid}."""
        exclude = exclude or {}
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            r = self.roles()
            log = self.logtext()
            if all(n in r and r[n] != exclude.get(n) and
                   f"{n[len('crisp-'):]} up (pid {r[n]})" in log for n in ROLES):
                return r
            time.sleep(0.02)
        raise AssertionError(f"roles not all up: {self.roles()}\n{self.logtext()}")

    def stop(self, timeout=10):
        if self._chan is not None:
            self._chan.close()
            self._chan = None
        if self.proc is None:
            return None
        roles = {}
        if self.proc.poll() is None:
            roles = self.roles()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Anything of ours still alive is ended by pid.
        for pid in roles.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.stdout.close()
        self.log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc


@pytest.fixture(scope="session")
def cri():
    return crigen.load()


def unmount_below(d):
    """Lazily unmount everything mounted below d (pinned namespaces, netd's
    netns directory), deepest first."""
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for m in sorted((m for m in mounts if m.startswith(d + "/")), reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


@pytest.fixture
def tmpdir_short():
    # Unix socket paths are limited to 107 bytes: keep the prefix short.
    d = tempfile.mkdtemp(prefix="crisp-e2e-", dir="/tmp")
    try:
        yield d
    finally:
        unmount_below(d)
        shutil.rmtree(d, ignore_errors=True)


SANITIZER_MARKS = ("runtime error:", "AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer")


def assert_no_sanitizer_report(c):
    """A sanitizer report in any crisp process fails the test that caused
    it, even when crispd's restart hid the crash from the test itself."""
    log = c.logtext()
    for mark in SANITIZER_MARKS:
        assert mark not in log, f"sanitizer report in crisp's log:\n{log[-8000:]}"


@pytest.fixture
def crisp(tmpdir_short):
    c = Crisp(tmpdir_short)
    with open(os.path.join(c.cni_dir, "10-test.conflist"), "w") as f:
        f.write(CNI_BRIDGE.replace("IPAM_DIR", os.path.join(tmpdir_short, "ipam")))
    c.start()
    yield c
    c.stop()
    cleanup_host(c)
    assert_no_sanitizer_report(c)


def end_containers(runroot):
    """Containers outlive crisp by design: end those a test left running
    under its runroot (each monitor holds its run directory open), by pid:
    the container's process first (its monitor then exits by itself), and
    remove their cgroups.  Returns the container ids ended."""
    ended = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if len(argv) < 3 or argv[1] not in (b"--container-monitor", b"--pod-infra"):
                continue
            if argv[1] == b"--pod-infra":  # a pod's pid 1, pivoted into its pod dir
                if argv[2].decode().startswith(runroot + "/"):
                    os.kill(int(d), signal.SIGKILL)
                continue
            fds = [os.readlink(f"/proc/{d}/fd/{n}") for n in os.listdir(f"/proc/{d}/fd")]
        except OSError:
            continue
        if not any(x.startswith(runroot + "/") for x in fds):
            continue
        for pid in (int(argv[3]), int(d)):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        ended.append(argv[2].decode())
    time.sleep(0.1 if ended else 0)
    for cid in ended:
        for ctrl in os.listdir("/sys/fs/cgroup"):
            try:
                os.rmdir(f"/sys/fs/cgroup/{ctrl}/crisp/crisp-{cid}")
            except OSError:
                pass
    return ended


def cleanup_host(c):
    """What a test's pods may leave on the host if crisp failed to: running
    containers (ended), pinned namespaces (unmounted), the test bridge."""
    end_containers(c.runroot)
    unmount_below(c.runroot)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


@pytest.fixture
def crisp_factory(tmpdir_short):
    made = []

    def make(extra_conf=""):
        c = Crisp(tmpdir_short, extra_conf)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()
    for c in made:
        assert_no_sanitizer_report(c)
