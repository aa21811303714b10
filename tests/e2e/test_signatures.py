"""Signature policy end to end: real OpenPGP signatures (gpg keys made here,
images signed with skopeo into lookaside stores, file:// and http://),
sigstore signatures (openssl P-256, pushed as sha256-<hex>.sig attachment
manifests to the test registry), per-namespace policies, the create-time
re-evaluation, and the hash-chained audit log checked with
`crispd --verify-audit`.

Everything the tests write lives in a directory below /etc/crisp (imaged's
sandbox reads configuration only there) and in temporary directories; the
http lookaside server is started and stopped by pid."""

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import grpc
import pytest

from conftest import binary, cleanup_host
from images import CONF_BASE, _free_port, layers_dir

NS_OPEN = "sig-open"
NS_STRICT = "sig-strict"


def run(cmd, env=None, **kw):
    p = subprocess.run(cmd, capture_output=True, env=env, **kw)
    assert p.returncode == 0, f"{cmd}: {p.stderr.decode(errors='replace')}"
    return p.stdout


class Keys:
    """Two ed25519 signing keys in a throw-away GNUPGHOME."""

    def __init__(self, base):
        self.home = tempfile.mkdtemp(prefix="crisp-gpg-", dir="/tmp")
        os.chmod(self.home, 0o700)
        self.env = dict(os.environ, GNUPGHOME=self.home)
        self.fpr = {}
        for name in ("a", "b"):
            run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
                 f"crisp e2e {name} <{name}@example.invalid>", "ed25519", "sign", "never"], env=self.env)
            out = run(["gpg", "--batch", "--list-keys", "--with-colons", f"{name}@example.invalid"],
                      env=self.env).decode()
            self.fpr[name] = [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr")][0]
            path = os.path.join(base, f"key-{name}.gpg")
            with open(path, "wb") as f:
                f.write(run(["gpg", "--batch", "--export", self.fpr[name]], env=self.env))
            os.chmod(path, 0o644)

    def sign(self, key, manifest_bytes, ref, out):
        """A simple-signing signature of manifest_bytes claiming ref."""
        with tempfile.NamedTemporaryFile(dir=self.home, delete=False) as m:
            m.write(manifest_bytes)
        try:
            run(["skopeo", "standalone-sign", m.name, ref, self.fpr[key], "--output", out],
                env=self.env)
        finally:
            os.unlink(m.name)
        os.chmod(out, 0o644)

    def cleanup(self):
        subprocess.run(["gpgconf", "--homedir", self.home, "--kill", "all"], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


class World:
    def __init__(self, registry, base):
        self.r = registry
        self.base = base
        self.host = registry.host
        self.lookaside = os.path.join(base, "lookaside")
        self.http_dir = os.path.join(base, "http-lookaside")
        self.regd = os.path.join(base, "registries.d")
        self.nsdir = os.path.join(base, "ns")
        for d in (self.lookaside, self.http_dir, self.regd, self.nsdir):
            os.makedirs(d, mode=0o755)
        self.keys = Keys(base)
        # sigstore key pair (P-256)
        self.ec = os.path.join(base, "cosign.key")
        self.ec_pub = os.path.join(base, "cosign.pub")
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.ec])
        run(["openssl", "ec", "-in", self.ec, "-pubout", "-out", self.ec_pub])
        os.chmod(self.ec_pub, 0o644)
        self.http_port = _free_port()
        self.http = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", str(self.http_port),
                                      "--bind", "127.0.0.1", "--directory", self.http_dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        with open(os.path.join(self.regd, "crisp-e2e.yaml"), "w") as f:
            f.write(f"""docker:
  {self.host}:
    lookaside: file://{self.lookaside}
  {self.host}/sig/http:
    lookaside: http://127.0.0.1:{self.http_port}
  {self.host}/sig/cosign:
    use-sigstore-attachments: true
""")
        os.chmod(os.path.join(self.regd, "crisp-e2e.yaml"), 0o644)
        self.policy = os.path.join(base, "policy.json")
        self.write_policy(self.global_policy())

    # ------------------------------------------------------------ policies

    def signed_by(self, key="a", identity=None):
        r = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": os.path.join(self.base, f"key-{key}.gpg")}
        if identity:
            r["signedIdentity"] = identity
        return [r]

    def global_policy(self, open_scope=True):
        h = self.host
        return {"default": [{"type": "reject"}],
                "transports": {"docker": {
                    h: [{"type": "insecureAcceptAnything"}],
                    f"{h}/sig": self.signed_by("a"),
                    f"{h}/sig/open": [{"type": "insecureAcceptAnything"}] if open_scope else [{"type": "reject"}],
                    f"{h}/sig/rejected": [{"type": "reject"}],
                    f"{h}/sig/anytag": self.signed_by("a", {"type": "matchRepository"}),
                    f"{h}/remap": self.signed_by("a", {"type": "remapIdentity", "prefix": f"{h}/remap",
                                                       "signedPrefix": f"{h}/upstream"}),
                    f"{h}/sig/cosign": [{"type": "sigstoreSigned", "keyPath": self.ec_pub,
                                         "signedIdentity": {"type": "matchRepository"}}],
                }}}

    def write_json(self, path, doc):
        with open(path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.chmod(path + ".tmp", 0o644)
        os.rename(path + ".tmp", path)  # replaced atomically, as an operator should

    def write_policy(self, doc):
        self.write_json(self.policy, doc)

    def conf(self):
        return (f"signature_policy = {self.policy}\nsignature_policy_dir = {self.nsdir}\n"
                f"registries_d = {self.regd}\n")

    # ------------------------------------------------------------ images

    def image(self, name, tag="v1"):
        return self.r.build_image(name, tag, files={"id": f"{name}:{tag}\n".encode()})

    def sigdir(self, img, base=None):
        repo = img.ref.split("/", 1)[1].rsplit(":", 1)[0]
        d = os.path.join(base or self.lookaside, f"{repo}@sha256={img.digest[7:]}")
        os.makedirs(d, exist_ok=True)
        p = d
        while p != (base or self.lookaside):
            os.chmod(p, 0o755)
            p = os.path.dirname(p)
        return d

    def sign(self, img, key="a", ref=None, base=None, manifest=None, n=1):
        out = os.path.join(self.sigdir(img, base), f"signature-{n}")
        self.keys.sign(key, manifest or img.manifest_bytes, ref or img.ref, out)
        return out

    def skopeo_sign_push(self, img):
        """Push img again with skopeo copy --sign-by: the signature lands in
        the http lookaside directory (lookaside-staging)."""
        regd = tempfile.mkdtemp(prefix="regd-", dir=self.keys.home)
        with open(os.path.join(regd, "sign.yaml"), "w") as f:
            f.write(f"docker:\n  {self.host}:\n    lookaside-staging: file://{self.http_dir}\n")
        tag = img.ref.rsplit(":", 1)[1]
        run(["skopeo", "--registries.d", regd, "copy", "--quiet", "--dest-tls-verify=false",
             "--sign-by", self.keys.fpr["a"], f"oci:{img.layout}:{tag}", f"docker://{img.ref}"],
            env=self.keys.env)
        for root, dirs, files in os.walk(self.http_dir):
            for n in dirs:
                os.chmod(os.path.join(root, n), 0o755)
            for n in files:
                os.chmod(os.path.join(root, n), 0o644)

    def cosign(self, img, ref=None):
        """Push a sigstore attachment for img, signed with the P-256 key."""
        payload = json.dumps({"critical": {"identity": {"docker-reference": ref or img.ref.rsplit(":", 1)[0]},
                                           "image": {"docker-manifest-digest": img.digest},
                                           "type": "cosign container image signature"},
                              "optional": None}, separators=(",", ":")).encode()
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(payload)
        try:
            sig = run(["openssl", "dgst", "-sha256", "-sign", self.ec, f.name])
        finally:
            os.unlink(f.name)
        repo = img.ref.split("/", 1)[1].rsplit(":", 1)[0]
        cfg = b"{}"
        for blob in (payload, cfg):
            self.push_blob(repo, blob)
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": "sha256:" + hashlib.sha256(cfg).hexdigest(), "size": len(cfg)},
               "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                           "digest": "sha256:" + hashlib.sha256(payload).hexdigest(), "size": len(payload),
                           "annotations": {"dev.cosignproject.cosign/signature": base64.b64encode(sig).decode()}}]}
        tag = "sha256-" + img.digest[7:] + ".sig"
        req = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{tag}", data=json.dumps(man).encode(),
                                     method="PUT",
                                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        urllib.request.urlopen(req, timeout=10).read()

    def push_blob(self, repo, blob):
        d = "sha256:" + hashlib.sha256(blob).hexdigest()
        resp = urllib.request.urlopen(urllib.request.Request(
            f"http://{self.host}/v2/{repo}/blobs/uploads/", data=b"", method="POST"), timeout=10)
        loc = resp.headers["Location"]
        if loc.startswith("/"):
            loc = f"http://{self.host}{loc}"
        loc += ("&" if "?" in loc else "?") + "digest=" + d
        urllib.request.urlopen(urllib.request.Request(loc, data=blob, method="PUT",
                                                      headers={"Content-Type": "application/octet-stream"}),
                               timeout=10).read()

    def cleanup(self):
        if self.http.poll() is None:
            os.kill(self.http.pid, signal.SIGTERM)
            try:
                self.http.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.http.pid, signal.SIGKILL)
                self.http.wait()
        self.keys.cleanup()


