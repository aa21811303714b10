"""SELinux labels and AppArmor profiles end to end (execd/lsm.h).

What runs on every node: the detection crisp reports (crispd's log and
PodSandboxStatus verbose info), the per-pod MCS levels (unique, recorded,
the same after execd is killed and restarted), and what a user sees when
the node has neither LSM enabled: SELinux options checked (a malformed
level is INVALID_ARGUMENT) and otherwise ignored, AppArmor runtime/default
and unconfined accepted with nothing applied, a localhost profile refused
with FAILED_PRECONDITION.

The enforcing cases are critest's SELinux specs (SE1-SE9, and C13's
selinux_relabel) and AppArmor specs (AA1-AA3), plus crisp's own default
profile: they run only on a node where the LSM is enabled and are skipped,
with the reason, elsewhere.
"""

import json
import os
import re
import signal
import subprocess
import tempfile

import grpc
import pytest

from test_containers import Env, env, bb  # noqa: F401  (env is a fixture)

NS = "crisp-e2e-lsm"


def selinux_enabled():
    # libselinux's is_selinux_enabled(): selinuxfs mounted with a policy
    return os.path.exists("/sys/fs/selinux/enforce")


def apparmor_enabled():
    # libapparmor's aa_is_enabled(), as runc checks it
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y" and os.path.isdir("/sys/kernel/security/apparmor")
    except OSError:
        return False


def lsm_pod(env, name, selinux=None, privileged=False):
    """RunPodSandbox with the pod's own SELinux options; returns (id, config)."""
    pb = env.pb
    md = pb.PodSandboxMetadata(name=name, namespace=NS, uid=f"uid-{name}")
    sc = pb.LinuxSandboxSecurityContext(
        namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD),
        privileged=privileged)
    if selinux is not None:
        sc.selinux_options.CopyFrom(pb.SELinuxOption(**selinux))
    cfg = pb.PodSandboxConfig(metadata=md, hostname=f"{name}-host",
                              log_directory=os.path.join(env.tmp, "logs", name),
                              linux=pb.LinuxPodSandboxConfig(security_context=sc))
    pid = env.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
    env.pods.append(pid)
    return pid, cfg


def ctr_sc(env, selinux=None, apparmor=None, apparmor_profile="", privileged=False):
    pb = env.pb
    sc = pb.LinuxContainerSecurityContext(
        namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD),
        privileged=privileged, apparmor_profile=apparmor_profile)
    if selinux is not None:
        sc.selinux_options.CopyFrom(pb.SELinuxOption(**selinux))
    if apparmor is not None:
        sc.apparmor.CopyFrom(apparmor)
    return sc


def pod_info(env, pid):
    r = env.rt.PodSandboxStatus(env.pb.PodSandboxStatusRequest(pod_sandbox_id=pid, verbose=True), timeout=10)
    return json.loads(r.info["info"])


def sh(env, cid, script, timeout=10):
    r = env.rt.ExecSync(env.pb.ExecSyncRequest(container_id=cid, cmd=["/bin/sh", "-c", script], timeout=timeout),
                        timeout=timeout + 10)
    return r.exit_code, r.stdout.decode(), r.stderr.decode()


def running(env, pod, name, sc, mounts=None):
    cid = env.create(pod, env.busybox, name=name, command=bb("sleep", "1000"), sc=sc, mounts=mounts)
    env.start(cid)
    return cid


def pod_ids(env):
    return {p.id for p in env.rt.ListPodSandbox(env.pb.ListPodSandboxRequest(), timeout=10).items}


def ctr_ids(env):
    return {c.id for c in env.rt.ListContainers(env.pb.ListContainersRequest(), timeout=10).containers}


MCS = re.compile(r"^s0:c(\d+),c(\d+)$")

# --------------------------------------------------------------- every node


def test_lsm_detection_reported(env):
    log = env.c.logtext()
    if selinux_enabled():
        assert "lsm: SELinux enabled" in log
    else:
        assert "lsm: SELinux is not enabled" in log
    if apparmor_enabled():
        assert "lsm: AppArmor enabled" in log
    else:
        assert "lsm: AppArmor is not enabled" in log
    pid, _ = lsm_pod(env, "detect")
    info = pod_info(env, pid)
    assert info["selinux"]["enabled"] == selinux_enabled()
    assert info["apparmor"]["enabled"] == apparmor_enabled()
    m = MCS.match(info["selinux"]["mcsLevel"])
    assert m and int(m.group(1)) < int(m.group(2)) < 1024, info
    if selinux_enabled():
        assert info["selinux"]["processLabel"].endswith(":" + info["selinux"]["mcsLevel"])
        assert ":container_file_t:" in info["selinux"]["mountLabel"]
    else:
        assert info["selinux"]["processLabel"] == "" and info["selinux"]["mountLabel"] == ""
    if apparmor_enabled():
        assert info["apparmor"]["defaultProfile"] == "crisp-default"
        assert info["apparmor"]["defaultProfileLoaded"] is True


