"""Python gRPC stubs for crisp's CRI v1 definition (proto/cri.proto).

    import crigen
    cri_pb2, cri_pb2_grpc = crigen.load()

load() (re)generates tests/e2e/gen/cri_pb2.py and cri_pb2_grpc.py when they
are missing or older than proto/cri.proto, puts tests/e2e/gen/ on sys.path
and returns the two modules.  gen/ is gitignored.

Why two generators: Debian's python3-grpc-tools (1.14) bundles protoc 3.5.1,
whose _pb2.py output builds descriptors with the old FileDescriptor(...)
constructors.  Debian's python3-protobuf (3.21 runtime) only tolerates that
under its C++ backend; the pure-Python backend rejects it with a
DeprecationWarning and newer runtimes drop it.  So _pb2.py comes from the
system `protoc --python_out` (3.21, same as the runtime) and only _pb2_grpc.py
from grpc_tools, whose output is plain grpc channel code.

Run the suite with Debian's /usr/bin/python3 (grpc, grpc_tools, protobuf).
"""

import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROTO = os.path.join(REPO, "proto", "cri.proto")
GEN = os.path.join(HERE, "gen")

MODULES = ("cri_pb2", "cri_pb2_grpc")
_STAMP = ".stamp"           # sha256 of the .proto the outputs came from


def _outputs(outdir):
    return [os.path.join(outdir, m + ".py") for m in MODULES]


def _digest(proto):
    with open(proto, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def is_stale(proto=PROTO, outdir=GEN):
    """True when outdir lacks an output, or one is older than proto or
    came from a different proto text."""
    try:
        src = os.stat(proto).st_mtime_ns
        if any(os.stat(p).st_mtime_ns < src for p in _outputs(outdir)):
            return True
        with open(os.path.join(outdir, _STAMP)) as f:
            return f.read().strip() != _digest(proto)
    except FileNotFoundError:
        return True


def _grpc_tools_python():
    if importlib.util.find_spec("grpc_tools") is not None:
        return sys.executable
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"   # Debian's python3-grpc-tools
    raise RuntimeError("grpc_tools not found: install python3-grpc-tools "
                       "and run the tests with /usr/bin/python3")


def _run(argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(argv), r.returncode, r.stdout))


def generate(proto=PROTO, outdir=GEN):
    """Generate cri_pb2.py and cri_pb2_grpc.py from proto into outdir,
    unconditionally.  The files are written to a scratch directory and
    renamed into place, so a reader never sees a half-written module."""
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    incdir, name = os.path.split(os.path.abspath(proto))
    if name != "cri.proto":     # module names derive from the file name
        raise ValueError("expected a file named cri.proto, got " + proto)
    os.makedirs(outdir, exist_ok=True)
    digest = _digest(proto)
    src_ns = os.stat(proto).st_mtime_ns
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".tmp-") as tmp:
        _run([protoc, "-I", incdir, "--python_out=" + tmp, name])
        _run([_grpc_tools_python(), "-m", "grpc_tools.protoc", "-I", incdir,
              "--grpc_python_out=" + tmp, name])
        with open(os.path.join(tmp, _STAMP), "w") as f:
            f.write(digest + "\n")
        for m in MODULES:   # a .proto with a future mtime must not stay stale
            out = os.path.join(tmp, m + ".py")
            st = os.stat(out)
            if st.st_mtime_ns < src_ns:
                os.utime(out, ns=(st.st_atime_ns, src_ns))
        for m in MODULES:
            os.replace(os.path.join(tmp, m + ".py"), os.path.join(outdir, m + ".py"))
        os.replace(os.path.join(tmp, _STAMP), os.path.join(outdir, _STAMP))


@contextlib.contextmanager
def _locked(outdir):
    # Serialises generation between concurrent pytest workers.
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, ".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        yield


def ensure(proto=PROTO, outdir=GEN):
    """Regenerate if stale; return True when it did."""
    if not is_stale(proto, outdir):
        return False
    with _locked(outdir):
        if not is_stale(proto, outdir):
            return False
        generate(proto, outdir)
        return True


def load():
    """Return (cri_pb2, cri_pb2_grpc), generating them first if needed.
    Within one process the first import wins: protobuf's descriptor pool
    cannot take a changed cri.proto again."""
    ensure()
    if GEN not in sys.path:
        sys.path.insert(0, GEN)
    return tuple(importlib.import_module(m) for m in MODULES)


def channel(socket_path):
    """An insecure gRPC channel to a CRI unix socket (connects lazily)."""
    import grpc
    return grpc.insecure_channel("unix://" + os.path.abspath(socket_path))


def stubs(chan):
    """(RuntimeServiceStub, ImageServiceStub) on a channel."""
    _, cri_pb2_grpc = load()
    return cri_pb2_grpc.RuntimeServiceStub(chan), cri_pb2_grpc.ImageServiceStub(chan)


try:
    import pytest
except ImportError:     # crigen is usable without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def cri():
        """Fixture: the generated modules as a namespace, cri.pb2 / cri.grpc.
        Use it from a test module with `from crigen import cri`."""
        import types
        pb2, grpc_mod = load()
        return types.SimpleNamespace(pb2=pb2, grpc=grpc_mod)
