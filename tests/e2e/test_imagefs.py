"""ImageFsInfo: frontd asks imaged, which measures its own store."""

import os
import signal
import time

import grpc
import pytest


def usage(crisp, pb):
    r = crisp.image().ImageFsInfo(pb.ImageFsInfoRequest(), timeout=5)
    assert len(r.image_filesystems) == 1
    return r.image_filesystems[0]


def test_image_fs_info_measures_the_store(crisp, cri):
    pb, _ = cri
    store = os.path.join(crisp.root, "images")
    before = usage(crisp, pb)
    assert before.fs_id.mountpoint == store
    assert before.inodes_used.value >= 1
    assert abs(before.timestamp - time.time_ns()) < 60 * 10**9
    # 1 MiB more in the store, and a hard link to it counted once.
    with open(os.path.join(store, "blob"), "wb") as f:
        f.write(os.urandom(1 << 20))
    os.link(os.path.join(store, "blob"), os.path.join(store, "blob.link"))
    os.symlink("/etc", os.path.join(store, "outside"))
    after = usage(crisp, pb)
    assert after.used_bytes.value - before.used_bytes.value >= 1 << 20
    assert after.used_bytes.value - before.used_bytes.value < 2 << 20
    assert after.inodes_used.value == before.inodes_used.value + 2  # blob once, symlink


def test_backend_deadline_and_restart(crisp, cri):
    """A stalled owner costs the caller its deadline, not a hang; a dead one
    is UNAVAILABLE or answered by its new instance, never a hang."""
    pb, _ = cri
    pid = crisp.wait_roles()["crisp-imaged"]
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            crisp.image().ImageFsInfo(pb.ImageFsInfoRequest(), timeout=1)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 3
    finally:
        os.kill(pid, signal.SIGCONT)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    while True:
        try:
            usage(crisp, pb)
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e
            assert "imaged" in e.details()
        assert time.monotonic() - t0 < 5
        time.sleep(0.01)
    crisp.wait_roles(exclude={"crisp-imaged": pid})
