"""Containers end to end: images pulled from the test registry, pods on the
test CNI bridge, then CreateContainer / StartContainer / StopContainer /
RemoveContainer, ExecSync and ReopenContainerLog through frontd and execd,
with each container's monitor, its CRI log file and its exit record checked
on the host.  Every test ends by checking that nothing of its containers is
left: no monitor or container process, no mount, no cgroup."""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import time

import grpc
import pytest

from conftest import CNI_BRIDGE, cleanup_host, wait_container_exit

NS = "crisp-e2e"
MONITOR_ARG = "--container-monitor"

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100:Alice:/home/alice:/bin/sh\n"
GROUP = b"root:x:0:\nusers:x:100:\nwheel:x:10:alice\n"


def bb(*applet):
    return ["/bin/busybox", *applet]


def monitors():
    """{container id: monitor pid} of every container monitor on the host."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[1] == MONITOR_ARG.encode():
            out[argv[2].decode()] = int(d)
    return out


def monitor_of(cid, timeout=10):
    """The monitor pid of container cid, once it runs crisp-monitor: the
    monitor executes its own binary only after execd answered the start."""
    deadline = time.monotonic() + timeout
    while True:
        m = monitors()
        if cid in m:
            return m[cid]
        if time.monotonic() > deadline:
            raise AssertionError(f"no crisp-monitor for container {cid[:12]} after {timeout} s")
        time.sleep(0.02)


class Env:
    def __init__(self, crisp, pb, registry, tmp):
        self.c, self.pb, self.registry, self.tmp = crisp, pb, registry, tmp
        self.rt = crisp.runtime()
        self.created = []
        self.pods = []
        self.images = {}

    def pull(self, img):
        self.c.image().PullImage(self.pb.PullImageRequest(image=self.pb.ImageSpec(image=img.ref)), timeout=120)
        return img.ref

    def pod(self, name="p", host_net=False, pid=None):
        pb = self.pb
        logdir = os.path.join(self.tmp, "logs", name)
        md = pb.PodSandboxMetadata(name=name, namespace=NS, uid=f"uid-{name}")
        nso = pb.NamespaceOption(network=pb.NODE if host_net else pb.POD,
                                 pid=pb.CONTAINER if pid is None else pid, ipc=pb.POD)
        cfg = pb.PodSandboxConfig(
            metadata=md, hostname=f"{name}-host", log_directory=logdir,
            linux=pb.LinuxPodSandboxConfig(
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=nso)))
        pid = self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
        self.pods.append(pid)
        return pid, cfg

    def create(self, pod, image, name="c", command=None, args=None, envs=None, sc=None, mounts=None,
               workdir="", log=None, resources=None):
        pb = self.pb
        pid, pcfg = pod
        cfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image),
            command=command or [], args=args or [], working_dir=workdir,
            envs=[pb.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
            mounts=mounts or [], log_path=log if log is not None else f"{name}/0.log",
            labels={"name": name},
            linux=pb.LinuxContainerConfig(security_context=sc or pb.LinuxContainerSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)),
                resources=resources))
        cid = self.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=cfg,
                                                                sandbox_config=pcfg), timeout=60).container_id
        self.created.append(cid)
        return cid

    def start(self, cid):
        self.rt.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=30)

    def status(self, cid):
        return self.rt.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid), timeout=10).status

    def wait_exit(self, cid, timeout=15):
        return wait_container_exit(self.rt, self.pb, cid, timeout)

    def log(self, cid):
        with open(self.status(cid).log_path) as f:
            return f.read()

    def log_lines(self, cid):
        """[(stream, tag, text)] from the CRI log file."""
        out = []
        for line in self.log(cid).split("\n")[:-1]:
            ts, stream, tag, text = line.split(" ", 3) if line.count(" ") >= 3 else (line.split(" ") + [""])[:4]
            assert ts.endswith("Z") and "T" in ts, line
            out.append((stream, tag, text))
        return out

    def run(self, pod, image, command, timeout=15, **kw):
        """Create, start, wait for the exit; returns (status, log lines)."""
        cid = self.create(pod, image, command=command, **kw)
        self.start(cid)
        st = self.wait_exit(cid, timeout)
        return cid, st, self.log_lines(cid)

    def stdout_of(self, lines):
        return "\n".join(t for s, tag, t in lines if s == "stdout")

    def remove(self, cid):
        self.rt.RemoveContainer(self.pb.RemoveContainerRequest(container_id=cid), timeout=30)

    def cleanup(self):
        for cid in self.created:
            try:
                self.remove(cid)
            except grpc.RpcError:
                pass
        for pid in self.pods:
            try:
                self.rt.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
            except grpc.RpcError:
                pass

    def assert_nothing_left(self):
        left = {k: v for k, v in monitors().items() if k in self.created}
        for pid in left.values():  # never leave them running, even on failure
            os.kill(pid, signal.SIGKILL)
        assert not left, f"monitors left: {left}"
        with open("/proc/self/mountinfo") as f:
            mi = f.read()
        for cid in self.created:
            assert cid not in mi, f"mount of {cid[:12]} left"
            for ctrl in ("memory", "pids", "cpu"):
                d = f"/sys/fs/cgroup/{ctrl}/crisp/crisp-{cid}"
                assert not os.path.exists(d), d
            assert not os.path.exists(os.path.join(self.c.runroot, "containers", cid))
            assert not os.path.exists(os.path.join(self.c.root, "containers", cid))


@contextlib.contextmanager
def running_env(crisp_factory, regconf, registry, cri, tmpdir_short, extra_conf="", cls=Env, check=None):
    """A crispd on the test bridge with busybox pulled; at the end its pods
    and containers are removed and nothing of them may be left (check(e):
    what a caller verifies on top)."""
    pb, _ = cri
    c = crisp_factory(regconf.crisp_conf() + extra_conf)
    with open(os.path.join(c.cni_dir, "10-test.conflist"), "w") as f:
        f.write(CNI_BRIDGE.replace("IPAM_DIR", os.path.join(tmpdir_short, "ipam")))
    c.start()
    e = cls(c, pb, registry, tmpdir_short)
    e.busybox = e.pull(registry.busybox())
    try:
        yield e
    finally:
        try:
            e.cleanup()
        finally:
            try:
                e.assert_nothing_left()
                if check is not None:
                    check(e)
            finally:
                c.stop()
                cleanup_host(c)


@pytest.fixture
def env(crisp_factory, regconf, registry, cri, tmpdir_short):
    with running_env(crisp_factory, regconf, registry, cri, tmpdir_short) as e:
        yield e


def custom_image(e):
    img = e.registry.build_image(
        "ctrtest", "v1",
        files={"etc/": None, "etc/passwd": PASSWD, "etc/group": GROUP, "work/": None, "home/": None,
               "home/alice/": None, "tmp/": None},
        entrypoint=["/bin/sh", "-c"], cmd=["echo image-cmd"], user="alice", workdir="/work",
        env=("PATH=/bin", "FOO=image", "BAR=image"))
    return e.pull(img)


def test_lifecycle_exit_codes_and_logs(env):
    pb = env.pb
    pod = env.pod()
    long = "y" * 20000
    cid = env.create(pod, env.busybox, command=["/bin/sh", "-c",
                     f"echo out1; echo err1 >&2; echo {long}; printf part; exit 7"])
    st = env.status(cid)
    assert st.state == pb.CONTAINER_CREATED and st.image.image == env.busybox
    assert st.image_ref.startswith("sha256:") and st.log_path.endswith("c/0.log")
    env.start(cid)
    st = env.wait_exit(cid)
    assert st.exit_code == 7 and st.reason == "Error"
    assert st.started_at > st.created_at > 0 and st.finished_at >= st.started_at
    lines = env.log_lines(cid)
    assert ("stdout", "F", "out1") in lines and ("stderr", "F", "err1") in lines
    assert ("stdout", "F", "part") in lines
    # a 20000-byte line: one P piece of 16384 bytes, then the rest as F
    parts = [(tag, len(t)) for s, tag, t in lines if t.startswith("yyy")]
    assert parts == [("P", 16384), ("F", 20000 - 16384)]
    # listed, then removed for good (and again: idempotent)
    ids = [c.id for c in env.rt.ListContainers(pb.ListContainersRequest(), timeout=10).containers]
    assert cid in ids
    env.remove(cid)
    env.remove(cid)
    with pytest.raises(grpc.RpcError) as ei:
        env.status(cid)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND
    cid2, st2, _ = env.run(pod, env.busybox, ["/bin/sh", "-c", "exit 0"])
    assert st2.exit_code == 0 and st2.reason == "Completed"


def test_unknown_image_and_bad_command_are_clear_errors(env):
    pb = env.pb
    pod = env.pod()
    with pytest.raises(grpc.RpcError) as ei:
        env.create(pod, env.registry.host + "/nope:1", command=["/bin/sh"])
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND
    cid = env.create(pod, env.busybox, command=["/bin/does-not-exist"])
    with pytest.raises(grpc.RpcError) as ei:
        env.start(cid)
    assert "does-not-exist" in ei.value.details()
    st = env.status(cid)
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 128 and st.reason == "StartError"
    assert not [c for c in env.rt.ListContainers(pb.ListContainersRequest(), timeout=10).containers
                if c.id not in env.created]


def test_image_config_env_args_workdir_user(env):
    pb = env.pb
    img = custom_image(env)
    pod = env.pod()
    # the image's ENTRYPOINT + CMD, USER, WORKDIR
    _, st, lines = env.run(pod, img, None, name="img")
    assert st.exit_code == 0 and env.stdout_of(lines) == "image-cmd"
    # args override CMD (ENTRYPOINT kept); CRI env overrides the image's
    _, st, lines = env.run(pod, img, None, name="args", envs={"FOO": "cri"},
                           args=["echo $FOO $BAR $HOME; /bin/busybox id -u; /bin/busybox id -G; pwd"])
    assert env.stdout_of(lines).split("\n") == ["cri image /home/alice", "1000", "100 10", "/work"]
    # run_as_user and working_dir from the request win
    sc = pb.LinuxContainerSecurityContext(run_as_user=pb.Int64Value(value=4242),
                                          run_as_group=pb.Int64Value(value=77),
                                          supplemental_groups=[5])
    _, st, lines = env.run(pod, img, ["/bin/sh", "-c", "/bin/busybox id -u; /bin/busybox id -g; pwd"],
                           name="ids", sc=sc, workdir="/tmp")
    assert env.stdout_of(lines).split("\n") == ["4242", "77", "/tmp"]
    # an unknown user name is refused at create
    with pytest.raises(grpc.RpcError) as ei:
        env.create(pod, img, name="nouser", sc=pb.LinuxContainerSecurityContext(run_as_username="mallory"))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_readonly_rootfs_and_mounts(env):
    pb = env.pb
    pod = env.pod()
    host = os.path.join(env.tmp, "vol")
    os.makedirs(host)
    with open(os.path.join(host, "in"), "w") as f:
        f.write("from-host")
    mounts = [pb.Mount(container_path="/rw", host_path=host),
              pb.Mount(container_path="/ro", host_path=host, readonly=True)]
    sc = pb.LinuxContainerSecurityContext(readonly_rootfs=True)
    _, st, lines = env.run(pod, env.busybox, ["/bin/sh", "-c",
                           "/bin/busybox touch /x && echo ROOT-RW; /bin/busybox cat /ro/in; echo; "
                           "echo hi > /rw/out && echo RW-OK; echo no > /ro/out2 || echo RO-REFUSED; "
                           "/bin/busybox cat /etc/hostname"], sc=sc, mounts=mounts)
    out = env.stdout_of(lines)
    assert "ROOT-RW" not in out and "from-host" in out and "RW-OK" in out and "RO-REFUSED" in out
    assert "p-host" in out
    with open(os.path.join(host, "out")) as f:
        assert f.read() == "hi\n"
    assert not os.path.exists(os.path.join(host, "out2"))
    # a writable rootfs keeps what the container wrote until removal
    _, st, lines = env.run(pod, env.busybox, ["/bin/sh", "-c", "/bin/busybox touch /x && echo ROOT-RW"], name="rw")
    assert "ROOT-RW" in env.stdout_of(lines)
    # a mount source that does not exist is refused at create
    with pytest.raises(grpc.RpcError) as ei:
        env.create(pod, env.busybox, name="nosrc", command=["/bin/sh"],
                   mounts=[pb.Mount(container_path="/x", host_path=os.path.join(env.tmp, "missing"))])
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND


def capeff(lines):
    for s, tag, t in lines:
        if t.startswith("CapEff:"):
            return int(t.split()[1], 16)
    raise AssertionError(lines)


def test_capabilities_and_seccomp(env):
    pb = env.pb
    pod = env.pod()
    show = ["/bin/sh", "-c", "/bin/busybox grep -E 'CapEff|Seccomp:' /proc/self/status"]
    _, _, lines = env.run(pod, env.busybox, show, name="default")
    assert capeff(lines) == 0x5fb  # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
    sc = pb.LinuxContainerSecurityContext(capabilities=pb.Capability(drop_capabilities=["ALL"]))
    _, _, lines = env.run(pod, env.busybox, show, name="dropall", sc=sc)
    assert capeff(lines) == 0
    sc = pb.LinuxContainerSecurityContext(capabilities=pb.Capability(add_capabilities=["NET_RAW"],
                                                                     drop_capabilities=["CHOWN"]))
    _, _, lines = env.run(pod, env.busybox, show, name="addraw", sc=sc)
    assert capeff(lines) & (1 << 13) and not capeff(lines) & 1
    # RuntimeDefault: a filter is loaded and a user namespace, which needs
    # no capability, is refused; Unconfined allows it.
    probe = ["/bin/sh", "-c", "/bin/busybox grep Seccomp: /proc/self/status; "
             "/bin/busybox unshare -U /bin/busybox true && echo USERNS-OK || echo USERNS-REFUSED"]
    sc = pb.LinuxContainerSecurityContext(seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault))
    _, _, lines = env.run(pod, env.busybox, probe, name="sdefault", sc=sc)
    out = env.stdout_of(lines)
    assert "Seccomp:\t2" in out and "USERNS-REFUSED" in out
    sc = pb.LinuxContainerSecurityContext(seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined))
    _, _, lines = env.run(pod, env.busybox, probe, name="sunconf", sc=sc)
    out = env.stdout_of(lines)
    assert "Seccomp:\t0" in out
    with open("/proc/sys/kernel/unprivileged_userns_clone") if os.path.exists(
            "/proc/sys/kernel/unprivileged_userns_clone") else open("/dev/null") as f:
        if f.read().strip() != "0":
            assert "USERNS-OK" in out
    # a Localhost profile (OCI JSON on the node) is applied as written
    prof = os.path.join(env.tmp, "no-mkdir.json")
    with open(prof, "w") as f:
        f.write('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],'
                '"action":"SCMP_ACT_ERRNO"}]}')
    sc = pb.LinuxContainerSecurityContext(seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                                                     localhost_ref=prof))
    _, _, lines = env.run(pod, env.busybox, ["/bin/sh", "-c", "/bin/busybox mkdir /d && echo MKDIR-OK; echo end"],
                          name="slocal", sc=sc)
    out = "\n".join(t for s_, tag, t in lines)
    assert "end" in out and "MKDIR-OK" not in out
    # a missing or malformed one is a clear refusal, never an unconfined run
    for ref, code in ((os.path.join(env.tmp, "missing.json"), grpc.StatusCode.NOT_FOUND),
                      (host_file(env, "bad.json", '{"defaultAction":"SCMP_ACT_NOTIFY"}'),
                       grpc.StatusCode.INVALID_ARGUMENT)):
        sc = pb.LinuxContainerSecurityContext(seccomp=pb.SecurityProfile(
            profile_type=pb.SecurityProfile.Localhost, localhost_ref=ref))
        with pytest.raises(grpc.RpcError) as ei:
            env.create(pod, env.busybox, name="sbad", command=["/bin/sh"], sc=sc)
        assert ei.value.code() == code


def host_file(env, name, text):
    p = os.path.join(env.tmp, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def test_pod_namespaces_shared(env):
    pod = env.pod(name="shared")
    show = ["/bin/sh", "-c", "/bin/busybox hostname; for n in ipc net uts pid; do "
            "/bin/busybox readlink /proc/self/ns/$n; done"]
    out = []
    for name in ("a", "b"):  # both alive at once: namespace inodes are not reused
        cid = env.create(pod, env.busybox, name=name, command=bb("sleep", "1000"))
        env.start(cid)
        r = env.rt.ExecSync(env.pb.ExecSyncRequest(container_id=cid, cmd=show, timeout=10), timeout=20)
        out.append(r.stdout.decode().strip().split("\n"))
    a, b = out
    assert a[0] == b[0] == "shared-host"
    assert a[1:4] == b[1:4]          # ipc, net, uts: the pod's
    assert a[4] != b[4]              # pid: one per container
    assert a[2] != os.readlink("/proc/self/ns/net")


def test_pod_shared_pid_namespace(env):
    pb = env.pb
    pod = env.pod(name="sharepid", pid=pb.POD)
    sc = pb.LinuxContainerSecurityContext(namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.POD,
                                                                               ipc=pb.POD))
    a = env.create(pod, env.busybox, name="a", command=bb("sleep", "1001"), sc=sc)
    b = env.create(pod, env.busybox, name="b", command=bb("sleep", "1002"), sc=sc)
    env.start(a)
    env.start(b)
    r = env.rt.ExecSync(pb.ExecSyncRequest(container_id=b, cmd=["/bin/sh", "-c",
                        "/bin/busybox cat /proc/1/cmdline; echo; /bin/busybox ps; "
                        "/bin/busybox ls /proc/1/root/ || echo NO-ROOT"], timeout=10), timeout=20)
    out = r.stdout.decode()
    # pid 1 is the pod's infra process, and each container sees the other
    assert out.startswith("crisp-pod-infra") and "sleep 1001" in out and "sleep 1002" in out
    # the infra leads nowhere: its root is out of the containers' reach
    assert out.rstrip().endswith("NO-ROOT")
    infra = []
    for d in os.listdir("/proc"):
        try:
            argv = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0") if d.isdigit() else []
            if argv[:1] == [b"crisp-pod-infra"] and argv[2].decode().startswith(env.c.runroot + "/"):
                infra.append(int(d))
        except OSError:
            pass
    assert infra
    env.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
    time.sleep(0.2)
    for p in infra:
        assert not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().split()[2] == "Z"


def test_exec_sync(env):
    pb = env.pb
    pod = env.pod()
    cid = env.create(pod, env.busybox, command=bb("sleep", "1000"))
    env.start(cid)
    r = env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["/bin/sh", "-c", "echo hi; echo e >&2; exit 3"],
                                           timeout=10), timeout=20)
    assert (r.stdout, r.stderr, r.exit_code) == (b"hi\n", b"e\n", 3)
    # the container's user, env and pid namespace
    r = env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=bb("ps"), timeout=10), timeout=20)
    assert r.exit_code == 0 and b"sleep 1000" in r.stdout
    # a timeout is an error, and the process is gone after it
    t0 = time.time()
    with pytest.raises(grpc.RpcError) as ei:
        env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=bb("sleep", "77"), timeout=1), timeout=20)
    assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.time() - t0 < 5
    time.sleep(0.3)
    r = env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=bb("ps"), timeout=10), timeout=20)
    assert b"sleep 77" not in r.stdout
    # large output is delivered whole
    r = env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["/bin/sh", "-c",
                                           "i=0; while [ $i -lt 3000 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done"],
                                           timeout=20), timeout=30)
    assert len(r.stdout) == 3000 * 41
    # not running: refused
    env.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=30)
    with pytest.raises(grpc.RpcError) as ei:
        env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["/bin/true"], timeout=10), timeout=20)
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_stop_grace_and_kill(env):
    pb = env.pb
    pod = env.pod()
    # pid 1 with a TERM handler exits on SIGTERM at once
    cid = env.create(pod, env.busybox, name="polite",
                     command=["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do /bin/busybox sleep 0.1; done"])
    env.start(cid)
    time.sleep(0.3)
    t0 = time.time()
    env.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=10), timeout=30)
    assert time.time() - t0 < 5
    st = env.status(cid)
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 0
    # one that ignores SIGTERM is killed at the timeout; other calls are
    # served while the stop waits
    cid = env.create(pod, env.busybox, name="stubborn",
                     command=["/bin/sh", "-c", "trap '' TERM; while true; do /bin/busybox sleep 0.1; done"])
    env.start(cid)
    t0 = time.time()
    fut = env.rt.StopContainer.future(pb.StopContainerRequest(container_id=cid, timeout=2), timeout=30)
    time.sleep(0.5)
    assert env.status(cid).state == pb.CONTAINER_RUNNING
    fut.result()
    assert 1.8 < time.time() - t0 < 6
    st = env.status(cid)
    assert st.exit_code == 137 and st.reason == "Error"
    # stopping again is fine
    env.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=2), timeout=30)


def test_execd_kill9_adopts_running_containers(env):
    pb = env.pb
    pod = env.pod()
    cid = env.create(pod, env.busybox, command=["/bin/sh", "-c", "echo before; /bin/busybox sleep 1000"])
    env.start(cid)
    mon = monitor_of(cid)
    roles = env.c.wait_roles()
    os.kill(roles["crisp-execd"], signal.SIGKILL)
    env.c.wait_roles(exclude={"crisp-execd": roles["crisp-execd"]})
    # the monitor (and so the container) outlived execd, and is adopted
    assert monitor_of(cid) == mon
    st = env.status(cid)
    assert st.state == pb.CONTAINER_RUNNING
    r = env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["/bin/sh", "-c", "echo alive"], timeout=10),
                        timeout=20)
    assert r.stdout == b"alive\n"
    env.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1), timeout=30)
    st = env.status(cid)
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137
    assert ("stdout", "F", "before") in env.log_lines(cid)
    # an exit while execd is down is found at its next start
    cid2 = env.create(pod, env.busybox, name="quick", command=bb("sleep", "1000"))
    env.start(cid2)
    roles = env.c.wait_roles()
    os.kill(roles["crisp-execd"], signal.SIGKILL)
    # end the container's process while execd is away
    ctr_pid = None
    for d in os.listdir(f"/proc/{monitor_of(cid2)}/task"):
        with open(f"/proc/{monitor_of(cid2)}/task/{d}/children") as f:
            kids = f.read().split()
            if kids:
                ctr_pid = int(kids[0])
    os.kill(ctr_pid, signal.SIGKILL)
    env.c.wait_roles(exclude={"crisp-execd": roles["crisp-execd"]})
    st = env.wait_exit(cid2)
    assert st.exit_code == 137


def test_what_an_os_crash_may_lose_is_rebuilt_at_start(env):
    """A create's reservation, an image pin and a layer hold file are not
    flushed on their own (only what a client is answered for is).  Their
    loss is what an OS crash can cause; it is simulated on a stopped crisp:
    the next start sweeps a container execd has no record of (mounts,
    directories, cgroups, its pin in imaged) and makes a recorded
    container's pin and hold again, before anything could be removed."""
    pb = env.pb
    pod = env.pod()
    kept = env.create(pod, env.busybox, name="kept", command=bb("sleep", "1000"))
    lost = env.create(pod, env.busybox, name="lost", command=bb("sleep", "1000"))
    env.c.stop()
    db = sqlite3.connect(os.path.join(env.c.root, "execd", "state.db"))
    db.execute("DELETE FROM containers WHERE id = ?", (lost,))
    db.commit()
    db.close()
    idb = sqlite3.connect(os.path.join(env.c.root, "images", "images.db"))
    assert idb.execute("SELECT count(*) FROM pins WHERE holder IN (?, ?)", (kept, lost)).fetchone()[0] == 2
    idb.execute("DELETE FROM pins WHERE holder = ?", (kept,))
    idb.commit()
    idb.close()
    os.unlink(os.path.join(env.c.root, "layers", ".holds", kept))
    assert os.path.isdir(os.path.join(env.c.root, "containers", lost))

    env.c.start()
    env.rt = env.c.runtime()
    deadline = time.monotonic() + 10
    while "pins: 1 made again, 1 dropped" not in env.c.logtext():
        assert time.monotonic() < deadline, env.c.logtext()[-3000:]
        time.sleep(0.05)
    assert f"container {lost[:12]}: no record" in env.c.logtext()
    for d in (env.c.root, env.c.runroot):
        assert not os.path.exists(os.path.join(d, "containers", lost))
    with open("/proc/self/mountinfo") as f:
        assert lost not in f.read()
    assert os.path.exists(os.path.join(env.c.root, "layers", ".holds", kept))
    idb = sqlite3.connect(os.path.join(env.c.root, "images", "images.db"))
    assert [r[0] for r in idb.execute("SELECT holder FROM pins")] == [kept]
    idb.close()
    # the recorded container holds its image again: it cannot be removed ...
    with pytest.raises(grpc.RpcError) as e:
        env.c.image().RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=env.busybox)), timeout=30)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # ... and it still runs; once it is gone, nothing else holds the image
    env.start(kept)
    assert env.rt.ExecSync(pb.ExecSyncRequest(container_id=kept, cmd=bb("true"), timeout=10),
                           timeout=20).exit_code == 0
    env.rt.StopContainer(pb.StopContainerRequest(container_id=kept, timeout=0), timeout=30)
    env.remove(kept)
    env.c.image().RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=env.busybox)), timeout=30)


