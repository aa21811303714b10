"""Pod networking end to end with Debian's CNI plugins: hostPort through the
portmap plugin (iptables rules made and removed), dual-stack pods (IPv4 and
IPv6 from host-local, the ipRanges capability with both families), pins in
a netns directory of the operator's choice (`ip netns` sees /run/netns),
and NetworkReady following the configuration directory without a restart.

Each test uses a bridge and subnets of its own, and puts back what it
changed on the host even when it fails: pinned namespaces, the bridge,
iptables rules and chains (compared with `iptables-save` from before).
"""

import json
import os
import random
import shlex
import socket
import subprocess
import time

import grpc
import pytest

from conftest import Crisp, assert_no_sanitizer_report, unmount_below

NS = "crisp-e2e-net"


def conflist(name, bridge, ipam_dir, ranges, portmap=False, ip_ranges_cap=False, bandwidth=False):
    bridge_plugin = {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
                     "ipam": {"type": "host-local", "dataDir": ipam_dir}}
    if ranges:
        bridge_plugin["ipam"]["ranges"] = [[{"subnet": r}] for r in ranges]
    if ip_ranges_cap:
        bridge_plugin["capabilities"] = {"ipRanges": True}
    plugins = [{"type": "loopback"}, bridge_plugin]
    if portmap:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
    if bandwidth:
        plugins.append({"type": "bandwidth", "capabilities": {"bandwidth": True}})
    return json.dumps({"cniVersion": "1.0.0", "name": name, "plugins": plugins})


def pod_config(pb, name, port_mappings=()):
    md = pb.PodSandboxMetadata(name=name, namespace=NS, uid=f"uid-{name}", attempt=0)
    nso = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
    linux = pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(namespace_options=nso))
    return pb.PodSandboxConfig(metadata=md, hostname=name, log_directory=f"/var/log/pods/{NS}_{name}",
                               labels={"app": name}, port_mappings=list(port_mappings), linux=linux)


def run_pod(c, pb, name, port_mappings=()):
    rq = pb.RunPodSandboxRequest(config=pod_config(pb, name, port_mappings))
    return c.runtime().RunPodSandbox(rq, timeout=60).pod_sandbox_id


def pod_status(c, pb, pid, verbose=False):
    return c.runtime().PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid, verbose=verbose), timeout=10)


def netns_of(c, pb, pid):
    return json.loads(pod_status(c, pb, pid, verbose=True).info["info"])["netnsPath"]


def remove_pod(c, pb, pid):
    c.runtime().StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    c.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)


def network_ready(c, pb):
    st = c.runtime().Status(pb.StatusRequest(), timeout=10).status
    cond = [x for x in st.conditions if x.type == "NetworkReady"]
    assert len(cond) == 1, st
    return cond[0]


class Host:
    """A crisp of the test's own with one network, and everything it may
    leave on the host put back at the end."""

    def __init__(self, tmp, bridge, extra_conf=""):
        self.tmp = tmp
        self.bridge = bridge
        self.ipam = os.path.join(tmp, "ipam")
        self.c = Crisp(tmp, extra_conf)
        self.extra_pins = []  # pins outside the temporary directory

    def write_net(self, text, name="10-net.conflist"):
        path = os.path.join(self.c.cni_dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)

    def close(self):
        self.c.stop()
        unmount_below(self.c.runroot)
        for p in self.extra_pins:
            subprocess.run(["umount", "-l", p], capture_output=True)
            try:
                os.unlink(p)
            except OSError:
                pass
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        assert_no_sanitizer_report(self.c)


@pytest.fixture
def host(tmpdir_short):
    made = []

    def make(bridge, extra_conf=""):
        h = Host(tmpdir_short, bridge, extra_conf)
        made.append(h)
        return h
    yield make
    for h in made:
        h.close()


# ---- iptables bookkeeping ----

TABLES = ("nat", "filter", "mangle")


def iptables_state(cmd="iptables-save"):
    """{table: (set of user chains, list of rules)} without counters."""
    out = subprocess.run([cmd], capture_output=True, text=True, timeout=30).stdout
    state, table = {}, None
    for line in out.splitlines():
        if line.startswith("*"):
            table = line[1:]
            state[table] = (set(), [])
        elif line.startswith(":") and table:
            name, policy = line[1:].split()[:2]
            if policy == "-":
                state[table][0].add(name)
        elif line.startswith("-A ") and table:
            state[table][1].append(line)
    return state


def normalized(state):
    """Tables that hold something (a table that only has its built-in
    chains, empty, is the same as no table)."""
    return {t: (sorted(c), r) for t, (c, r) in state.items() if c or r}


