"""Image pulls end to end: PullImage, ListImages, ImageStatus, RemoveImage
against a real registry, with layers unpacked by execd."""

import os
import shutil
import signal
import subprocess
import time

import grpc
import pytest

from images import RegistriesConf, layers_dir
from test_containers import env  # noqa: F401  (fixture: a pod network and container helpers)


def pull(c, pb, ref, timeout=60, auth=None):
    req = pb.PullImageRequest(image=pb.ImageSpec(image=ref))
    if auth is not None:
        req.auth.CopyFrom(auth)
    return c.image().PullImage(req, timeout=timeout).image_ref


def status(c, pb, ref):
    r = c.image().ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)), timeout=10)
    return r.image if r.HasField("image") else None


def listed(c, pb, ref=None):
    req = pb.ListImagesRequest()
    if ref is not None:
        req.filter.image.image = ref
    return list(c.image().ListImages(req, timeout=10).images)


def remove(c, pb, ref):
    c.image().RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)), timeout=10)


def store_blobs(c):
    d = os.path.join(c.root, "images", "blobs", "sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def layer_tree(c, chain):
    return os.path.join(c.root, "layers", chain[7:])


def test_pull_status_list(crisp_images, registry, cri):
    pb, _ = cri
    c = crisp_images
    img = registry.busybox()
    t0 = time.monotonic()
    ref = pull(c, pb, img.ref)
    took = time.monotonic() - t0
    assert ref == img.id
    st = status(c, pb, img.ref)
    assert st is not None
    assert st.id == img.id
    assert list(st.repo_tags) == [img.ref]
    assert list(st.repo_digests) == [img.digest_ref]
    assert st.size == img.size()
    assert st.spec.image == img.id
    assert not st.pinned
    # by id, by short id prefix
    assert status(c, pb, img.id).id == img.id
    assert status(c, pb, img.id[7:19]).id == img.id
    # listed, and filtered
    ids = [i.id for i in listed(c, pb)]
    assert ids == [img.id]
    assert [i.id for i in listed(c, pb, img.ref)] == [img.id]
    assert listed(c, pb, f"{registry.host}/nothere:1") == []
    # execd unpacked the layer, root-owned, with the right content
    chains = img.chain_ids()
    assert layers_dir(c) == [x[7:] for x in chains]
    tree = layer_tree(c, chains[0])
    st_bb = os.stat(os.path.join(tree, "bin", "busybox"))
    assert st_bb.st_uid == 0 and st_bb.st_mode & 0o111
    assert os.readlink(os.path.join(tree, "bin", "sh")) == "busybox"
    with open(os.path.join(tree, "bin", "busybox"), "rb") as a, open("/bin/busybox", "rb") as b:
        assert a.read() == b.read()
    # pulling again is quick and changes nothing
    assert pull(c, pb, img.ref) == img.id
    assert layers_dir(c) == [x[7:] for x in chains]
    # verbose: crisp's own record of the image under "info"
    import json
    r = c.image().ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=img.ref), verbose=True), timeout=10)
    info = json.loads(r.info["info"])
    assert info["id"] == img.id and info["chainIDs"] == chains
    assert info["imageSpec"]["rootfs"]["type"] == "layers" and info["imageSpec"]["os"] == "linux"
    assert info["manifestDigest"].startswith("sha256:")
    assert not c.image().ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=img.ref)), timeout=10).info
    print(f"first pull took {took:.3f}s")


def test_unknown_image_status_is_empty(crisp_images, cri):
    pb, _ = cri
    assert status(crisp_images, pb, "docker.io/library/nothere:latest") is None
    assert status(crisp_images, pb, "sha256:" + "ab" * 32) is None
    # removing an unknown image is success (idempotent)
    remove(crisp_images, pb, "docker.io/library/nothere:latest")
    remove(crisp_images, pb, "sha256:" + "ab" * 32)


