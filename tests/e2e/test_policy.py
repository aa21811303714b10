"""Runtime policy end to end: every rule of policy/runtime.h, enforced by
execd.

For each rule (privileged, hostNetwork, hostPID, hostIPC, unconfinedSeccomp,
devices, hostPathPrefixes, addCapabilities, runtimeHandlers):
  - a policy whose "default" forbids it: refused in every namespace with
    PERMISSION_DENIED naming the rule and where it came from,
    "runtime policy (default): ...", while the same request without the
    forbidden part goes through;
  - the default forbids it and one namespace ("ops") allows it: allowed
    there (and seen in effect inside the pod or container), still refused in
    another ("web");
  - the default allows it and a namespace's own rules forbid it: refused in
    that namespace, "runtime policy (namespace web): ...", allowed elsewhere;
  - after every refusal nothing is left: nothing listed, no directory under
    crisp's root or runroot, no mount, no cgroup, no monitor, no address.

The policy file is replaced atomically between steps: execd re-reads it when
it changes (test_pods.py checks the reload, the broken file and the default
refusal of hostNetwork; this file does not repeat those).
"""

import json
import os
import signal
import subprocess
import time

import grpc
import pytest

from conftest import child_procs, end_containers, unmount_below, wait_container_exit

SQLITE_SIDECARS = ("-journal", "-wal", "-shm")
CAP_NET_RAW, CAP_SYS_ADMIN = 13, 21


def conflist(name, bridge, subnet, ipam_dir):
    return json.dumps({
        "cniVersion": "1.0.0", "name": name,
        "plugins": [{"type": "loopback"},
                    {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
                     "ipam": {"type": "host-local", "dataDir": ipam_dir, "ranges": [[{"subnet": subnet}]]}}]})


def cgroup_roots():
    """Every cgroup hierarchy's root directory, each once."""
    roots = set()
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        roots.add("/sys/fs/cgroup")
    for h in os.listdir("/sys/fs/cgroup"):
        p = os.path.realpath(os.path.join("/sys/fs/cgroup", h))
        if os.path.isdir(p) and (os.path.exists(os.path.join(p, "cgroup.procs"))):
            roots.add(p)
    return sorted(roots)


def cgroups_below(parent):
    """Every cgroup directory below `parent` (a cgroup path such as
    "/crisp-e2e-x"), in every hierarchy."""
    out = set()
    for root in cgroup_roots():
        top = root + parent
        for d, subdirs, _ in os.walk(top):
            for s in subdirs:
                out.add(os.path.relpath(os.path.join(d, s), root))
    return out


def remove_cgroup(parent):
    for root in cgroup_roots():
        top = root + parent
        for d, _, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
            try:
                os.rmdir(d)
            except OSError:
                pass


def mounts_of(pids, prefixes):
    """Mount points below any of `prefixes`, as seen by each pid's mount
    namespace (execd's may differ from ours)."""
    out = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/mountinfo") as f:
                for line in f:
                    mp = line.split()[4]
                    if any(mp == x or mp.startswith(x + "/") for x in prefixes):
                        out.add(mp)
        except OSError:
            pass
    return out


def tree(d, skip=()):
    """Every path below d, relative, without sqlite's sidecar files (which
    come and go with transactions), not descending into a container's
    rootfs or into `skip`."""
    out = set()
    for top, subdirs, files in os.walk(d):
        rel = os.path.relpath(top, d)
        for n in subdirs + files:
            if not n.endswith(SQLITE_SIDECARS):
                out.add(os.path.normpath(os.path.join(rel, n)))
        subdirs[:] = [s for s in subdirs if s != "rootfs" and os.path.normpath(os.path.join(rel, s)) not in skip]
    return out