def iptables_restore_to(before, cmd="iptables"):
    """Delete rules and user chains that are not in `before` (rules first,
    newest first; then chains, flushed and deleted)."""
    after = iptables_state(cmd + "-save")
    for table, (chains, rules) in after.items():
        bchains, brules = before.get(table, (set(), []))
        for rule in reversed(rules):
            if rule not in brules:
                args = shlex.split(rule)
                subprocess.run([cmd, "-t", table, "-D"] + args[1:], capture_output=True)
        for ch in chains - bchains:
            subprocess.run([cmd, "-t", table, "-F", ch], capture_output=True)
        for ch in chains - bchains:
            subprocess.run([cmd, "-t", table, "-X", ch], capture_output=True)


@pytest.fixture
def iptables_guard():
    before4 = iptables_state("iptables-save")
    before6 = iptables_state("ip6tables-save")
    try:
        yield before4
    finally:
        iptables_restore_to(before4, "iptables")
        iptables_restore_to(before6, "ip6tables")
    for cmd, before in (("iptables-save", before4), ("ip6tables-save", before6)):
        assert normalized(iptables_state(cmd)) == normalized(before), f"{cmd}: not put back"


def free_port():
    for _ in range(100):
        port = random.randint(12000, 12999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port in 12000-12999")


def send_until_connected(port, data, timeout=10.0):
    """Connect to 127.0.0.1:port (retrying while the listener in the pod
    is not up yet) and send data."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(data)
                return
        except OSError as e:
            last = e
            time.sleep(0.1)
    raise AssertionError(f"could not connect to 127.0.0.1:{port}: {last}")


def test_hostport_through_portmap(host, cri, iptables_guard):
    """A pod's port mapping becomes the portMappings capability of portmap:
    a connection to 127.0.0.1:<hostPort> on the host reaches the listener
    in the pod's namespace; after removal no rule of the pod is left."""
    pb, _ = cri
    before = iptables_guard
    h = host("crispnet1")
    h.write_net(conflist("crisp-portmap", h.bridge, h.ipam, ["10.246.1.0/24"], portmap=True))
    h.c.start()
    hport = free_port()
    hport2 = free_port()
    while hport2 == hport:
        hport2 = free_port()
    pms = [pb.PortMapping(protocol=pb.TCP, container_port=8080, host_port=hport, host_ip="127.0.0.1"),
           # No host address: every local address of the host, 127.0.0.1 too.
           pb.PortMapping(protocol=pb.TCP, container_port=8081, host_port=hport2),
           # No host port: not a mapping portmap is given.
           pb.PortMapping(protocol=pb.TCP, container_port=9090)]
    pid = run_pod(h.c, pb, "portmap", pms)
    listener = None
    try:
        ip = pod_status(h.c, pb, pid).status.network.ip
        assert ip.startswith("10.246.1."), ip
        netns = netns_of(h.c, pb, pid)

        # portmap's rules: a DNAT chain of the pod naming its address and
        # port, reached from the top-level CNI-HOSTPORT-DNAT chain.
        nat = iptables_state()["nat"]
        dn = [ch for ch in nat[0] if ch.startswith("CNI-DN-")]
        mine = [r for r in nat[1] if f"{ip}:8080" in r]
        assert mine and any(f"--dport {hport}" in r and "127.0.0.1" in r for r in mine), nat
        assert any(f"--dport {hport2}" in r and f"{ip}:8081" in r for r in nat[1]), nat
        assert not any(f"{ip}:9090" in r for r in nat[1]), nat
        assert "CNI-HOSTPORT-DNAT" in nat[0]
        # 127.0.0.1 as the host address needs route_localnet on the bridge:
        # portmap sets it (SNAT is on by default).
        with open(f"/proc/sys/net/ipv4/conf/{h.bridge}/route_localnet") as f:
            assert f.read().strip() == "1"

        listener = subprocess.Popen(["nsenter", f"--net={netns}", "busybox", "nc", "-l", "-p", "8080"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        send_until_connected(hport, b"hello through portmap\n")
        out, err = listener.communicate(timeout=10)
        assert b"hello through portmap" in out, (out, err)
        listener = subprocess.Popen(["nsenter", f"--net={netns}", "busybox", "nc", "-l", "-p", "8081"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        send_until_connected(hport2, b"second mapping\n")
        out, err = listener.communicate(timeout=10)
        assert b"second mapping" in out, (out, err)
        listener = None

        remove_pod(h.c, pb, pid)
        pid = None
        nat_after = iptables_state()["nat"]
        assert not [r for r in nat_after[1] if ip in r], nat_after
        new_dn = [ch for ch in nat_after[0] if ch.startswith("CNI-DN-") and
                  ch not in before.get("nat", (set(), []))[0]]
        assert new_dn == [], (dn, nat_after)
        # What stays is portmap's shared top-level chains (made once per
        # host, kept by design) with no rule of the pod in them, and the
        # jumps to them; the fixture removes those too.
        shared = {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"}
        for table, (chains, rules) in iptables_state().items():
            bchains, brules = before.get(table, (set(), []))
            assert chains - bchains <= shared, (table, chains - bchains)
            for r in rules:
                if r not in brules:
                    assert r.split()[1] in shared or any(f"-j {c}" in r for c in shared), r
                    assert "-j DNAT" not in r and "CNI-DN-" not in r, r
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        if pid is not None:
            try:
                remove_pod(h.c, pb, pid)
            except grpc.RpcError:
                pass


def test_dual_stack_pod(host, cri):
    """host-local with an IPv4 and an IPv6 range: PodSandboxStatus gives
    the IPv4 address as network.ip and the IPv6 one in additional_ips; both
    are on the pod's eth0; both are released at removal."""
    pb, _ = cri
    h = host("crispnet2")
    # The IPv6 range first: crisp still reports the IPv4 address first.
    h.write_net(conflist("crisp-dual", h.bridge, h.ipam, ["fd00:246:2::/64", "10.246.2.0/24"]))
    h.c.start()
    pid = run_pod(h.c, pb, "dual")
    try:
        st = pod_status(h.c, pb, pid).status
        assert st.network.ip.startswith("10.246.2."), st.network
        assert [x.ip for x in st.network.additional_ips] == [st.network.additional_ips[0].ip]
        v6 = st.network.additional_ips[0].ip
        assert v6.startswith("fd00:246:2::"), st.network
        netns = netns_of(h.c, pb, pid)
        r = subprocess.run(["nsenter", f"--net={netns}", "ip", "-6", "-o", "addr", "show", "dev", "eth0"],
                           capture_output=True, text=True, timeout=10)
        assert f" {v6}/64 " in r.stdout, r
        r = subprocess.run(["nsenter", f"--net={netns}", "ip", "-6", "route", "show", "dev", "eth0"],
                           capture_output=True, text=True, timeout=10)
        assert "fd00:246:2::/64" in r.stdout, r
        # The bridge side answers over IPv6.
        r = subprocess.run(["nsenter", f"--net={netns}", "busybox", "ping", "-6", "-c1", "-W3", "fd00:246:2::1"],
                           capture_output=True, text=True, timeout=15)
        assert r.returncode == 0, r
        v4 = st.network.ip
        remove_pod(h.c, pb, pid)
        pid = None
        left = os.listdir(os.path.join(h.ipam, "crisp-dual"))
        assert v4 not in left and v6 not in left, left
    finally:
        if pid is not None:
            remove_pod(h.c, pb, pid)


def test_dual_stack_pod_cidrs_from_update_runtime_config(host, cri):
    """kubelet's dual-stack pod CIDRs ("v4,v6") reach host-local as the
    ipRanges capability with one range set per family."""
    pb, _ = cri
    h = host("crispnet3")
    h.write_net(conflist("crisp-cidrs", h.bridge, h.ipam, [], ip_ranges_cap=True))
    h.c.start()
    rc = pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr="10.246.3.0/24,fd00:246:3::/64"))
    h.c.runtime().UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(runtime_config=rc), timeout=10)
    pid = run_pod(h.c, pb, "cidrs")
    try:
        st = pod_status(h.c, pb, pid).status
        assert st.network.ip.startswith("10.246.3."), st.network
        assert len(st.network.additional_ips) == 1, st.network
        assert st.network.additional_ips[0].ip.startswith("fd00:246:3::"), st.network
    finally:
        remove_pod(h.c, pb, pid)


def test_netns_dir_run_netns(host, cri):
    """[netd] netns_dir = /run/netns: `ip netns` lists the pod's namespace
    and can run a command in it; removal takes the pin away."""
    pb, _ = cri
    run_netns = "/run/netns"
    was_mount = subprocess.run(["mountpoint", "-q", run_netns], capture_output=True).returncode == 0
    h = host("crispnet4", f"netns_dir = {run_netns}\n")
    h.write_net(conflist("crisp-ipnetns", h.bridge, h.ipam, ["10.246.4.0/24"]))
    pid = None
    try:
        h.c.start()
        pid = run_pod(h.c, pb, "ipnetns")
        h.extra_pins.append(os.path.join(run_netns, pid))
        assert netns_of(h.c, pb, pid) == os.path.join(run_netns, pid)
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        assert pid in names, names
        ip = pod_status(h.c, pb, pid).status.network.ip
        r = subprocess.run(["ip", "netns", "exec", pid, "ip", "-4", "-o", "addr", "show", "eth0"],
                           capture_output=True, text=True, timeout=10)
        assert ip in r.stdout, r
        # Nothing in the default place.
        assert not os.path.exists(os.path.join(h.c.runroot, "netns", pid))
        remove_pod(h.c, pb, pid)
        assert not os.path.exists(os.path.join(run_netns, pid))
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        assert pid not in names
        pid = None
    finally:
        if pid is not None:
            try:
                remove_pod(h.c, pb, pid)
            except grpc.RpcError:
                pass
        h.close()
        # The bind mount netd made of /run/netns goes when the test made it
        # and no other pin lives there.
        if not was_mount and os.path.isdir(run_netns):
            with open("/proc/self/mountinfo") as f:
                below = [l for l in f if l.split()[4].startswith(run_netns + "/")]
            if not below:
                subprocess.run(["umount", run_netns], capture_output=True)


def test_network_ready_follows_the_conf_dir(host, cri):
    """No configuration: NetworkReady false, naming the directory.  A
    configuration written later flips it to true without a restart, and
    its removal back to false; calls in between are answered from netd's
    cache (the same answer, quickly)."""
    pb, _ = cri
    h = host("crispnet5")
    h.c.start()
    cond = network_ready(h.c, pb)
    assert cond.status is False and cond.reason == "NetworkPluginNotReady"
    assert h.c.cni_dir in cond.message, cond
    netd_pid = h.c.roles()["crisp-netd"]

    h.write_net(conflist("crisp-later", h.bridge, h.ipam, ["10.246.5.0/24"]))
    assert network_ready(h.c, pb).status is True
    # The pod network works with it, no restart in between.
    pid = run_pod(h.c, pb, "later")
    assert pod_status(h.c, pb, pid).status.network.ip.startswith("10.246.5.")
    remove_pod(h.c, pb, pid)

    t0 = time.monotonic()
    for _ in range(200):
        assert network_ready(h.c, pb).status is True
    per_call = (time.monotonic() - t0) / 200
    assert per_call < 0.05, per_call

    # A broken edit in place, then removal: false again, with the reason.
    with open(os.path.join(h.c.cni_dir, "10-net.conflist"), "w") as f:
        f.write("{broken")
    cond = network_ready(h.c, pb)
    assert cond.status is False and "10-net.conflist" in cond.message, cond
    os.unlink(os.path.join(h.c.cni_dir, "10-net.conflist"))
    assert network_ready(h.c, pb).status is False
    # Same netd all along.
    assert h.c.roles()["crisp-netd"] == netd_pid


def test_bandwidth_annotations_shape_the_pod(host, cri):
    """kubelet's kubernetes.io/ingress-bandwidth and egress-bandwidth pod
    annotations reach the bandwidth plugin as its capability: a token bucket
    at that rate on the pod's host-side veth (ingress) and on the ifb device
    it mirrors egress through; both go with the pod.  A malformed or
    out-of-range value is refused before anything is made."""
    pb, _ = cri
    h = host("crispnet6")
    h.write_net(conflist("crisp-bw", h.bridge, h.ipam, ["10.246.6.0/24"], bandwidth=True))
    h.c.start()

    def qdiscs():
        return subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True, timeout=10).stdout

    def bwp_links():  # the plugin's ifb devices are named bwp<hash>
        out = subprocess.run(["ip", "-o", "link", "show", "type", "ifb"], capture_output=True, text=True,
                             timeout=10).stdout
        return [ln.split(":")[1].strip() for ln in out.splitlines() if ln.split(":")[1].strip().startswith("bwp")]

    def run_bw(name, ingress, egress):
        cfg = pod_config(pb, name)
        cfg.annotations["kubernetes.io/ingress-bandwidth"] = ingress
        cfg.annotations["kubernetes.io/egress-bandwidth"] = egress
        return h.c.runtime().RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id

    before = qdiscs()
    assert "rate 3Mbit" not in before and "rate 7Mbit" not in before
    pid = run_bw("bw", "3M", "7M")
    try:
        q = qdiscs()
        assert "tbf" in q and "rate 3Mbit" in q and "rate 7Mbit" in q, q
        assert bwp_links(), "no ifb device of the plugin for egress shaping"
    finally:
        remove_pod(h.c, pb, pid)
    q = qdiscs()
    assert "rate 3Mbit" not in q and "rate 7Mbit" not in q, q
    assert bwp_links() == []
    for bad in ("lots", "10Q", "1", "2P"):
        with pytest.raises(grpc.RpcError) as e:
            run_bw("bad", bad, "7M")
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (bad, e.value.details())
        assert "kubernetes.io/ingress-bandwidth" in e.value.details()
    assert len(h.c.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == 0