def test_pull_by_digest_and_short_forms(crisp_images, registry, cri):
    pb, _ = cri
    c = crisp_images
    img = registry.busybox()
    assert pull(c, pb, img.digest_ref) == img.id
    st = status(c, pb, img.digest_ref)
    assert st.id == img.id
    # by digest only: no tag recorded
    assert list(st.repo_tags) == []
    assert list(st.repo_digests) == [img.digest_ref]
    # a wrong digest is refused before anything is stored
    bad = f"{img.repo}@sha256:{'0' * 64}"
    with pytest.raises(grpc.RpcError) as e:
        pull(c, pb, bad)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert bad in e.value.details()


def test_multiarch_index_selects_amd64(crisp_images, registry, cri):
    pb, _ = cri
    c = crisp_images
    amd = registry.build_image("multi", "amd", files={"arch": b"amd64\n"}, push=False)
    arm = registry.build_image("multi", "arm", files={"arch": b"arm64\n"}, arch="arm64",
                               push=False)
    ref, idx_digest = registry.build_index("multi", "v1", [arm, amd])
    assert pull(c, pb, ref) == amd.id
    st = status(c, pb, ref)
    # the repo digest is the index's: what the reference named
    assert list(st.repo_digests) == [f"{registry.host}/multi@{idx_digest}"]
    top = layer_tree(c, amd.chain_ids()[-1])
    with open(os.path.join(top, "arch")) as f:
        assert f.read() == "amd64\n"
    # an index with no image for this node: NOT_FOUND naming what it has
    only_arm, _ = registry.build_index("multi", "armonly", [arm])
    with pytest.raises(grpc.RpcError) as e:
        pull(c, pb, only_arm)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "linux/arm64" in e.value.details()


def test_zstd_layers(crisp_images, registry, cri):
    pb, _ = cri
    c = crisp_images
    img = registry.build_image("zbox", "v1", files={"etc/hello": b"zstd\n"}, compression="zstd")
    assert img.layers[0][3].endswith("+zstd")
    assert pull(c, pb, img.ref) == img.id
    with open(os.path.join(layer_tree(c, img.chain_ids()[-1]), "etc", "hello")) as f:
        assert f.read() == "zstd\n"


def test_image_config_fields(crisp_images, registry, cri):
    pb, _ = cri
    c = crisp_images
    img = registry.build_image("cfg", "uid", user="1234:5", workdir="/w",
                               entrypoint=["/bin/echo"], cmd=["hi"])
    pull(c, pb, img.ref)
    st = status(c, pb, img.ref)
    assert st.HasField("uid") and st.uid.value == 1234 and st.username == ""
    img2 = registry.build_image("cfg", "named", user="nobody")
    pull(c, pb, img2.ref)
    st2 = status(c, pb, img2.ref)
    assert not st2.HasField("uid") and st2.username == "nobody"


def test_missing_image_leaves_nothing(crisp_images, registry, cri):
    pb, _ = cri
    c = crisp_images
    ref = f"{registry.host}/does/not/exist:1"
    with pytest.raises(grpc.RpcError) as e:
        pull(c, pb, ref)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert ref in e.value.details()
    assert listed(c, pb) == []
    assert store_blobs(c) == []
    assert layers_dir(c) == []


def test_corrupted_blob_is_refused(crisp_images, registry, cri):
    pb, _ = cri
    c = crisp_images
    img = registry.build_image("corrupt", "v1", files={"f": b"x" * 4096})
    registry.corrupt_blob(img.layers[-1][0])
    with pytest.raises(grpc.RpcError) as e:
        pull(c, pb, img.ref)
    assert e.value.code() == grpc.StatusCode.DATA_LOSS, e.value.details()
    assert listed(c, pb) == []
    assert status(c, pb, img.ref) is None
    # nothing half-made: no image, no blob of this pull, no layer
    assert store_blobs(c) == []
    assert layers_dir(c) == []
    assert not [n for n in os.listdir(os.path.join(c.root, "layers")) if n.startswith(".tmp-")]


