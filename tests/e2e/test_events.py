"""GetContainerEvents: a server-streaming call that stays open, ends
cleanly when the client cancels, and is bounded in listeners.  The events
themselves (created, started, stopped, deleted, with statuses) are checked
in test_containers.py's lifecycle, which drives real containers."""

import os
import signal
import threading
import time

import grpc
import pytest


def open_listener(crisp, pb):
    it = crisp.runtime().GetContainerEvents(pb.GetEventsRequest())
    got = []

    def pump():
        try:
            for ev in it:
                got.append(ev)
        except grpc.RpcError as e:
            got.append(e)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return it, got, t


def test_events_stream_stays_open_and_cancels(crisp, cri):
    pb, _ = cri
    it, got, t = open_listener(crisp, pb)
    time.sleep(0.5)
    assert t.is_alive() and got == [], got          # open, nothing happened
    # Other calls are served while it is open.
    crisp.runtime().Version(pb.VersionRequest(), timeout=5)
    it.cancel()
    t.join(5)
    assert not t.is_alive()
    assert isinstance(got[-1], grpc.RpcError) and got[-1].code() == grpc.StatusCode.CANCELLED
    # frontd dropped the listener: a new one works as before.
    it2, got2, t2 = open_listener(crisp, pb)
    time.sleep(0.2)
    assert t2.is_alive()
    it2.cancel()
    t2.join(5)


def test_events_listeners_are_bounded(crisp, cri):
    pb, _ = cri
    ls = [open_listener(crisp, pb) for _ in range(64)]
    time.sleep(1.0)
    assert all(t.is_alive() for _, _, t in ls)
    with pytest.raises(grpc.RpcError) as ei:
        for _ in crisp.runtime().GetContainerEvents(pb.GetEventsRequest(), timeout=5):
            pass
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for it, _, _ in ls:
        it.cancel()
    for _, _, t in ls:
        t.join(5)
    # All slots are free again.
    it, got, t = open_listener(crisp, pb)
    time.sleep(0.3)
    assert t.is_alive(), got
    it.cancel()
    t.join(5)


def test_events_survive_execd_restart(crisp, cri):
    """A listener stays subscribed across an execd restart (frontd
    subscribes again when execd is back)."""
    pb, _ = cri
    it, got, t = open_listener(crisp, pb)
    deadline = time.monotonic() + 5
    while crisp.logtext().count("container events subscribed") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert crisp.logtext().count("container events subscribed") == 1
    old = crisp.roles()["crisp-execd"]
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while crisp.roles().get("crisp-execd") in (None, old) and time.monotonic() < deadline:
        time.sleep(0.05)
    crisp.wait_roles()
    while crisp.logtext().count("container events subscribed") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert crisp.logtext().count("container events subscribed") == 2
    assert t.is_alive(), got
    it.cancel()
    t.join(5)
    deadline = time.monotonic() + 5
    while "container events unsubscribed" not in crisp.logtext() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "container events unsubscribed" in crisp.logtext()


from test_containers import env  # noqa: E402,F401  (the container fixture)


def test_events_follow_a_container_and_verbose_status(env):
    """created, started, stopped, deleted arrive in order, each with the
    pod's status and the container's as they are after the transition."""
    pb = env.pb
    it = env.rt.GetContainerEvents(pb.GetEventsRequest())
    got = []

    def pump():
        try:
            for ev in it:
                got.append(ev)
        except grpc.RpcError:
            pass

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    time.sleep(0.3)
    pod = env.pod("ev")
    cid = env.create(pod, env.busybox, command=["/bin/sh", "-c", "exit 3"])
    env.start(cid)
    env.wait_exit(cid)
    # verbose ContainerStatus: crisp's own view under "info"
    import json
    r = env.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True), timeout=10)
    info = json.loads(r.info["info"])
    assert info["sandboxID"] == pod[0] and info["state"] == "EXITED" and info["runtimeType"] == "crisp"
    assert info["imageID"].startswith("sha256:") and info["logPath"].endswith("c/0.log")
    assert not env.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid), timeout=10).info
    env.remove(cid)
    env.created.remove(cid)
    deadline = time.monotonic() + 10
    while len([e for e in got if e.container_id == cid]) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    mine = [e for e in got if e.container_id == cid]
    assert [e.container_event_type for e in mine] == [
        pb.CONTAINER_CREATED_EVENT, pb.CONTAINER_STARTED_EVENT, pb.CONTAINER_STOPPED_EVENT,
        pb.CONTAINER_DELETED_EVENT], mine
    assert all(e.pod_sandbox_status.id == pod[0] and e.pod_sandbox_status.metadata.name == "ev" for e in mine)
    assert all(e.created_at > 0 for e in mine)
    assert mine[0].containers_statuses[0].state == pb.CONTAINER_CREATED
    assert mine[0].containers_statuses[0].metadata.name == "c"
    assert mine[2].containers_statuses[0].state == pb.CONTAINER_EXITED
    assert mine[2].containers_statuses[0].exit_code == 3
    it.cancel()
    t.join(5)