def test_monitor_death_is_unknown_and_kills_the_process(env):
    pb = env.pb
    pod = env.pod()
    cid = env.create(pod, env.busybox, command=bb("sleep", "1000"))
    env.start(cid)
    mon = monitor_of(cid)
    with open(f"/proc/{mon}/task/{mon}/children") as f:
        child = int(f.read().split()[0])
    os.kill(mon, signal.SIGKILL)
    end = time.time() + 10
    while env.status(cid).state != pb.CONTAINER_UNKNOWN and time.time() < end:
        time.sleep(0.05)
    assert env.status(cid).state == pb.CONTAINER_UNKNOWN
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"


def test_remove_pod_removes_its_containers(env):
    pb = env.pb
    pod = env.pod(name="gone")
    a = env.create(pod, env.busybox, name="a", command=bb("sleep", "1000"))
    b = env.create(pod, env.busybox, name="b", command=bb("sleep", "1000"))
    c = env.create(pod, env.busybox, name="c", command=["/bin/true"])
    env.start(a)
    env.start(b)
    env.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
    for cid in (a, b):
        assert env.status(cid).state == pb.CONTAINER_EXITED
    env.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
    assert not env.rt.ListContainers(pb.ListContainersRequest(), timeout=10).containers
    assert not [k for k in monitors() if k in (a, b, c)]