@pytest.mark.parametrize("entries,what", [
    ([("../escape", b"out\n")], ".."),
    ([("/abs", b"out\n")], "absolute"),
    ([("lnk", ("symlink", "/etc")), ("lnk/passwd", b"x\n")], "symlink"),
])
def test_hostile_layer_is_refused(crisp_images, registry, cri, entries, what):
    pb, _ = cri
    c = crisp_images
    img = registry.build_image("hostile", "v1", layers=[entries])
    with pytest.raises(grpc.RpcError) as e:
        pull(c, pb, img.ref)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert listed(c, pb) == []
    parent = os.path.dirname(c.root)
    assert not os.path.exists(os.path.join(parent, "escape"))
    assert not os.path.exists(os.path.join(c.root, "escape"))
    assert not os.path.exists("/abs")
    # the base layer unpacked for this pull was released again; no tmp trees
    assert layers_dir(c) == []
    assert not [n for n in os.listdir(os.path.join(c.root, "layers")) if n.startswith(".tmp-")]


def test_diff_id_lie_is_refused(crisp_images, registry, cri):
    """A config whose diff_ids do not match the layer: execd measures it."""
    pb, _ = cri
    c = crisp_images
    img = registry.build_image("liar", "v1", files={"a": b"a\n"}, push=False)
    # rewrite the config with a wrong diff id, then the manifest, then push
    import json
    from images import sha256
    cfg = dict(img.config)
    cfg["rootfs"] = {"type": "layers", "diff_ids": list(cfg["rootfs"]["diff_ids"])}
    cfg["rootfs"]["diff_ids"][-1] = sha256(b"something else")
    cb = json.dumps(cfg, sort_keys=True).encode()
    blobs = os.path.join(img.layout, "blobs", "sha256")
    cd = sha256(cb)
    with open(os.path.join(blobs, cd[7:]), "wb") as f:
        f.write(cb)
    man = dict(img.manifest)
    man["config"] = dict(man["config"], digest=cd, size=len(cb))
    mb = json.dumps(man, sort_keys=True).encode()
    md = sha256(mb)
    with open(os.path.join(blobs, md[7:]), "wb") as f:
        f.write(mb)
    with open(os.path.join(img.layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
             "size": len(mb), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
    registry.push_layout(img.layout, "v1", "liar:v1")
    with pytest.raises(grpc.RpcError) as e:
        pull(c, pb, img.ref)
    assert e.value.code() == grpc.StatusCode.DATA_LOSS, e.value.details()
    assert "diff id" in e.value.details()
    assert listed(c, pb) == []
    assert layers_dir(c) == []


def test_remove_by_tag_and_id(crisp_images, registry, cri):
    pb, _ = cri
    c = crisp_images
    a = registry.build_image("rm", "a", files={"a": b"a\n"})
    # the same image under a second tag
    registry.push_layout(a.layout, "a", "rm:b")
    b_ref = f"{registry.host}/rm:b"
    other = registry.build_image("rm2", "v1", files={"o": b"o\n"})
    assert pull(c, pb, a.ref) == a.id
    assert pull(c, pb, b_ref) == a.id
    assert pull(c, pb, other.ref) == other.id
    st = status(c, pb, a.id)
    assert sorted(st.repo_tags) == sorted([a.ref, b_ref])
    # removing one tag keeps the image under the other
    remove(c, pb, a.ref)
    st = status(c, pb, a.id)
    assert list(st.repo_tags) == [b_ref]
    assert status(c, pb, a.ref) is None
    # the shared busybox base stays while "other" uses it; a's own layer goes
    remove(c, pb, a.id)
    assert status(c, pb, a.id) is None
    assert layers_dir(c) == sorted(x[7:] for x in other.chain_ids())
    # idempotent
    remove(c, pb, a.id)
    remove(c, pb, b_ref)
    # by tag, last tag: the image goes, and with it every layer
    remove(c, pb, other.ref)
    assert listed(c, pb) == []
    assert layers_dir(c) == []
    assert store_blobs(c) == []


def test_short_name_and_search_registry(crisp_factory, registry, cri):
    """unqualified-search-registries qualifies short names; insecure only
    by configuration."""
    pb, _ = cri
    img = registry.build_image("library/shorty", "latest", files={"s": b"s\n"})
    rc = RegistriesConf()
    try:
        rc.insecure(registry.host, extra="")
        with open(rc.path) as f:
            body = f.read()
        rc.write(f'unqualified-search-registries = ["{registry.host}", "docker.io"]\n\n' + body)
        c = crisp_factory(rc.crisp_conf())
        c.start()
        assert pull(c, pb, "library/shorty") == img.id
        assert status(c, pb, "library/shorty").id == img.id
        assert status(c, pb, f"{registry.host}/library/shorty:latest").id == img.id
        remove(c, pb, "library/shorty")
        assert listed(c, pb) == []
    finally:
        rc.cleanup()


def test_plain_http_needs_configuration(crisp, registry, cri):
    """Without registries.conf marking it insecure, even a loopback
    registry is https only."""
    pb, _ = cri
    img = registry.busybox()
    with pytest.raises(grpc.RpcError) as e:
        pull(crisp, pb, img.ref, timeout=30)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
    assert listed(crisp, pb) == []


def test_mirror(crisp_factory, registry, cri):
    """registry.k8s.io/X and gcr.io/X served from the test registry, as the
    conformance suite needs; a dead mirror first is skipped."""
    pb, _ = cri
    img = registry.build_image("pause", "3.9", files={"p": b"p\n"})
    rc = RegistriesConf()
    try:
        rc.write(f"""
[[registry]]
prefix = "registry.k8s.io"
location = "{registry.host}"
insecure = true

[[registry]]
prefix = "gcr.io"
location = "gcr.io"
[[registry.mirror]]
location = "127.0.0.1:1"
insecure = true
[[registry.mirror]]
location = "{registry.host}"
insecure = true
""")
        c = crisp_factory(rc.crisp_conf())
        c.start()
        assert pull(c, pb, "registry.k8s.io/pause:3.9") == img.id
        assert list(status(c, pb, "registry.k8s.io/pause:3.9").repo_tags) == \
            ["registry.k8s.io/pause:3.9"]
        assert pull(c, pb, "gcr.io/pause:3.9") == img.id
        st = status(c, pb, img.id)
        assert sorted(st.repo_tags) == ["gcr.io/pause:3.9", "registry.k8s.io/pause:3.9"]
    finally:
        rc.cleanup()


def test_bad_registries_conf_refuses_start(crisp_factory, registry):
    rc = RegistriesConf()
    try:
        rc.write("[[registry]]\nlocation = \"x\"\nbogus = 1\n")
        c = crisp_factory(rc.crisp_conf())
        with pytest.raises(AssertionError):
            c.start(timeout=3)
        assert "registries.conf line 3" in c.logtext()
    finally:
        rc.cleanup()


def test_concurrent_pulls_share_work(crisp_images, registry, cri):
    pb, _ = cri
    c = crisp_images
    img = registry.build_image("conc", "v1", files={"big": os.urandom(1 << 20)})
    fut = [c.image().PullImage.future(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)),
                                      timeout=60) for _ in range(4)]
    assert [f.result().image_ref for f in fut] == [img.id] * 4
    assert len(listed(c, pb)) == 1
    assert layers_dir(c) == sorted(x[7:] for x in img.chain_ids())