def monitors_under(runroot):
    """{container id: pid} of the container monitors holding a file under
    runroot (ours, not those of other crisp instances)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if len(argv) < 3 or argv[1] != b"--container-monitor":
                continue
            fds = [os.readlink(f"/proc/{d}/fd/{n}") for n in os.listdir(f"/proc/{d}/fd")]
        except OSError:
            continue
        if any(x.startswith(runroot + "/") for x in fds):
            out[argv[2].decode()] = int(d)
    return out


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class PolicyEnv:
    """One crispd with `[execd] runtime_policy`, its own CNI bridge and
    cgroup parent, and pods in the namespaces a test names."""

    def __init__(self, c, pb, registry, tmp, bridge):
        self.c, self.pb, self.registry, self.tmp = c, pb, registry, tmp
        self.bridge = bridge
        self.rt = c.runtime()
        self.policy_path = os.path.join(tmp, "runtime-policy.json")
        self.ipam = os.path.join(tmp, "ipam")
        self.net_name = "crisp-" + bridge
        self.cg_parent = "/" + os.path.basename(tmp)  # crisp-e2e-XXXX: this test's own
        self.pods = []
        self.ctrs = []
        self.busybox = None

    # ---- policy
    def policy(self, doc):
        """Replace the policy file (a new inode: execd sees the change)."""
        time.sleep(0.002)
        with open(self.policy_path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.rename(self.policy_path + ".tmp", self.policy_path)

    # ---- pods
    def pod_config(self, name, ns, host_net=False, host_pid=False, host_ipc=False):
        pb = self.pb
        nso = pb.NamespaceOption(network=pb.NODE if host_net else pb.POD,
                                 pid=pb.NODE if host_pid else pb.CONTAINER,
                                 ipc=pb.NODE if host_ipc else pb.POD)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, namespace=ns, uid=f"uid-{ns}-{name}"),
            hostname=name, log_directory=os.path.join(self.tmp, "logs", ns, name),
            labels={"io.kubernetes.pod.namespace": ns},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cg_parent,
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=nso)))

    def run_pod(self, name, ns, handler="", **kw):
        cfg = self.pod_config(name, ns, **kw)
        pid = self.rt.RunPodSandbox(self.pb.RunPodSandboxRequest(config=cfg, runtime_handler=handler),
                                    timeout=60).pod_sandbox_id
        self.pods.append(pid)
        return pid, cfg

    def pod_status(self, pid):
        return self.rt.PodSandboxStatus(self.pb.PodSandboxStatusRequest(pod_sandbox_id=pid), timeout=10).status

    def remove_pod(self, pid):
        self.rt.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=60)
        self.rt.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
        self.pods.remove(pid)

    # ---- containers
    def pull_busybox(self):
        img = self.registry.busybox()
        self.c.image().PullImage(self.pb.PullImageRequest(image=self.pb.ImageSpec(image=img.ref)), timeout=120)
        self.busybox = img.ref

    def sc(self, seccomp="RuntimeDefault", **kw):
        """A security context as kubelet sends it: the pod's namespaces and,
        unless asked otherwise, the RuntimeDefault seccomp profile."""
        pb = self.pb
        if seccomp is not None:
            kw["seccomp"] = pb.SecurityProfile(profile_type=getattr(pb.SecurityProfile, seccomp))
        return pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD), **kw)

    def ctr_config(self, name, sc="default", command=None, mounts=(), devices=(), attempt=0, log_path=None):
        pb = self.pb
        if isinstance(sc, str) and sc == "default":
            sc = self.sc()
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=attempt), image=pb.ImageSpec(image=self.busybox),
            command=command or ["/bin/sh", "-c", "exit 0"], log_path=log_path or f"{name}.log",
            mounts=list(mounts), devices=list(devices),
            linux=pb.LinuxContainerConfig(security_context=sc) if sc is not None else None)

    def create(self, pod, cfg):
        pid, pcfg = pod
        cid = self.rt.CreateContainer(self.pb.CreateContainerRequest(pod_sandbox_id=pid, config=cfg,
                                                                     sandbox_config=pcfg), timeout=60).container_id
        self.ctrs.append(cid)
        return cid

    def start(self, cid):
        self.rt.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=30)

    def stop(self, cid, timeout=0):
        self.rt.StopContainer(self.pb.StopContainerRequest(container_id=cid, timeout=timeout), timeout=60)

    def remove(self, cid):
        self.rt.RemoveContainer(self.pb.RemoveContainerRequest(container_id=cid), timeout=30)
        self.ctrs.remove(cid)

    def ctr_status(self, cid):
        return self.rt.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid), timeout=10).status

    def wait_exit(self, cid, timeout=20):
        return wait_container_exit(self.rt, self.pb, cid, timeout)

    def run(self, pod, cfg):
        """Create, start, wait for the exit, remove; returns its stdout."""
        cid = self.create(pod, cfg)
        self.start(cid)
        st = self.wait_exit(cid)
        with open(st.log_path) as f:
            lines = [ln.split(" ", 3) for ln in f.read().split("\n") if ln]
        self.remove(cid)
        assert st.exit_code == 0, (st, lines)
        return "\n".join(p[3] for p in lines if len(p) == 4 and p[1] == "stdout")

    # ---- what is on the host
    def listed(self):
        pods = sorted(p.id for p in self.rt.ListPodSandbox(self.pb.ListPodSandboxRequest(), timeout=10).items)
        ctrs = sorted(x.id for x in self.rt.ListContainers(self.pb.ListContainersRequest(), timeout=10).containers)
        return pods, ctrs

    def snapshot(self):
        """Everything crisp made for pods and containers, limited to this
        crisp: what it lists, its files, mounts, cgroups, monitors,
        addresses, and crispd's children (the four roles, same pids)."""
        c = self.c
        roles = c.roles()
        ipam = os.path.join(self.ipam, self.net_name)
        return {
            "listed": self.listed(),
            "runroot": tree(c.runroot),
            "root": tree(c.root, skip={"layers", "images", "blobs"}),
            "mounts": mounts_of(["self", roles.get("crisp-execd", "self")], [c.root, c.runroot]),
            "cgroups": cgroups_below(self.cg_parent),
            "monitors": monitors_under(c.runroot),
            "ipam": sorted(n for n in (os.listdir(ipam) if os.path.isdir(ipam) else []) if n[:1].isdigit()),
            "crispd children": child_procs(c.proc.pid),
        }

    def assert_unchanged(self, before):
        now = self.snapshot()
        for k in before:
            if isinstance(before[k], set):
                assert now[k] == before[k], (k, "new:", sorted(now[k] - before[k]), "gone:", sorted(before[k] - now[k]))
            else:
                assert now[k] == before[k], (k, before[k], now[k])

    def refused(self, fn, scope, what):
        """fn() is refused by the runtime policy: PERMISSION_DENIED naming
        the rule and its scope ("default" or a namespace)."""
        with pytest.raises(grpc.RpcError) as e:
            fn()
        want = f"runtime policy ({scope if scope == 'default' else 'namespace ' + scope}): {what}"
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, (e.value.code(), e.value.details())
        assert want in e.value.details(), (want, e.value.details())

    def cleanup(self):
        for cid in list(self.ctrs):
            try:
                self.remove(cid)
            except grpc.RpcError:
                pass
        for pid in list(self.pods):
            try:
                self.remove_pod(pid)
            except grpc.RpcError:
                pass