def test_reopen_log_and_stats(env):
    pb = env.pb
    pod = env.pod()
    cid = env.create(pod, env.busybox, command=["/bin/sh", "-c",
                     "echo one; while [ ! -e /go ]; do /bin/busybox sleep 0.05; done; echo two; /bin/busybox sleep 1000"])
    env.start(cid)
    path = env.status(cid).log_path
    end = time.time() + 5
    while "one" not in open(path).read() and time.time() < end:
        time.sleep(0.05)
    os.rename(path, path + ".1")
    env.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid), timeout=10)
    env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=bb("touch", "/go"), timeout=10), timeout=20)
    end = time.time() + 5
    while "two" not in open(path).read() and time.time() < end:
        time.sleep(0.05)
    assert "stdout F two" in open(path).read() and "one" not in open(path).read()
    assert "stdout F one" in open(path + ".1").read()
    s = env.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid), timeout=10).stats
    assert s.attributes.id == cid and s.cpu.timestamp > 0 and s.memory.timestamp > 0
    assert s.memory.working_set_bytes.value > 0
    ls = env.rt.ListContainerStats(pb.ListContainerStatsRequest(), timeout=10).stats
    assert cid in [x.attributes.id for x in ls]
    # resources: a memory limit lands in the container's cgroup
    env.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20)), timeout=10)
    lim = f"/sys/fs/cgroup/memory/crisp/crisp-{cid}/memory.limit_in_bytes"
    if os.path.exists(lim):
        assert int(open(lim).read()) == 64 << 20