def test_pod_mcs_levels_unique_and_kept_across_execd_restart(env):
    pods = [lsm_pod(env, f"mcs{i}")[0] for i in range(6)]
    own = lsm_pod(env, "own", selinux={"level": "s0:c4,c5"})[0]
    levels = {p: pod_info(env, p)["selinux"]["mcsLevel"] for p in pods}
    assert len(set(levels.values())) == len(pods), levels
    assert all(MCS.match(v) for v in levels.values()), levels
    assert pod_info(env, own)["selinux"]["mcsLevel"] == "s0:c4,c5"
    # execd dies and comes back: the levels are the recorded ones
    roles = env.c.wait_roles()
    os.kill(roles["crisp-execd"], signal.SIGKILL)
    env.c.wait_roles(exclude={"crisp-execd": roles["crisp-execd"]})
    env.c.wait_version()
    assert {p: pod_info(env, p)["selinux"]["mcsLevel"] for p in pods} == levels
    # and the reloaded levels are never handed out again
    more = [lsm_pod(env, f"after{i}")[0] for i in range(4)]
    new = [pod_info(env, p)["selinux"]["mcsLevel"] for p in more]
    assert not set(new) & set(levels.values()), (new, levels)
    assert len(set(new)) == len(new)


def test_invalid_selinux_level_refused_on_every_node(env):
    """SE3's "s0,c4,c5" is INVALID_ARGUMENT, for a pod and for a container,
    whatever the node: a spec that fails on an SELinux node fails here too."""
    pb = env.pb
    before = pod_ids(env)
    with pytest.raises(grpc.RpcError) as ei:
        lsm_pod(env, "badpod", selinux={"level": "s0,c4,c5"})
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "s0,c4,c5" in ei.value.details()
    assert pod_ids(env) == before  # nothing half made
    pod = lsm_pod(env, "p")
    before = ctr_ids(env)
    for opts in ({"level": "s0,c4,c5"}, {"type": "container_t:s0"}, {"level": "s0:c1024"}):
        with pytest.raises(grpc.RpcError) as ei:
            env.create(pod, env.busybox, name="bad", command=bb("true"), sc=ctr_sc(env, selinux=opts))
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, opts
        assert "selinux_options" in ei.value.details()
    assert ctr_ids(env) == before
    del pb


def test_selinux_options_ignored_without_selinux(env):
    if selinux_enabled():
        pytest.skip("SELinux is enabled here: labels apply (see the enforcing tests)")  # reason: enforcing node
    pod = lsm_pod(env, "p", selinux={"user": "system_u", "role": "system_r", "type": "container_t",
                                     "level": "s0:c1,c2"})
    # SE2's full option set: accepted, nothing applied
    se2 = {"user": "system_u", "role": "system_r", "type": "svirt_lxc_net_t", "level": "s0:c4,c5"}
    vol = tempfile.mkdtemp(prefix="lsm-vol-", dir=env.tmp)
    with open(os.path.join(vol, "hello"), "w") as f:
        f.write("from the host\n")
    mounts = [env.pb.Mount(container_path="/vol", host_path=vol, selinux_relabel=True)]
    cid = running(env, pod, "c", ctr_sc(env, selinux=se2), mounts=mounts)
    assert sh(env, cid, "cat /vol/hello")[1] == "from the host\n"  # C13 without SELinux
    # no context= on any mount, no label readable
    code, mi, _ = sh(env, cid, "cat /proc/self/mountinfo")
    assert code == 0 and "context=" not in mi
    code, _, err = sh(env, cid, "cat /proc/self/attr/current")
    assert code != 0
    # privileged and level-only variants start too
    running(env, pod, "priv", ctr_sc(env, selinux={"level": "s0"}, privileged=True))
    # selinux_relabel of a system directory is a no-op without SELinux
    running(env, pod, "etc", ctr_sc(env), mounts=[env.pb.Mount(container_path="/hostetc", host_path="/etc",
                                                               readonly=True, selinux_relabel=True)])