def make_env(crisp_factory, regconf, registry, pb, tmp, bridge, subnet, policy=None):
    """A PolicyEnv, not started: crisp's configuration names the policy
    file (written first: `policy`, or a "default" that narrows nothing)."""
    path = os.path.join(tmp, "runtime-policy.json")
    with open(path, "w") as f:
        json.dump(policy or {"default": {}}, f)
    c = crisp_factory(regconf.crisp_conf() + f"\n[execd]\nruntime_policy = {path}\n")
    e = PolicyEnv(c, pb, registry, tmp, bridge)
    with open(os.path.join(c.cni_dir, "10-test.conflist"), "w") as f:
        f.write(conflist(e.net_name, bridge, subnet, e.ipam))
    return e


def teardown_env(e):
    """Remove through crisp, then end by pid and unmount whatever it failed
    to remove; the bridge and the cgroup parent go too."""
    c = e.c
    try:
        e.cleanup()
    finally:
        left = monitors_under(c.runroot)
        c.stop()
        end_containers(c.runroot)
        for pid in left.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        unmount_below(c.runroot)
        unmount_below(c.root)
        subprocess.run(["ip", "link", "del", e.bridge], capture_output=True)
        time.sleep(0.05 if left else 0)
        remove_cgroup(e.cg_parent)


@pytest.fixture
def penv(crisp_factory, regconf, registry, cri, tmpdir_short):
    pb, _ = cri
    e = make_env(crisp_factory, regconf, registry, pb, tmpdir_short, "crisppol0", "10.249.10.0/24")
    e.c.start()
    try:
        yield e
    finally:
        teardown_env(e)


# ------------------------------------------------------------- pod rules

POD_RULES = {
    "hostNetwork": dict(host_net=True),
    "hostPID": dict(host_pid=True),
    "hostIPC": dict(host_ipc=True),
}