def _busy(c, victim):
    """imaged has a blob download open, or execd an unpack running."""
    if victim == "crisp-imaged":
        d = os.path.join(c.root, "images", "tmp")
        return os.path.isdir(d) and bool(os.listdir(d))
    d = os.path.join(c.root, "layers")
    return os.path.isdir(d) and any(n.startswith(".tmp-") for n in os.listdir(d))


@pytest.mark.parametrize("victim", ["crisp-imaged", "crisp-execd"])
def test_kill_mid_pull_then_pull_works(crisp_images, registry, cri, victim):
    pb, _ = cri
    c = crisp_images
    big = [{f"big{i}": os.urandom(16 << 20)} for i in range(3)]
    img = registry.build_image(f"kill-{victim[6:]}", "v1", layers=big, compression="none")
    f = c.image().PullImage.future(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)),
                                   timeout=60)
    t0 = time.monotonic()
    while not _busy(c, victim) and time.monotonic() - t0 < 20:
        time.sleep(0.002)
    assert _busy(c, victim), "the pull finished before it could be interrupted"
    roles = c.roles()
    os.kill(roles[victim], signal.SIGKILL)
    with pytest.raises(grpc.RpcError):
        f.result()
    c.wait_roles(10, exclude={victim: roles[victim]})
    # the next pull works, and nothing stale is left
    assert pull(c, pb, img.ref) == img.id
    assert layers_dir(c) == sorted(x[7:] for x in img.chain_ids())
    assert not [n for n in os.listdir(os.path.join(c.root, "layers")) if n.startswith(".tmp-")]
    assert os.listdir(os.path.join(c.root, "images", "tmp")) == []
    remove(c, pb, img.id)
    assert layers_dir(c) == []