@pytest.fixture(scope="module")
def world(registry):
    os.makedirs(CONF_BASE, mode=0o755, exist_ok=True)
    base = tempfile.mkdtemp(prefix="e2e-sig-", dir=CONF_BASE)
    os.chmod(base, 0o755)
    w = World(registry, base)
    try:
        yield w
    finally:
        w.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def sc(crisp_factory, regconf, world, cri):
    pb, _ = cri
    c = crisp_factory(regconf.crisp_conf() + world.conf())
    if os.environ.get("CRISP_SANDBOX_DEBUG"):
        c.write_conf(regconf.crisp_conf() + world.conf())
        with open(c.conf) as f:
            t = f.read()
        with open(c.conf, "w") as f:
            f.write(t.replace("[crisp]\n", "[crisp]\nsandbox_debug = true\n", 1))
    c.start()
    c.pb = pb
    return c


def pod_config(pb, ns, name="p"):
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, namespace=ns, uid=f"uid-{ns}-{name}"))


def pull(c, ref, ns=None):
    pb = c.pb
    req = pb.PullImageRequest(image=pb.ImageSpec(image=ref))
    if ns:
        req.sandbox_config.CopyFrom(pod_config(pb, ns))
    return c.image().PullImage(req, timeout=120).image_ref


def refused(c, ref, ns=None):
    with pytest.raises(grpc.RpcError) as ei:
        pull(c, ref, ns)
    e = ei.value
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.details()
    assert "SignatureValidationFailed" in e.details(), e.details()
    return e.details()