def labelled_pod(env, name, labels):
    pb = env.pb
    md = pb.PodSandboxMetadata(name=name, namespace=NS, uid=f"uid-{name}")
    nso = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
    cfg = pb.PodSandboxConfig(
        metadata=md, hostname=f"{name}-host", log_directory=os.path.join(env.tmp, "logs", name),
        labels=labels, annotations={"note": name},
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(namespace_options=nso)))
    pid = env.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
    env.pods.append(pid)
    return pid, cfg


def pod_stats(env, pid):
    return env.rt.PodSandboxStats(env.pb.PodSandboxStatsRequest(pod_sandbox_id=pid), timeout=10).stats


def test_pod_stats(env):
    pb = env.pb
    pod = labelled_pod(env, "stats", {"app": "stats", "tier": "a"})
    pid = pod[0]
    burner = env.create(pod, env.busybox, name="burn", command=["/bin/sh", "-c",
                        "dd if=/dev/zero of=/dev/null bs=1M count=300; "
                        "x=$(/bin/busybox head -c 4000000 /dev/zero | /bin/busybox tr '\\0' a); "
                        "/bin/busybox sleep 300"])
    idle = env.create(pod, env.busybox, name="idle", command=["/bin/busybox", "sleep", "300"])
    env.start(burner)
    env.start(idle)
    host = env.pod("statshost", host_net=True)[0]

    # CPU and processes: wait for dd to be done and the shell to hold its string
    end = time.time() + 20
    while True:
        s = pod_stats(env, pid)
        lx = s.linux
        if lx.cpu.usage_core_nano_seconds.value > 10_000_000 and lx.process.process_count.value >= 2:
            break
        assert time.time() < end, s
        time.sleep(0.2)
    assert s.attributes.id == pid
    assert s.attributes.metadata.name == "stats" and s.attributes.metadata.namespace == NS
    assert s.attributes.metadata.uid == "uid-stats"
    assert dict(s.attributes.labels) == {"app": "stats", "tier": "a"}
    assert dict(s.attributes.annotations) == {"note": "stats"}
    assert lx.cpu.timestamp > 0 and lx.memory.timestamp > 0 and lx.process.timestamp > 0
    assert lx.memory.working_set_bytes.value > 0 and lx.memory.usage_bytes.value > 0
    # both containers, each as ContainerStats answers it
    assert sorted(c.attributes.id for c in lx.containers) == sorted([burner, idle])
    by_id = {c.attributes.id: c for c in lx.containers}
    one = env.rt.ContainerStats(pb.ContainerStatsRequest(container_id=burner), timeout=10).stats
    assert by_id[burner].attributes.metadata.name == one.attributes.metadata.name == "burn"
    assert dict(by_id[burner].attributes.labels) == {"name": "burn"}
    assert by_id[burner].cpu.usage_core_nano_seconds.value > 0
    # the pod's CPU is at least its containers' (read a moment apart, never less)
    assert lx.cpu.usage_core_nano_seconds.value + 1 >= by_id[idle].cpu.usage_core_nano_seconds.value

    # network: eth0 of the pod's namespace; lo is not reported
    net = lx.network
    assert net.timestamp > 0
    assert net.default_interface.name == "eth0"
    names = [i.name for i in net.interfaces]
    assert "eth0" in names and "lo" not in names
    rx0, tx0 = net.default_interface.rx_bytes.value, net.default_interface.tx_bytes.value
    ip = env.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid), timeout=10).status.network.ip
    assert ip
    # traffic from the host over the bridge: datagrams in, and TCP SYNs
    # to a closed port (each answered by a RST: traffic out)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for _ in range(10):
            u.sendto(b"x" * 1000, (ip, 9))
    for _ in range(3):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.settimeout(5)
            with pytest.raises(ConnectionRefusedError):
                t.connect((ip, 9))
    time.sleep(0.2)
    net = pod_stats(env, pid).linux.network
    assert net.default_interface.rx_bytes.value >= rx0 + 10 * 1000
    assert net.default_interface.tx_bytes.value >= tx0 + 3 * 40
    assert net.default_interface.HasField("rx_errors") and net.default_interface.HasField("tx_errors")

    # a host-network pod reports no network; no containers, no processes
    h = pod_stats(env, host).linux
    assert not h.HasField("network") and len(h.containers) == 0
    assert h.process.process_count.value == 0

    # lists: every READY pod; filters by id prefix and by labels
    def listed(flt=None):
        req = pb.ListPodSandboxStatsRequest(filter=flt) if flt else pb.ListPodSandboxStatsRequest()
        return [x.attributes.id for x in env.rt.ListPodSandboxStats(req, timeout=10).stats]
    assert sorted(listed()) == sorted([pid, host])
    assert listed(pb.PodSandboxStatsFilter(id=pid[:12])) == [pid]
    assert listed(pb.PodSandboxStatsFilter(label_selector={"app": "stats"})) == [pid]
    assert listed(pb.PodSandboxStatsFilter(label_selector={"app": "stats", "tier": "b"})) == []
    assert listed(pb.PodSandboxStatsFilter(id="f" * 64)) == []
    full = [x for x in env.rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest(), timeout=10).stats
            if x.attributes.id == pid][0]
    assert len(full.linux.containers) == 2 and full.linux.network.default_interface.name == "eth0"

    # unknown pod: NOT_FOUND; a stopped pod is not listed but still answers
    with pytest.raises(grpc.RpcError) as ei:
        pod_stats(env, "0" * 64)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND
    env.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=host), timeout=60)
    assert listed() == [pid]
    assert pod_stats(env, host).attributes.id == host