def test_apparmor_without_apparmor(env):
    """runtime/default and unconfined apply nothing; a named profile cannot
    be honoured: FAILED_PRECONDITION, and no container is left."""
    if apparmor_enabled():
        pytest.skip("AppArmor is enabled here (see the enforcing tests)")  # reason: AppArmor node
    pb = env.pb
    pod = lsm_pod(env, "p")
    P = pb.SecurityProfile
    for name, sc in (("dflt", ctr_sc(env, apparmor=P(profile_type=P.RuntimeDefault))),
                     ("legacy", ctr_sc(env, apparmor_profile="runtime/default")),
                     ("unconf", ctr_sc(env, apparmor=P(profile_type=P.Unconfined))),
                     ("none", ctr_sc(env))):
        cid = running(env, pod, name, sc)
        assert sh(env, cid, "echo ok")[1] == "ok\n"
    before = ctr_ids(env)
    for sc in (ctr_sc(env, apparmor=P(profile_type=P.Localhost, localhost_ref="my-profile")),
               ctr_sc(env, apparmor_profile="localhost/my-profile")):
        with pytest.raises(grpc.RpcError) as ei:
            env.create(pod, env.busybox, name="named", command=bb("true"), sc=sc)
        assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "AppArmor is not enabled" in ei.value.details() and "my-profile" in ei.value.details()
    assert ctr_ids(env) == before
    # a malformed legacy string is a bad request on any node
    with pytest.raises(grpc.RpcError) as ei:
        env.create(pod, env.busybox, name="bad", command=bb("true"), sc=ctr_sc(env, apparmor_profile="my-profile"))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ------------------------------------------------------------ SELinux node

# reason: critest runs its SELinux specs only where SELinux is enabled; so do these
need_selinux = pytest.mark.skipif(not selinux_enabled(), reason="SELinux is not enabled on this node")


def label(env, cid):
    code, out, _ = sh(env, cid, "cat /proc/self/attr/current")
    assert code == 0
    return out.strip("\0\n")


def categories(lbl):
    lvl = lbl.split(":", 3)[3]
    return lvl.split(":", 1)[1].split(",") if ":" in lvl else []


@need_selinux
@pytest.mark.parametrize("privileged", [False, True])
def test_se1_se2_levels_and_full_options(env, privileged):
    pod = lsm_pod(env, "p", privileged=privileged)
    cid = running(env, pod, "lvl", ctr_sc(env, selinux={"level": "s0"}, privileged=privileged))
    assert label(env, cid).endswith(":s0")
    se2 = {"user": "system_u", "role": "system_r", "type": "svirt_lxc_net_t", "level": "s0:c4,c5"}
    cid = running(env, pod, "full", ctr_sc(env, selinux=se2, privileged=privileged))
    assert label(env, cid) == "system_u:system_r:svirt_lxc_net_t:s0:c4,c5"


@need_selinux
@pytest.mark.parametrize("privileged", [False, True])
def test_se3_wrong_level_fails_create(env, privileged):
    pod = lsm_pod(env, "p", privileged=privileged)
    with pytest.raises(grpc.RpcError):
        env.create(pod, env.busybox, name="bad", command=bb("true"),
                   sc=ctr_sc(env, selinux={"level": "s0,c4,c5"}, privileged=privileged))


@need_selinux
@pytest.mark.parametrize("privileged", [False, True])
def test_se4_se5_mount_label(env, privileged):
    pod = lsm_pod(env, "p", privileged=privileged)
    cid = running(env, pod, "c", ctr_sc(env, privileged=privileged))
    code, mi, _ = sh(env, cid, "grep ' / / ' /proc/self/mountinfo")
    assert code == 0 and ":object_r:container_file_t:" in mi, mi
    m = re.search(r'context="?[^:]+:object_r:container_file_t:(s0:c\d+,c\d+)', mi)
    assert m, mi
    assert m.group(1) == pod_info(env, pod[0])["selinux"]["mcsLevel"]
    # the tmpfs mounts carry it too
    code, dev, _ = sh(env, cid, "grep ' /dev ' /proc/self/mountinfo")
    assert "container_file_t" in dev, dev


@need_selinux
@pytest.mark.parametrize("privileged", [False, True])
def test_se6_se7_process_label(env, privileged):
    pod = lsm_pod(env, "p", privileged=privileged)
    cid = running(env, pod, "c", ctr_sc(env, privileged=privileged))
    lbl = label(env, cid)
    ctx = lbl.split(":")
    assert ctx[1] == "system_r"
    if privileged:
        assert ctx[2] == "spc_t"
        assert lbl.endswith(":s0") or lbl.endswith(":s0:c0.c1023"), lbl
    else:
        assert ctx[2] == "container_t"
        assert len(categories(lbl)) >= 2, lbl
    # an exec'd process gets the container's label
    code, out, _ = sh(env, cid, "cat /proc/self/attr/current")
    assert out.strip("\0\n") == lbl


