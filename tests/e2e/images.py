"""Test images and a test registry, for every e2e test that needs images.

- Registry: Debian's docker-registry on 127.0.0.1 with a free port and its
  storage in a temporary directory; stopped by pid.
- build_image(): an OCI image made by hand from /bin/busybox (busybox-static):
  reproducible tar (sorted, mtime 0, uid/gid 0), gzip -n or zstd, a config
  with Env PATH=/bin:/usr/bin and Cmd ["/bin/sh"], optional extra files and
  extra layers (given as {path: bytes} or as raw tar bytes, hostile ones
  included), entrypoint/cmd/user/workdir/env; pushed with skopeo.
- build_index(): a multi-platform index of images built above.
- RegistriesConf: a registries.conf marking the registry insecure (plain
  http), in a directory imaged's sandbox may read (below /etc/crisp), and
  the crisp.conf snippet that points imaged at it.

Fixtures: `registry` (session), `regconf` (a registries.conf for the
session registry), `crisp_images` (a started Crisp that pulls from the
registry; layers are unpacked by execd below <root>/layers).

    def test_x(crisp_images, registry, cri):
        img = registry.busybox()            # pushed once per session
        pb, _ = cri
        crisp_images.image().PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)))
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.request

import pytest

BUSYBOX = "/bin/busybox"
CONF_BASE = "/etc/crisp"  # imaged's Landlock lets it read below here


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Image:
    """What was pushed: ref (host:port/name:tag), the manifest digest (what
    a by-digest pull names), the image id (config digest), layer blobs."""

    def __init__(self, ref, digest, image_id, config, layers, manifest):
        self.ref = ref
        self.digest = digest
        self.id = image_id
        self.config = config
        self.layers = layers  # [(blob digest, diff id, size, media type)]
        self.manifest = manifest
        self.repo = ref.rsplit(":", 1)[0] if "@" not in ref else ref.split("@")[0]

    @property
    def digest_ref(self):
        return f"{self.repo}@{self.digest}"

    def chain_ids(self):
        out, parent = [], None
        for _, diff, _, _ in self.layers:
            parent = diff if parent is None else sha256(f"{parent} {diff}".encode())
            out.append(parent)
        return out

    def size(self):
        """Compressed layers plus config, as ImageStatus reports it."""
        return self._size

    _size = 0


def tar_bytes(entries):
    """A reproducible tar from {path: bytes | None (directory) | ("symlink", target)
    | ("hardlink", target)} or a list of (path, value) pairs (order kept, so
    a test can put a hostile entry where it wants)."""
    items = entries.items() if isinstance(entries, dict) else entries
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, val in items:
            ti = tarfile.TarInfo(path)
            ti.mtime = 0
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            if val is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            elif isinstance(val, tuple) and val[0] == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = val[1]
                t.addfile(ti)
            elif isinstance(val, tuple) and val[0] == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = val[1]
                t.addfile(ti)
            else:
                ti.mode = 0o644 if not path.startswith("bin/") else 0o755
                ti.size = len(val)
                t.addfile(ti, io.BytesIO(val))
    return buf.getvalue()


def busybox_tar(workdir):
    """bin/busybox and bin/sh -> busybox, with tar(1) as the OCI docs do."""
    root = os.path.join(workdir, "bbroot")
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
    if not os.path.lexists(os.path.join(root, "bin", "sh")):
        os.symlink("busybox", os.path.join(root, "bin", "sh"))
    out = os.path.join(workdir, "busybox.tar")
    subprocess.run(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0",
                    "--numeric-owner", "-C", root, "-cf", out, "bin"], check=True)
    with open(out, "rb") as f:
        return f.read()


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        p = subprocess.run(["zstd", "-q", "-c", "-3"], input=data, capture_output=True, check=True)
        return p.stdout, "application/vnd.oci.image.layer.v1.tar+zstd"
    if how == "none":
        return data, "application/vnd.oci.image.layer.v1.tar"
    raise ValueError(how)


class Registry:
    def __init__(self, workdir):
        self.workdir = workdir
        self.data = os.path.join(workdir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.port = None
        self.proc = None
        self._busybox = None
        self._bbtar = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        for _ in range(5):
            self.port = _free_port()
            cfg = os.path.join(self.workdir, "config.yml")
            with open(cfg, "w") as f:
                f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{self.port}
  secret: crisp-e2e
""")
            self.log = open(os.path.join(self.workdir, "registry.log"), "ab")
            self.proc = subprocess.Popen(["docker-registry", "serve", cfg],
                                         stdout=self.log, stderr=self.log)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10:
                if self.proc.poll() is not None:
                    break
                try:
                    urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).read()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("docker-registry did not start")

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            self.proc = None
            self.log.close()

    # -------------------------------------------------------------- images

    def busybox_layer(self):
        if self._bbtar is None:
            self._bbtar = busybox_tar(self.workdir)
        return self._bbtar

    def build_image(self, name, tag="latest", files=None, layers=None, base=True,
                    cmd=("/bin/sh",), entrypoint=None, user=None, workdir=None,
                    env=("PATH=/bin:/usr/bin",), compression="gzip", arch="amd64",
                    push=True, labels=None):
        """Build and push NAME:TAG.  Layers, base first: busybox (unless
        base=False), then each of `layers` (a {path: value} dict, a list of
        (path, value) pairs, or raw tar bytes), then `files` as one last
        layer.  Returns an Image (with .layout, the OCI layout dir)."""
        raw = []
        if base:
            raw.append(self.busybox_layer())
        for l in layers or []:
            raw.append(l if isinstance(l, (bytes, bytearray)) else tar_bytes(l))
        if files:
            raw.append(tar_bytes(files))
        layout = tempfile.mkdtemp(prefix="oci-", dir=self.workdir)
        blobs = os.path.join(layout, "blobs", "sha256")
        os.makedirs(blobs)

        def put(b):
            d = sha256(b)
            with open(os.path.join(blobs, d[7:]), "wb") as f:
                f.write(b)
            return d

        descs, linfo = [], []
        for r in raw:
            comp, mt = compress(r, compression)
            d = put(comp)
            descs.append({"mediaType": mt, "digest": d, "size": len(comp)})
            linfo.append((d, sha256(r), len(comp), mt))
        cc = {"Env": list(env)}
        if cmd is not None:
            cc["Cmd"] = list(cmd)
        if entrypoint is not None:
            cc["Entrypoint"] = list(entrypoint)
        if user is not None:
            cc["User"] = user
        if workdir is not None:
            cc["WorkingDir"] = workdir
        if labels:
            cc["Labels"] = labels
        config = {"architecture": arch, "os": "linux", "config": cc,
                  "rootfs": {"type": "layers", "diff_ids": [l[1] for l in linfo]}}
        cb = json.dumps(config, sort_keys=True).encode()
        cd = put(cb)
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": cd, "size": len(cb)},
                    "layers": descs}
        mb = json.dumps(manifest, sort_keys=True).encode()
        md = put(mb)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                 "size": len(mb), "platform": {"architecture": arch, "os": "linux"},
                 "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
        img = Image(f"{self.host}/{name}:{tag}", md, cd, config, linfo, manifest)
        img._size = sum(l[2] for l in linfo) + len(cb)
        img.layout = layout
        img.manifest_bytes = mb
        if push:
            self.push_layout(layout, tag, f"{name}:{tag}")
        return img

    def push_layout(self, layout, tag, dest, all_=False):
        cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if all_:
            cmd.append("--all")
        # skopeo must not recompress: the digests above are what we test.
        cmd += [f"oci:{layout}:{tag}", f"docker://{self.host}/{dest}"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 0, f"skopeo copy failed: {p.stderr}"

    def build_index(self, name, tag, images):
        """An OCI index of already built (not necessarily pushed) images,
        each with its config's platform; pushed with skopeo --all."""
        layout = tempfile.mkdtemp(prefix="oci-idx-", dir=self.workdir)
        blobs = os.path.join(layout, "blobs", "sha256")
        os.makedirs(blobs)
        entries = []
        for img in images:
            for f in os.listdir(os.path.join(img.layout, "blobs", "sha256")):
                shutil.copy(os.path.join(img.layout, "blobs", "sha256", f), blobs)
            entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": img.digest, "size": len(img.manifest_bytes),
                            "platform": {"architecture": img.config["architecture"],
                                         "os": "linux"}})
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": entries}
        ib = json.dumps(idx, sort_keys=True).encode()
        d = sha256(ib)
        with open(os.path.join(blobs, d[7:]), "wb") as f:
            f.write(ib)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [
                {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d,
                 "size": len(ib), "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
        self.push_layout(layout, tag, f"{name}:{tag}", all_=True)
        return f"{self.host}/{name}:{tag}", d

    def busybox(self):
        """busybox:latest, built and pushed once per registry."""
        if self._busybox is None:
            self._busybox = self.build_image("busybox", "latest")
        return self._busybox

    def blob_path(self, digest):
        h = digest[7:]
        return os.path.join(self.data, "docker", "registry", "v2", "blobs", "sha256",
                            h[:2], h, "data")

    def corrupt_blob(self, digest):
        """Flip bytes of a stored blob (same size): the registry serves
        content that does not match its digest."""
        p = self.blob_path(digest)
        with open(p, "r+b") as f:
            b = bytearray(f.read())
            for i in range(0, len(b), max(1, len(b) // 16)):
                b[i] ^= 0xFF
            f.seek(0)
            f.write(b)


class RegistriesConf:
    """A registries.conf in a directory below /etc/crisp (imaged's sandbox
    reads configuration only there and in /etc/containers), removed by
    cleanup()."""

    def __init__(self):
        self.made_base = not os.path.isdir(CONF_BASE)
        os.makedirs(CONF_BASE, mode=0o755, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="e2e-", dir=CONF_BASE)
        os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, "registries.conf")

    def write(self, text):
        with open(self.path + ".tmp", "w") as f:
            f.write(text)
        os.chmod(self.path + ".tmp", 0o644)
        os.rename(self.path + ".tmp", self.path)
        return self.path

    def insecure(self, *hosts, extra=""):
        body = "".join(f'[[registry]]\nlocation = "{h}"\ninsecure = true\n\n' for h in hosts)
        return self.write(body + extra)

    def crisp_conf(self):
        """The [imaged] section for Crisp(extra_conf=...)."""
        return f"\n[imaged]\nregistries_conf = {self.path}\n"

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.made_base:
            try:
                os.rmdir(CONF_BASE)
            except OSError:
                pass


class SideRegistry:
    """A second docker-registry serving another Registry's storage (so what
    was pushed there is here too), with htpasswd Basic auth (user, password)
    and/or TLS (cert, key files).  stop() ends it."""

    def __init__(self, base, auth=None, tls=None):
        self.base = base
        self.dir = tempfile.mkdtemp(prefix="side-", dir=base.workdir)
        self.auth = auth
        self.tls = tls
        self.proc = None
        self.port = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        extra = ""
        if self.auth:
            user, password = self.auth
            hp = os.path.join(self.dir, "htpasswd")
            h = subprocess.run(
                ["/usr/bin/python3", "-W", "ignore", "-c",
                 "import crypt, sys; print(sys.argv[1] + ':' + crypt.crypt(sys.argv[2], "
                 "crypt.mksalt(crypt.METHOD_BLOWFISH)))", user, password],
                capture_output=True, text=True, check=True).stdout
            with open(hp, "w") as f:
                f.write(h)
            extra += f"auth:\n  htpasswd:\n    realm: crisp-e2e\n    path: {hp}\n"
        for _ in range(5):
            self.port = _free_port()
            tls = ""
            if self.tls:
                tls = f"  tls:\n    certificate: {self.tls[0]}\n    key: {self.tls[1]}\n"
            cfg = os.path.join(self.dir, "config.yml")
            with open(cfg, "w") as f:
                f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.base.data}
{extra}http:
  addr: 127.0.0.1:{self.port}
  secret: crisp-e2e
{tls}""")
            self.log = open(os.path.join(self.dir, "registry.log"), "ab")
            self.proc = subprocess.Popen(["docker-registry", "serve", cfg],
                                         stdout=self.log, stderr=self.log)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10:
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("docker-registry (side) did not start")

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            self.proc = None
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_tls(d, ip="127.0.0.1"):
    """A CA (ca.crt) and a server certificate it signed for IP (server.crt,
    server.key) in directory d, made with openssl.  Returns the three paths."""
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write(f"subjectAltName = IP:{ip}\nbasicConstraints = CA:FALSE\n"
                "keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n")

    def run(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
        "-days", "2", "-subj", "/CN=crisp e2e CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", f"/CN={ip}")
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


# ----------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def registry():
    d = tempfile.mkdtemp(prefix="crisp-reg-", dir="/tmp")
    r = Registry(d)
    try:
        r.start()
        yield r
    finally:
        r.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def regconf(registry):
    rc = RegistriesConf()
    rc.insecure(registry.host)
    try:
        yield rc
    finally:
        rc.cleanup()


@pytest.fixture
def crisp_images(crisp_factory, regconf):
    """A started Crisp whose imaged pulls from the test registry."""
    c = crisp_factory(regconf.crisp_conf())
    c.start()
    return c


def layers_dir(c):
    """execd's unpacked layers (<root>/layers), without its bookkeeping."""
    d = os.path.join(c.root, "layers")
    if not os.path.isdir(d):
        return []
    return sorted(n for n in os.listdir(d) if not n.startswith("."))