def test_pod_stats_own_cgroup(env):
    """A pod with a cgroup_parent of its own is read at that level: what an
    exited and removed container used still counts, as the kernel keeps it."""
    pb = env.pb
    parent = f"/crisp-e2e-podstats-{os.getpid()}"
    md = pb.PodSandboxMetadata(name="own", namespace=NS, uid="uid-own")
    nso = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
    cfg = pb.PodSandboxConfig(
        metadata=md, hostname="own-host", log_directory=os.path.join(env.tmp, "logs", "own"),
        linux=pb.LinuxPodSandboxConfig(cgroup_parent=parent,
                                       security_context=pb.LinuxSandboxSecurityContext(namespace_options=nso)))
    pid = env.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
    env.pods.append(pid)
    dirs = [f"/sys/fs/cgroup/{h}{parent}" for h in os.listdir("/sys/fs/cgroup")] + [f"/sys/fs/cgroup{parent}"]
    try:
        burn = env.create((pid, cfg), env.busybox, name="burn",
                          command=["/bin/sh", "-c", "dd if=/dev/zero bs=1M count=100 | md5sum"])
        env.start(burn)
        env.wait_exit(burn, 60)
        env.remove(burn)
        env.created.remove(burn)
        idle = env.create((pid, cfg), env.busybox, name="idle", command=["/bin/busybox", "sleep", "300"])
        env.start(idle)
        lx = pod_stats(env, pid).linux
        assert [c.attributes.id for c in lx.containers] == [idle]
        # the removed container's CPU is in the pod's, not in the idle one's
        assert lx.cpu.usage_core_nano_seconds.value > lx.containers[0].cpu.usage_core_nano_seconds.value + 50_000_000
        assert lx.process.process_count.value >= 1
        assert lx.network.default_interface.name == "eth0"
    finally:
        env.cleanup()
        for d in dirs:
            try:
                os.rmdir(d)
            except OSError:
                pass