@need_selinux
@pytest.mark.parametrize("privileged", [False, True])
def test_se8_se9_same_pod_same_label_other_pod_other(env, privileged):
    p1 = lsm_pod(env, "p1", privileged=privileged)
    p2 = lsm_pod(env, "p2", privileged=privileged)
    a = label(env, running(env, p1, "a", ctr_sc(env)))
    b = label(env, running(env, p1, "b", ctr_sc(env)))
    c = label(env, running(env, p2, "c", ctr_sc(env)))
    assert a == b
    assert a != c


@need_selinux
def test_c13_selinux_relabel_and_system_paths(env):
    pod = lsm_pod(env, "p")
    vol = tempfile.mkdtemp(prefix="lsm-vol-", dir=env.tmp)
    with open(os.path.join(vol, "f"), "w") as f:
        f.write("x\n")
    cid = running(env, pod, "c", ctr_sc(env), mounts=[env.pb.Mount(container_path="/vol", host_path=vol,
                                                                    selinux_relabel=True)])
    assert sh(env, cid, "cat /vol/f")[1] == "x\n"
    out = subprocess.run(["stat", "-c", "%C", os.path.join(vol, "f")], capture_output=True, text=True).stdout
    assert ":container_file_t:" + pod_info(env, pod[0])["selinux"]["mcsLevel"] in out, out
    with pytest.raises(grpc.RpcError) as ei:
        env.create(pod, env.busybox, name="etc", command=bb("true"), sc=ctr_sc(env),
                   mounts=[env.pb.Mount(container_path="/hostetc", host_path="/etc", selinux_relabel=True)])
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not allowed" in ei.value.details()


# ----------------------------------------------------------- AppArmor node

# reason: critest runs its AppArmor specs only where AppArmor is enabled; so do these
need_apparmor = pytest.mark.skipif(not apparmor_enabled(), reason="AppArmor is not enabled on this node")

DENY_WRITE = """#include <tunables/global>
profile crisp-test-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>
  file,
  deny /** w,
}
"""
ALLOW_WRITE = """#include <tunables/global>
profile crisp-test-allow-write flags=(attach_disconnected) {
  #include <abstractions/base>
  file,
}
"""


@pytest.fixture
def aa_profiles():
    loaded = []
    for text in (DENY_WRITE, ALLOW_WRITE):
        subprocess.run(["apparmor_parser", "-r"], input=text.encode(), check=True)
        loaded.append(text)
    yield
    for text in loaded:
        subprocess.run(["apparmor_parser", "-R"], input=text.encode())


@need_apparmor
def test_aa1_unloaded_profile_fails(env):
    pb = env.pb
    pod = lsm_pod(env, "p")
    P = pb.SecurityProfile
    with pytest.raises(grpc.RpcError) as ei:
        env.create(pod, env.busybox, name="c", command=bb("true"),
                   sc=ctr_sc(env, apparmor=P(profile_type=P.Localhost, localhost_ref="non-existent-profile")))
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is not loaded" in ei.value.details()


@need_apparmor
def test_aa2_aa3_profiles_enforced(env, aa_profiles):
    pb = env.pb
    pod = lsm_pod(env, "p")
    P = pb.SecurityProfile
    _, st, _ = env.run(pod, env.busybox, ["/bin/sh", "-c", "echo x > /file"], name="deny",
                       sc=ctr_sc(env, apparmor=P(profile_type=P.Localhost, localhost_ref="crisp-test-deny-write")))
    assert st.exit_code != 0
    _, st, _ = env.run(pod, env.busybox, ["/bin/sh", "-c", "echo x > /file"], name="allow",
                       sc=ctr_sc(env, apparmor_profile="localhost/crisp-test-allow-write"))
    assert st.exit_code == 0


@need_apparmor
def test_runtime_default_is_crisp_default(env):
    pb = env.pb
    pod = lsm_pod(env, "p")
    P = pb.SecurityProfile
    cid = running(env, pod, "dflt", ctr_sc(env, apparmor=P(profile_type=P.RuntimeDefault)))
    assert sh(env, cid, "cat /proc/self/attr/current")[1].strip() == "crisp-default (enforce)"
    cid = running(env, pod, "unconf", ctr_sc(env, apparmor=P(profile_type=P.Unconfined)))
    assert sh(env, cid, "cat /proc/self/attr/current")[1].strip() == "unconfined"
    cid = running(env, pod, "priv", ctr_sc(env, privileged=True))
    assert sh(env, cid, "cat /proc/self/attr/current")[1].strip() == "unconfined"