def image_ids(c):
    return {i.id for i in c.image().ListImages(c.pb.ListImagesRequest(), timeout=10).images}


def audit(c):
    with open(os.path.join(c.root, "images", "audit.log")) as f:
        return [json.loads(l) for l in f.read().splitlines()]


def verify_audit(path):
    return subprocess.run([binary("crispd"), "--verify-audit", path], capture_output=True, text=True)


def blobs(c):
    d = os.path.join(c.root, "images", "blobs", "sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def assert_nothing_left(c, before_ids, before_layers, before_blobs):
    assert image_ids(c) == before_ids
    assert layers_dir(c) == before_layers
    assert blobs(c) == before_blobs


# -------------------------------------------------------------------- tests

def test_gpg_lookaside_cases(sc, world):
    c, w, h = sc, world, world.host
    ok = w.image("sig/signed")
    w.sign(ok)
    assert pull(c, ok.ref) == ok.id

    ids, lay, bl = image_ids(c), layers_dir(c), blobs(c)
    unsigned = w.image("sig/unsigned")
    assert "no signature exists" in refused(c, unsigned.ref)
    assert_nothing_left(c, ids, lay, bl)

    flipped = w.image("sig/flipped")
    p = w.sign(flipped)
    with open(p, "r+b") as f:
        b = bytearray(f.read())
        b[len(b) // 2] ^= 0x01
        f.seek(0)
        f.write(b)
    refused(c, flipped.ref)

    other = w.image("sig/otherkey")
    w.sign(other, key="b")
    refused(c, other.ref)

    wrongdigest = w.image("sig/wrongdigest")
    w.sign(wrongdigest, manifest=ok.manifest_bytes, ref=wrongdigest.ref)  # signs ok's digest
    refused(c, wrongdigest.ref)

    # identity: default matchRepoDigestOrExact refuses a signature for another tag ...
    tagged = w.image("sig/tagged", "v2")
    w.sign(tagged, ref=f"{h}/sig/tagged:v1")
    refused(c, tagged.ref)
    # ... matchRepository accepts another tag of the same repository ...
    anytag = w.image("sig/anytag", "v2")
    w.sign(anytag, ref=f"{h}/sig/anytag:v1")
    assert pull(c, anytag.ref) == anytag.id
    # ... but not another repository
    anytag2 = w.image("sig/anytag", "v3")
    w.sign(anytag2, ref=f"{h}/sig/elsewhere:v3")
    refused(c, anytag2.ref)
    # remapIdentity: signed as upstream/app, pulled as remap/app
    remap = w.image("remap/app")
    w.sign(remap, ref=f"{h}/upstream/app:v1")
    assert pull(c, remap.ref) == remap.id
    remap_bad = w.image("remap/other")
    w.sign(remap_bad, ref=f"{h}/remap/other:v1")  # not the signed prefix
    refused(c, remap_bad.ref)

    # reject scope, and the most specific scope wins over the repository's parent
    rej = w.image("sig/rejected")
    w.sign(rej)
    assert "rejected" in refused(c, rej.ref)
    opn = w.image("sig/open")
    assert pull(c, opn.ref) == opn.id

    # http lookaside, signed by skopeo as it pushes (lookaside-staging)
    hi = w.image("sig/http")
    w.skopeo_sign_push(hi)
    t0 = time.monotonic()
    assert pull(c, hi.ref) == hi.id
    t_signed = time.monotonic() - t0
    lay, bl = layers_dir(c), blobs(c)
    hu = w.image("sig/http", "unsigned")
    refused(c, hu.ref)
    assert_nothing_left(c, ids | {anytag.id, remap.id, opn.id, hi.id}, lay, bl)
    # decision cost: a present image pulled again (manifest + decision only)
    for ref in (opn.ref, ok.ref, hi.ref):
        t0 = time.monotonic()
        pull(c, ref)
        print(f"\nre-pull {ref}: {(time.monotonic() - t0) * 1000:.1f} ms")
    print(f"first pull {hi.ref} (http lookaside): {t_signed * 1000:.1f} ms")

    # every decision is in the audit log, allowed and refused, with the details
    recs = audit(c)
    by_ref = {}
    for r in recs:
        by_ref.setdefault(r["reference"], []).append(r)
    allowed = by_ref[ok.ref][-1]
    assert allowed["decision"] == "allow" and allowed["event"] == "pull"
    assert allowed["manifest_digest"] == ok.digest
    assert allowed["scope"] == f'transports.docker["{h}/sig"]'
    assert "signedBy" in allowed["requirement"]
    assert allowed["key_fingerprint"] == w.keys.fpr["a"]
    for img in (unsigned, flipped, other, wrongdigest, tagged, anytag2, remap_bad, rej, hu):
        r = by_ref[img.ref][-1]
        assert r["decision"] == "deny" and r["reason"], r
    v = verify_audit(os.path.join(c.root, "images", "audit.log"))
    assert v.returncode == 0, v.stdout + v.stderr


def test_sigstore_attachment(sc, world):
    c, w = sc, world
    good = w.image("sig/cosign")
    w.cosign(good)
    assert pull(c, good.ref) == good.id
    r = [x for x in audit(c) if x["reference"] == good.ref][-1]
    assert r["decision"] == "allow" and "sigstoreSigned" in r["requirement"]
    assert len(r["key_fingerprint"]) == 64

    unsigned = w.image("sig/cosign", "unsigned")
    refused(c, unsigned.ref)
    wrong = w.image("sig/cosign", "wrongref")
    w.cosign(wrong, ref=f"{w.host}/sig/someone-else")
    refused(c, wrong.ref)


def test_policy_replaced_and_present_image_reevaluated(sc, world):
    c, w = sc, world
    img = w.image("sig/open", "replace")
    assert pull(c, img.ref) == img.id
    try:
        w.write_policy(w.global_policy(open_scope=False))
        # present already: decided again, and refused now
        assert "rejected" in refused(c, img.ref)
    finally:
        w.write_policy(w.global_policy())
    assert pull(c, img.ref) == img.id
    decisions = [r["decision"] for r in audit(c) if r["reference"] == img.ref]
    assert decisions == ["allow", "deny", "allow"]


def test_per_namespace_policy_and_create(sc, world, tmpdir_short):
    c, w, pb = sc, world, sc.pb
    strict = os.path.join(w.nsdir, f"{NS_STRICT}.json")
    w.write_json(strict, {"default": [{"type": "reject"}],
                          "transports": {"docker": {f"{w.host}/sig": w.signed_by("a")}}})
    try:
        img = w.image("nsapp/unsigned")
        # no file for NS_OPEN: the global policy (host: insecureAcceptAnything)
        assert pull(c, img.ref, ns=NS_OPEN) == img.id
        # the strict namespace refuses the same image at pull ...
        refused(c, img.ref, ns=NS_STRICT)
        rt = c.runtime()
        pods = []
        try:
            for ns in (NS_OPEN, NS_STRICT):
                cfg = pb.PodSandboxConfig(
                    metadata=pb.PodSandboxMetadata(name="p", namespace=ns, uid=f"u-{ns}"),
                    hostname="p", log_directory=os.path.join(tmpdir_short, "logs", ns),
                    linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
                        namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD))))
                pid = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
                pods.append((pid, cfg))

            def create(pod, image):
                pid, cfg = pod
                cc = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"),
                                        image=pb.ImageSpec(image=image), command=["/bin/true"],
                                        log_path="c.log")
                return rt.CreateContainer(pb.CreateContainerRequest(
                    pod_sandbox_id=pid, config=cc, sandbox_config=cfg), timeout=60).container_id

            # ... and at create, by name and by id, with no network needed
            for ref in (img.ref, img.id):
                with pytest.raises(grpc.RpcError) as ei:
                    create(pods[1], ref)
                assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED, ei.value.details()
                assert "SignatureValidationFailed" in ei.value.details()
            cid = create(pods[0], img.id)
            rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)
            # a strict namespace with a signed image: allowed at create too
            signed = w.image("sig/nssigned")
            w.sign(signed)
            pull(c, signed.ref, ns=NS_STRICT)
            cid = create(pods[1], signed.ref)
            rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)
            # one image pulled by two references, unsigned and signed: by id, the
            # strict namespace tries both, and the signed one allows it
            multi = w.image("nsapp/multi")
            w.r.push_layout(multi.layout, "v1", "sig/multi:v1")
            signed_ref = f"{w.host}/sig/multi:v1"
            sdir = os.path.join(w.lookaside, "sig", f"multi@sha256={multi.digest[7:]}")
            os.makedirs(sdir, mode=0o755, exist_ok=True)
            os.chmod(os.path.dirname(sdir), 0o755)
            w.keys.sign("a", multi.manifest_bytes, signed_ref, os.path.join(sdir, "signature-1"))
            assert pull(c, multi.ref, ns=NS_OPEN) == multi.id
            assert pull(c, signed_ref, ns=NS_STRICT) == multi.id
            cid = create(pods[1], multi.id)
            rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)
        finally:
            for pid, _ in pods:
                rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
        creates = [r for r in audit(c) if r["event"] == "create"]
        assert [(r["namespace"], r["decision"]) for r in creates] == [
            (NS_STRICT, "deny"), (NS_STRICT, "deny"), (NS_OPEN, "allow"), (NS_STRICT, "allow"),
            (NS_STRICT, "allow")]
        assert creates[-1]["reference"] == f"{w.host}/sig/multi:v1", creates[-1]
        assert creates[0]["pod"] == "p" and creates[0]["reference"] == img.ref
    finally:
        os.unlink(strict)
        cleanup_host(c)


def test_audit_log_tamper_detected(sc, world, tmpdir_short):
    c, w = sc, world
    img = w.image("sig/open", "audit")
    pull(c, img.ref)
    refused(c, w.image("sig/unsigned", "audit").ref)
    log = os.path.join(c.root, "images", "audit.log")
    v = verify_audit(log)
    assert v.returncode == 0, v.stdout + v.stderr
    copy = os.path.join(tmpdir_short, "audit-copy.log")
    with open(log) as f:
        lines = f.read().splitlines()
    assert len(lines) >= 2
    lines[0] = lines[0].replace('"decision":"allow"', '"decision":"deny"')
    with open(copy, "w") as f:
        f.write("\n".join(lines) + "\n")
    v = verify_audit(copy)
    assert v.returncode == 1, v.stdout + v.stderr