@pytest.mark.parametrize("rule", sorted(POD_RULES))
def test_pod_host_namespace_rules(penv, rule):
    e, pb = penv, penv.pb
    kw = POD_RULES[rule]
    what = f"{rule} is not allowed"
    field = {"hostNetwork": "network", "hostPID": "pid", "hostIPC": "ipc"}[rule]

    def allowed(name, ns):
        pid, _ = e.run_pod(name, ns, **kw)
        st = e.pod_status(pid)
        assert st.state == pb.SANDBOX_READY
        assert getattr(st.linux.namespaces.options, field) == pb.NODE, st.linux.namespaces
        e.remove_pod(pid)

    before = e.snapshot()
    if rule != "hostNetwork":  # test_pods.py covers these two steps for hostNetwork
        # The default forbids it: every namespace is refused, nothing made;
        # the same pod without the host namespace runs.
        e.policy({"default": {rule: False}})
        for ns in ("web", "ops"):
            e.refused(lambda: e.run_pod("p", ns, **kw), "default", what)
        e.assert_unchanged(before)
        pid, _ = e.run_pod("plain", "web")
        e.remove_pod(pid)
        # One namespace allowed, another still refused by the default.
        e.policy({"default": {rule: False}, "namespaces": {"ops": {rule: True}}})
        allowed("p", "ops")
        e.refused(lambda: e.run_pod("p", "web", **kw), "default", what)
        e.assert_unchanged(before)
    # Allowed globally (an explicit true), refused by a namespace's own rules.
    e.policy({"default": {rule: True}, "namespaces": {"web": {rule: False}}})
    e.refused(lambda: e.run_pod("p", "web", **kw), "web", what)
    e.assert_unchanged(before)
    allowed("p2", "ops")
    # And the other host namespaces stay allowed in "web" (the refusal names
    # only the rule its own entry sets).
    for other, okw in POD_RULES.items():
        if other != rule:
            pid, _ = e.run_pod(f"o-{other.lower()}", "web", **okw)
            e.remove_pod(pid)
    e.assert_unchanged(before)


def test_runtime_handler_rule(penv):
    """runtimeHandlers lists the handlers a pod may name; "" is the default
    handler.  Only the refusal is the policy's: whether an allowed name is
    a configured handler is decided after it (the name here is configured
    nowhere, so an allowed pod gets at most "not configured")."""
    e = penv
    name = "crisp-e2e-rt"
    before = e.snapshot()
    # The default lists only "": a named handler is refused everywhere.
    e.policy({"default": {"runtimeHandlers": [""]}})
    for ns in ("web", "ops"):
        e.refused(lambda: e.run_pod("h", ns, handler=name), "default",
                  f'runtime handler "{name}" is not in runtimeHandlers')
    e.assert_unchanged(before)
    # One namespace may use it: past the policy there (refused, if at all,
    # because no such handler is configured, never PERMISSION_DENIED).
    e.policy({"default": {"runtimeHandlers": [""]}, "namespaces": {"ops": {"runtimeHandlers": ["", name]}}})
    try:
        pid, _ = e.run_pod("h", "ops", handler=name)
        e.remove_pod(pid)
    except grpc.RpcError as err:
        assert err.code() != grpc.StatusCode.PERMISSION_DENIED, err.details()
        assert "runtime policy" not in err.details(), err.details()
    e.refused(lambda: e.run_pod("h", "web", handler=name), "default",
              f'runtime handler "{name}" is not in runtimeHandlers')
    e.assert_unchanged(before)
    # A namespace whose list lacks "" refuses the default handler itself;
    # another namespace runs it.
    e.policy({"default": {}, "namespaces": {"web": {"runtimeHandlers": [name]}}})
    e.refused(lambda: e.run_pod("d", "web"), "web", 'runtime handler "" is not in runtimeHandlers')
    e.assert_unchanged(before)
    pid, _ = e.run_pod("d", "ops")
    assert e.pod_status(pid).state == e.pb.SANDBOX_READY
    e.remove_pod(pid)
    e.assert_unchanged(before)


# ------------------------------------------------------- container rules

def capeff(out):
    for ln in out.split("\n"):
        if ln.startswith("CapEff:"):
            return int(ln.split()[1], 16)
    raise AssertionError(out)


SHOW_STATUS = ["/bin/sh", "-c", "/bin/busybox grep -E 'CapEff|Seccomp:' /proc/self/status"]