def sh_exec(env, cid, script, timeout=10):
    r = env.rt.ExecSync(env.pb.ExecSyncRequest(container_id=cid, cmd=["/bin/sh", "-c", script], timeout=timeout),
                        timeout=timeout + 10)
    return r.exit_code, r.stdout.decode(), r.stderr.decode()


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def test_pod_shared_dev_shm(env):
    """One /dev/shm per pod (a tmpfs under the pod's run dir): shared by its
    containers, not by another pod's; unmounted by StopPodSandbox and gone
    after RemovePodSandbox."""
    pb = env.pb
    pod = env.pod(name="shm")
    other = env.pod(name="shm-other")
    shm = os.path.join(env.c.runroot, "pods", pod[0], "shm")
    assert shm in host_mounts()
    a = env.create(pod, env.busybox, name="a", command=bb("sleep", "1000"))
    b = env.create(pod, env.busybox, name="b", command=bb("sleep", "1000"))
    o = env.create(other, env.busybox, name="o", command=bb("sleep", "1000"))
    for cid in (a, b, o):
        env.start(cid)
    rc, out, err = sh_exec(env, a, "echo shared-$$ > /dev/shm/f && /bin/busybox cat /dev/shm/f && "
                           "/bin/busybox grep ' /dev/shm ' /proc/mounts")
    assert rc == 0, err
    word, mnt = out.split("\n")[:2]
    assert word.startswith("shared-")
    fields = mnt.split()
    assert fields[2] == "tmpfs"
    opts = fields[3].split(",")
    for o_ in ("rw", "nosuid", "nodev", "noexec", "size=65536k"):
        assert o_ in opts, mnt
    assert oct(os.stat(shm).st_mode & 0o7777) == "0o1777"
    # the other container of the pod sees the file, the host sees it in the pod's shm
    rc, out, _ = sh_exec(env, b, "/bin/busybox cat /dev/shm/f")
    assert rc == 0 and out.strip() == word
    with open(os.path.join(shm, "f")) as f:
        assert f.read().strip() == word
    # a container of another pod does not
    rc, out, _ = sh_exec(env, o, "/bin/busybox ls /dev/shm/")
    assert rc == 0 and "f" not in out.split()
    late = env.create(pod, env.busybox, name="late", command=bb("sleep", "1000"))
    # stop unmounts it (containers are gone), remove leaves nothing
    env.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
    assert shm not in host_mounts()
    # a container created before the stop does not start without its pod's /dev/shm
    with pytest.raises(grpc.RpcError) as ei:
        env.start(late)
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION, ei.value.details()
    assert shm not in host_mounts()
    env.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)  # idempotent
    env.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
    assert shm not in host_mounts()
    assert not os.path.exists(os.path.dirname(shm))
    assert not any(pod[0] in m for m in host_mounts())
    assert os.path.join(env.c.runroot, "pods", other[0], "shm") in host_mounts()