def test_image_in_use_is_kept(env, cri):
    """A container pins its image (imaged) and holds its layers (execd):
    RemoveImage is refused while it exists; once it is removed, the image
    and every layer go."""
    pb, _ = cri
    c = env.c
    img = env.registry.build_image("inuse", "v1", files={"f": b"in use\n"})
    pull(c, pb, img.ref)
    pod = env.pod("imgpin")
    cid = env.create(pod, img.ref, command=["/bin/true"])
    with pytest.raises(grpc.RpcError) as e:
        remove(c, pb, img.id)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert status(c, pb, img.id) is not None
    holds = os.listdir(os.path.join(c.root, "layers", ".holds"))
    assert cid in holds
    env.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)
    env.created.remove(cid)
    assert cid not in os.listdir(os.path.join(c.root, "layers", ".holds"))
    remove(c, pb, img.id)
    assert status(c, pb, img.id) is None
    # busybox (pulled by the fixture) keeps the shared base layer only
    assert layers_dir(c) == [registry_chain[7:] for registry_chain in
                             env.registry.busybox().chain_ids()]


class StallingProxy:
    """A registry in front of the test registry that forwards everything
    but never answers for one blob: a pull of that image hangs until its
    client gives up."""

    def __init__(self, upstream, stall_digest):
        import http.server
        import threading
        import urllib.request
        self.stalled = threading.Event()
        self.release = threading.Event()
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self.do_GET(head=True)

            def do_GET(self, head=False):
                if stall_digest in self.path and "/blobs/" in self.path:
                    proxy.stalled.set()
                    proxy.release.wait(30)
                    return
                req = urllib.request.Request(f"http://{upstream}{self.path}", method="HEAD" if head else "GET",
                                             headers={k: v for k, v in self.headers.items() if k.lower() == "accept"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        body, code, hdrs = r.read(), r.status, r.headers
                except urllib.error.HTTPError as e:
                    body, code, hdrs = e.read(), e.code, e.headers
                self.send_response(code)
                for k in ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version"):
                    if hdrs.get(k):
                        self.send_header(k, hdrs[k])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.host = f"127.0.0.1:{self.srv.server_address[1]}"
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.release.set()
        self.srv.shutdown()
        self.srv.server_close()


def test_pull_cancelled_when_the_client_gives_up(crisp_factory, registry, cri):
    """The client's deadline passes mid-download: frontd cancels, imaged
    stops the pull and leaves nothing behind; the next pull works."""
    pb, _ = cri
    img = registry.build_image("stall", "v1", files={"big": os.urandom(64 * 1024)})
    proxy = StallingProxy(registry.host, img.layers[-1][0].split(":", 1)[1])
    rc = RegistriesConf()
    try:
        rc.insecure(proxy.host, registry.host)
        c = crisp_factory(rc.crisp_conf())
        c.start()
        ref = img.ref.replace(registry.host, proxy.host)
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            c.image().PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=1.5)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 5
        assert proxy.stalled.is_set()
        deadline = time.monotonic() + 10
        while "cancelled by the client" not in c.logtext() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "cancelled by the client" in c.logtext()
        # nothing of it is left: no image, no partial blob
        assert status(c, pb, ref) is None
        tmp = os.path.join(c.root, "images", "tmp")
        deadline = time.monotonic() + 5
        while os.path.isdir(tmp) and os.listdir(tmp) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.isdir(tmp) or os.listdir(tmp) == []
        # execd releases what the cancelled pull unpacked, just after
        deadline = time.monotonic() + 10
        while layers_dir(c) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert layers_dir(c) == []
        # the same image straight from the registry pulls fine
        assert pull(c, pb, img.ref) == img.id
    finally:
        proxy.close()
        rc.cleanup()


# ------------------------------------------------ credentials, CAs, limits

def _write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o644)
    os.rename(path + ".tmp", path)