def container_rules(e):
    """rule -> (deny rules, allow rules, [(config, refusal text)] the deny
    refuses (the first is also run where allowed, and proof(stdout) must
    hold), [configs] the deny lets through, proof)."""
    pb = e.pb
    allowed_dir = os.path.join(e.tmp, "vol")
    outside = os.path.join(e.tmp, "outside")
    sibling = allowed_dir + "-sibling"
    for d in (os.path.join(allowed_dir, "sub"), outside, sibling):
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(outside, "in"), "w") as f:
        f.write("from-outside")
    if not os.path.lexists(os.path.join(allowed_dir, "link")):
        os.symlink(outside, os.path.join(allowed_dir, "link"))

    def mount(src):
        return [pb.Mount(container_path="/mnt", host_path=src, readonly=True)]

    def caps(*names):
        return e.sc(capabilities=pb.Capability(add_capabilities=list(names)))

    cat = ["/bin/sh", "-c", "/bin/busybox cat /mnt/in"]
    dev = [pb.Device(container_path="/dev/xnull", host_path="/dev/null", permissions="rwm")]
    return {
        "privileged": (
            {"privileged": False}, {"privileged": True},
            [(e.ctr_config("x", sc=e.sc(privileged=True), command=SHOW_STATUS),
              "privileged containers are not allowed")],
            [e.ctr_config("x")],
            lambda out: capeff(out) & (1 << CAP_SYS_ADMIN)),
        "unconfinedSeccomp": (
            {"unconfinedSeccomp": False}, {"unconfinedSeccomp": True},
            [(e.ctr_config("x", sc=e.sc(seccomp="Unconfined"), command=SHOW_STATUS),
              "Unconfined seccomp is not allowed"),
             # no profile named at all is unconfined too, as is the
             # deprecated path form and a request without a security context
             (e.ctr_config("x", sc=e.sc(seccomp=None)), "Unconfined seccomp is not allowed"),
             (e.ctr_config("x", sc=e.sc(seccomp=None, seccomp_profile_path="unconfined")),
              "Unconfined seccomp is not allowed"),
             (e.ctr_config("x", sc=None), "Unconfined seccomp is not allowed")],
            [e.ctr_config("x"), e.ctr_config("x", sc=e.sc(seccomp=None, seccomp_profile_path="runtime/default"))],
            lambda out: "Seccomp:\t0" in out),
        "devices": (
            {"devices": False}, {"devices": True},
            [(e.ctr_config("x", devices=dev, command=["/bin/sh", "-c", "[ -c /dev/xnull ] && echo DEVICE-OK"]),
              "devices are not allowed")],
            [e.ctr_config("x")],
            lambda out: out == "DEVICE-OK"),
        "addCapabilities": (
            {"addCapabilities": ["NET_RAW"]}, {"addCapabilities": ["ALL"]},
            [(e.ctr_config("x", sc=caps("SYS_ADMIN"), command=SHOW_STATUS),
              "capability SYS_ADMIN is not in addCapabilities"),
             (e.ctr_config("x", sc=caps("CAP_SYS_ADMIN")), "capability CAP_SYS_ADMIN is not in addCapabilities"),
             (e.ctr_config("x", sc=caps("NET_RAW", "SYS_PTRACE")), "capability SYS_PTRACE is not in addCapabilities"),
             (e.ctr_config("x", sc=caps("ALL")), "capability ALL is not in addCapabilities"),
             (e.ctr_config("x", sc=caps("all")), "capability all is not in addCapabilities")],
            [e.ctr_config("x", sc=caps("NET_RAW")), e.ctr_config("x", sc=caps("CAP_NET_RAW")),
             e.ctr_config("x", sc=caps("cap_net_raw")), e.ctr_config("x")],
            lambda out: capeff(out) & (1 << CAP_SYS_ADMIN)),
        "hostPathPrefixes": (
            {"hostPathPrefixes": [allowed_dir]}, {"hostPathPrefixes": ["/"]},
            [(e.ctr_config("x", mounts=mount(outside), command=cat),
              f"host path {outside} is not under hostPathPrefixes"),
             # a symlink under the prefix is judged by where it points
             (e.ctr_config("x", mounts=mount(os.path.join(allowed_dir, "link"))),
              f"host path {outside} is not under hostPathPrefixes"),
             # a prefix is a directory, not a string prefix
             (e.ctr_config("x", mounts=mount(sibling)), f"host path {sibling} is not under hostPathPrefixes"),
             (e.ctr_config("x", mounts=mount(os.path.join(allowed_dir, "sub")) + [
                 pb.Mount(container_path="/hostetc", host_path="/etc", readonly=True)]),
              "host path /etc is not under hostPathPrefixes")],
            [e.ctr_config("x", mounts=mount(os.path.join(allowed_dir, "sub"))),
             e.ctr_config("x", mounts=mount(allowed_dir)), e.ctr_config("x")],
            lambda out: out == "from-outside"),
    }