def test_pod_dev_shm_rolled_back_on_failed_run(env):
    """A RunPodSandbox that fails after the shm is made leaves no mount."""
    pb = env.pb
    before = [m for m in host_mounts() if m.startswith(env.c.runroot)]
    md = pb.PodSandboxMetadata(name="badsysctl", namespace=NS, uid="uid-badsysctl")
    nso = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
    cfg = pb.PodSandboxConfig(
        metadata=md, hostname="bad", log_directory=os.path.join(env.tmp, "logs", "bad"),
        linux=pb.LinuxPodSandboxConfig(sysctls={"kernel.shm_rmid_forced": "nope"},
                                       security_context=pb.LinuxSandboxSecurityContext(namespace_options=nso)))
    with pytest.raises(grpc.RpcError):
        env.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60)
    after = [m for m in host_mounts() if m.startswith(env.c.runroot)]
    assert after == before
    assert not [d for d in os.listdir(os.path.join(env.c.runroot, "pods"))
                if os.path.exists(os.path.join(env.c.runroot, "pods", d, "shm"))
                and d not in env.pods]


def test_host_ipc_pod_binds_node_dev_shm(env):
    pb = env.pb
    md = pb.PodSandboxMetadata(name="hostipc", namespace=NS, uid="uid-hostipc")
    nso = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.NODE)
    cfg = pb.PodSandboxConfig(
        metadata=md, hostname="hostipc", log_directory=os.path.join(env.tmp, "logs", "hostipc"),
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(namespace_options=nso)))
    pid = env.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
    env.pods.append(pid)
    assert not os.path.exists(os.path.join(env.c.runroot, "pods", pid, "shm"))
    sc = pb.LinuxContainerSecurityContext(namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER,
                                                                               ipc=pb.NODE))
    cid = env.create((pid, cfg), env.busybox, name="h", command=bb("sleep", "1000"), sc=sc)
    env.start(cid)
    name = f"crisp-e2e-shm-{os.getpid()}"
    try:
        rc, out, err = sh_exec(env, cid, f"echo node > /dev/shm/{name}")
        assert rc == 0, err
        with open(f"/dev/shm/{name}") as f:
            assert f.read() == "node\n"
    finally:
        try:
            os.unlink(f"/dev/shm/{name}")
        except OSError:
            pass