def _auth_json(entries):
    import base64
    import json
    return json.dumps({"auths": {k: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()}
                                 for k, (u, p) in entries.items()}})


def _nothing_stored(c, pb):
    assert listed(c, pb) == []
    assert layers_dir(c) == []
    assert store_blobs(c) == []
    tmp = os.path.join(c.root, "images", "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []


def test_basic_auth_cri_and_auth_file(crisp_factory, registry, cri):
    """A registry with htpasswd Basic auth: refused without credentials,
    pulled with CRI AuthConfig, then with the auth file (re-read when it
    changes, most specific key first); a wrong password is UNAUTHENTICATED,
    names the registry and stores nothing; AuthConfig wins over the file."""
    from images import SideRegistry
    pb, _ = cri
    img = registry.build_image("private/app", "v1", files={"a": b"secret app\n"})
    side = SideRegistry(registry, auth=("tester", "s3cret")).start()
    rc = RegistriesConf()
    try:
        rc.insecure(side.host)
        authf = os.path.join(rc.dir, "auth.json")
        c = crisp_factory(rc.crisp_conf() + f"auth_file = {authf}\n")
        c.start()
        ref = img.ref.replace(registry.host, side.host)

        with pytest.raises(grpc.RpcError) as e:
            pull(c, pb, ref, timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value.details()
        assert side.host in e.value.details()
        _nothing_stored(c, pb)

        bad = pb.AuthConfig(username="tester", password="wrong")
        with pytest.raises(grpc.RpcError) as e:
            pull(c, pb, ref, timeout=30, auth=bad)
        assert e.value.code() in (grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.PERMISSION_DENIED), e.value.details()
        assert side.host in e.value.details()
        assert "wrong" not in e.value.details()
        _nothing_stored(c, pb)

        good = pb.AuthConfig(username="tester", password="s3cret")
        assert pull(c, pb, ref, auth=good) == img.id
        remove(c, pb, img.id)
        _nothing_stored(c, pb)
        # the "auth" form of AuthConfig
        import base64
        assert pull(c, pb, ref, auth=pb.AuthConfig(
            auth=base64.b64encode(b"tester:s3cret").decode())) == img.id
        remove(c, pb, img.id)

        # the auth file appears: used without a reload
        _write(authf, _auth_json({side.host: ("tester", "s3cret")}))
        assert pull(c, pb, ref) == img.id
        remove(c, pb, img.id)
        _nothing_stored(c, pb)

        # the most specific key wins: host/private/app has a wrong password
        _write(authf, _auth_json({side.host: ("tester", "s3cret"),
                                  f"{side.host}/private/app": ("tester", "nope")}))
        with pytest.raises(grpc.RpcError) as e:
            pull(c, pb, ref, timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value.details()
        assert side.host in e.value.details()
        _nothing_stored(c, pb)
        # ... and CRI AuthConfig wins over the file
        assert pull(c, pb, ref, auth=good) == img.id
        remove(c, pb, img.id)

        # a broken file is a clear error, not a silent anonymous pull
        _write(authf, '{"auths": {"x": {"auth": "bad"}}, "auths": {}}')
        with pytest.raises(grpc.RpcError) as e:
            pull(c, pb, ref, timeout=30)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value.details()
        assert authf in e.value.details()
        _nothing_stored(c, pb)
        # nothing secret reaches the log
        assert "s3cret" not in c.logtext() and "nope" not in c.logtext()
    finally:
        side.stop()
        rc.cleanup()


def test_bad_auth_file_refuses_start(crisp_factory):
    rc = RegistriesConf()
    try:
        authf = os.path.join(rc.dir, "auth.json")
        _write(authf, '{"auths": {}, "credsStore": "desktop"}')
        c = crisp_factory(f"\n[imaged]\nauth_file = {authf}\n")
        with pytest.raises(AssertionError):
            c.start(timeout=3)
        assert "credential helpers" in c.logtext()
    finally:
        rc.cleanup()


def test_blocked_registry_is_refused(crisp_factory, registry, cri):
    pb, _ = cri
    img = registry.busybox()
    rc = RegistriesConf()
    try:
        rc.write(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\nblocked = true\n')
        c = crisp_factory(rc.crisp_conf())
        c.start()
        with pytest.raises(grpc.RpcError) as e:
            pull(c, pb, img.ref, timeout=30)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, e.value.details()
        assert "blocked" in e.value.details() and registry.host in e.value.details()
        _nothing_stored(c, pb)
    finally:
        rc.cleanup()


def test_stalled_blob_trips_the_stall_timeout(crisp_factory, registry, cri):
    """The registry stops sending mid-pull: imaged's own stall timeout
    ([imaged] stall_timeout_s) ends the pull with DEADLINE_EXCEEDED long
    before the client's deadline, and nothing of it is left."""
    pb, _ = cri
    img = registry.build_image("stall2", "v1", files={"big": os.urandom(64 * 1024)})
    proxy = StallingProxy(registry.host, img.layers[-1][0].split(":", 1)[1])
    rc = RegistriesConf()
    try:
        rc.insecure(proxy.host, registry.host)
        c = crisp_factory(rc.crisp_conf() + "stall_timeout_s = 2\n")
        c.start()
        ref = img.ref.replace(registry.host, proxy.host)
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            pull(c, pb, ref, timeout=60)
        took = time.monotonic() - t0
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
        assert "stalled" in e.value.details() and proxy.host in e.value.details()
        assert 1.5 < took < 15, took
        assert proxy.stalled.is_set()
        assert status(c, pb, ref) is None
        _nothing_stored(c, pb)
    finally:
        proxy.close()
        rc.cleanup()


def test_registry_ca_from_certs_dir(crisp_factory, registry, cri):
    """A TLS registry with its own CA: refused without the CA, pulled once
    <certs_dir>/<host:port>/ca.crt holds it."""
    from images import SideRegistry, make_tls
    pb, _ = cri
    img = registry.build_image("tls/app", "v1", files={"t": b"tls\n"})
    rc = RegistriesConf()
    side = None
    try:
        tlsdir = os.path.join(rc.dir, "tls")
        os.makedirs(tlsdir)
        ca, crt, key = make_tls(tlsdir)
        side = SideRegistry(registry, tls=(crt, key)).start()
        certs = os.path.join(rc.dir, "certs.d")
        os.makedirs(certs)
        os.chmod(certs, 0o755)
        rc.write("")
        c = crisp_factory(rc.crisp_conf() + f"certs_dir = {certs}\n")
        c.start()
        ref = img.ref.replace(registry.host, side.host)
        with pytest.raises(grpc.RpcError) as e:
            pull(c, pb, ref, timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
        _nothing_stored(c, pb)
        # another host's CA does not help
        os.makedirs(os.path.join(certs, "127.0.0.1:1"))
        shutil.copy(ca, os.path.join(certs, "127.0.0.1:1", "ca.crt"))
        with pytest.raises(grpc.RpcError) as e:
            pull(c, pb, ref, timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
        hd = os.path.join(certs, side.host)
        os.makedirs(hd)
        shutil.copy(ca, os.path.join(hd, "ca.crt"))
        for root, dirs, files in os.walk(certs):
            for n in dirs:
                os.chmod(os.path.join(root, n), 0o755)
            for n in files:
                os.chmod(os.path.join(root, n), 0o644)
        assert pull(c, pb, ref) == img.id
        assert status(c, pb, ref).id == img.id
    finally:
        if side is not None:
            side.stop()
        rc.cleanup()