@pytest.mark.parametrize("rule", ["privileged", "unconfinedSeccomp", "devices", "addCapabilities",
                                  "hostPathPrefixes"])
def test_container_rules(penv, rule):
    e = penv
    e.pull_busybox()
    web = e.run_pod("web", "web")
    ops = e.run_pod("ops", "ops")
    deny, allow, bad, good, proof = container_rules(e)[rule]
    before = e.snapshot()

    # The default forbids it: refused in both namespaces, each variant,
    # nothing made; what it does not forbid is created.
    e.policy({"default": deny})
    for pod in (web, ops):
        for cfg, what in bad:
            e.refused(lambda: e.create(pod, cfg), "default", what)
    e.assert_unchanged(before)
    for cfg in good:
        e.remove(e.create(web, cfg))
    e.assert_unchanged(before)

    # Allowed for "ops" only: it runs there, with the effect asked for.
    e.policy({"default": deny, "namespaces": {"ops": allow}})
    out = e.run(ops, bad[0][0])
    assert proof(out), out
    for cfg, _ in bad[1:]:
        e.remove(e.create(ops, cfg))
    e.refused(lambda: e.create(web, bad[0][0]), "default", bad[0][1])
    e.assert_unchanged(before)

    # Allowed by the default, refused by "web"'s own rules.
    e.policy({"default": allow, "namespaces": {"web": deny}})
    for cfg, what in bad:
        e.refused(lambda: e.create(web, cfg), "web", what)
    e.assert_unchanged(before)
    e.remove(e.create(ops, bad[0][0]))
    e.assert_unchanged(before)


def test_policy_is_checked_at_create_against_the_pods_namespace(penv):
    """The namespace that counts is the pod's, as execd recorded it: a
    container request cannot claim another one, and a pod admitted before
    the policy narrowed keeps running but gets no new forbidden container."""
    e, pb = penv, penv.pb
    e.pull_busybox()
    web = e.run_pod("web", "web")
    ops = e.run_pod("ops", "ops")
    e.policy({"default": {"privileged": False}, "namespaces": {"ops": {"privileged": True}}})
    before = e.snapshot()
    cfg = e.ctr_config("x", sc=e.sc(privileged=True))
    # web's pod with ops's sandbox config (namespace "ops") is still web's.
    e.refused(lambda: e.rt.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=web[0], config=cfg, sandbox_config=ops[1]), timeout=60), "default",
        "privileged containers are not allowed")
    e.assert_unchanged(before)
    e.remove(e.create(ops, cfg))
    # Narrowed after ops's pod ran: the pod stays, new privileged ones do not.
    e.policy({"default": {"privileged": False}})
    e.refused(lambda: e.create(ops, cfg), "default", "privileged containers are not allowed")
    assert e.pod_status(ops[0]).state == pb.SANDBOX_READY
    e.assert_unchanged(before)


def test_container_cannot_take_a_host_namespace_its_pod_lacks(penv):
    """The pod rules cannot be side-stepped one level down: a container of
    a pod without the host's network, PID or IPC namespace cannot ask for
    it (whatever the policy says, the pod's namespaces bind its containers)."""
    e, pb = penv, penv.pb
    e.pull_busybox()
    e.policy({"default": {"hostNetwork": False, "hostPID": False, "hostIPC": False}})
    pod = e.run_pod("web", "web")
    before = e.snapshot()
    for field in ("network", "pid", "ipc"):
        modes = dict(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
        modes[field] = pb.NODE
        sc = pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(**modes),
            seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault))
        with pytest.raises(grpc.RpcError) as err:
            e.create(pod, e.ctr_config("x", sc=sc))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.value.details())
        assert "host namespaces differ from its pod's" in err.value.details()
    e.assert_unchanged(before)