def test_privileged_sys_is_writable(env):
    """Privileged: /sys and /sys/fs/cgroup read-write (as containerd and
    CRI-O); otherwise read-only."""
    pb = env.pb
    pod = env.pod(name="priv")
    nso = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
    priv = env.create(pod, env.busybox, name="priv", command=bb("sleep", "1000"),
                      sc=pb.LinuxContainerSecurityContext(privileged=True, namespace_options=nso))
    plain = env.create(pod, env.busybox, name="plain", command=bb("sleep", "1000"))
    env.start(priv)
    env.start(plain)
    show = "/bin/busybox grep -E ' /sys(/fs/cgroup[^ ]*)? ' /proc/mounts"
    for cid, want in ((priv, "rw"), (plain, "ro")):
        rc, out, err = sh_exec(env, cid, show)
        assert rc == 0, err
        lines = [ln.split() for ln in out.strip().split("\n")]
        assert any(ln[1] == "/sys" for ln in lines), out
        assert any(ln[1].startswith("/sys/fs/cgroup") and ln[1] != "/sys/fs/cgroup" for ln in lines), out
        for ln in lines:
            assert ln[3].split(",")[0] == want, (cid == priv, ln)
    # the privileged container can write a harmless sysfs attribute (the
    # value it already has) in its own cgroup / the kernel's sysfs
    rc, _, err = sh_exec(env, priv, "v=$(/bin/busybox cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
                         " || exit 0; /bin/busybox touch /sys/kernel/mm/transparent_hugepage/enabled")
    assert rc == 0, err
    rc, _, _ = sh_exec(env, plain, "/bin/busybox touch /sys/kernel/mm/transparent_hugepage/enabled")
    assert rc != 0


def test_pid_namespace_target(env):
    """PID mode TARGET (kubectl debug --target): the debug container joins the
    target container's pid namespace and sees its processes."""
    pb = env.pb
    pod = env.pod(name="target")
    other = env.pod(name="target-other")
    t = env.create(pod, env.busybox, name="t", command=bb("sleep", "1234"))
    env.start(t)

    def target_sc(tid):
        return pb.LinuxContainerSecurityContext(namespace_options=pb.NamespaceOption(
            network=pb.POD, pid=pb.TARGET, ipc=pb.POD, target_id=tid))

    d = env.create(pod, env.busybox, name="debug", command=bb("sleep", "4321"), sc=target_sc(t[:12]))
    env.start(d)
    rc, out, err = sh_exec(env, d, "/bin/busybox ps; /bin/busybox readlink /proc/self/ns/pid")
    assert rc == 0, err
    assert "sleep 1234" in out and "sleep 4321" in out
    rc, out2, _ = sh_exec(env, t, "/bin/busybox ps; /bin/busybox readlink /proc/self/ns/pid")
    assert out.strip().split("\n")[-1] == out2.strip().split("\n")[-1]
    assert "sleep 4321" in out2  # the target sees the debug container too
    assert env.status(d).state == pb.CONTAINER_RUNNING

    def refused(sc_pod, tid, code):
        with pytest.raises(grpc.RpcError) as ei:
            env.create(sc_pod, env.busybox, name="bad", command=bb("sleep", "1"), sc=target_sc(tid))
        assert ei.value.code() == code, ei.value.details()

    refused(pod, "ab" * 32, grpc.StatusCode.NOT_FOUND)
    refused(other, t, grpc.StatusCode.FAILED_PRECONDITION)      # another pod's container
    idle = env.create(pod, env.busybox, name="idle", command=bb("sleep", "1000"))
    refused(pod, idle, grpc.StatusCode.FAILED_PRECONDITION)     # created, not running
    # a target that stops between create and start: the start is refused
    late = env.create(pod, env.busybox, name="late", command=bb("sleep", "1000"), sc=target_sc(t))
    env.rt.StopContainer(pb.StopContainerRequest(container_id=d, timeout=0), timeout=30)
    env.rt.StopContainer(pb.StopContainerRequest(container_id=t, timeout=0), timeout=30)
    with pytest.raises(grpc.RpcError) as ei:
        env.start(late)
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION, ei.value.details()


def test_shared_pid_namespace_leaves_no_process_behind(env):
    """A container sharing the host's PID namespace: when its init ends, the
    kernel does not end the rest (as it does for a namespace of its own);
    execd kills what is left in the container's cgroup."""
    pb = env.pb
    pod = env.pod("hostpid", pid=pb.NODE)
    marker = "4242.5"
    sc = pb.LinuxContainerSecurityContext(
        namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.NODE, ipc=pb.POD))
    cid = env.create(pod, env.busybox, sc=sc,
                     command=["/bin/sh", "-c", f"busybox sleep {marker} & exec busybox sleep 3600"])
    env.start(cid)

    def orphans():
        out = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    deadline = time.time() + 10
    while not orphans() and time.time() < deadline:
        time.sleep(0.05)
    assert orphans(), "the background process never started"
    env.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1), timeout=30)
    assert env.status(cid).state == pb.CONTAINER_EXITED
    deadline = time.time() + 5
    while orphans() and time.time() < deadline:
        time.sleep(0.05)
    left = orphans()
    for p in left:  # never leave it running, even on failure
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes of the container outlived it: {left}"


def test_exec_sync_killed_when_the_client_gives_up(env):
    """ExecSync without a timeout of its own: when the client's deadline
    passes, frontd cancels and execd kills the command."""
    pb = env.pb
    pod = env.pod("esc")
    cid = env.create(pod, env.busybox, command=["busybox", "sleep", "3600"])
    env.start(cid)
    marker = "3131.5"

    def running():
        out = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    with pytest.raises(grpc.RpcError) as e:
        env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["busybox", "sleep", marker]), timeout=1.5)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.time() + 10
    while running() and time.time() < deadline:
        time.sleep(0.05)
    left = running()
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, "the command outlived its cancelled ExecSync"
    assert "ExecSync cancelled by the client" in env.c.logtext()


def test_memory_limit_oom_killed(env):
    """A container that allocates past its memory limit is killed by the
    kernel and reported as OOMKilled with exit code 137."""
    pb = env.pb
    pod = env.pod("oom")
    cid, st, lines = env.run(
        pod, env.busybox,
        ["/bin/sh", "-c", "a=$(busybox head -c 134217728 /dev/zero | busybox tr '\\000' x); echo survived"],
        timeout=60, resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20))
    assert st.reason == "OOMKilled", (st.reason, st.exit_code, lines)
    assert st.exit_code == 137
    assert "survived" not in env.stdout_of(lines)
