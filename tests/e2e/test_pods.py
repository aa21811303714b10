"""Pod sandboxes end to end: RunPodSandbox through frontd, execd (state,
pinned namespaces, files) and netd (a real CNI bridge), then status, list,
stop and remove; every refusal and every cleanup checked on the host."""

import os
import signal
import subprocess
import time

import grpc
import pytest

NS = "crisp-e2e"


def pod_config(pb, name="web", attempt=0, host_net=False, sysctls=None, labels=None):
    md = pb.PodSandboxMetadata(name=name, namespace=NS, uid=f"uid-{name}", attempt=attempt)
    nso = pb.NamespaceOption(network=pb.NODE if host_net else pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
    linux = pb.LinuxPodSandboxConfig(
        sysctls=sysctls or {},
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=nso))
    return pb.PodSandboxConfig(
        metadata=md, hostname=f"{name}-host", log_directory=f"/var/log/pods/{NS}_{name}_uid-{name}",
        dns_config=pb.DNSConfig(servers=["10.250.0.10"], searches=["svc.cluster.local"], options=["ndots:5"]),
        labels=labels or {"app": name, "io.kubernetes.pod.namespace": NS},
        annotations={"note": "e2e"}, linux=linux)


def run(crisp, pb, **kw):
    return crisp.runtime().RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config(pb, **kw)), timeout=60).pod_sandbox_id


def status(crisp, pb, pid):
    return crisp.runtime().PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid), timeout=10).status


def mounted(path_part):
    with open("/proc/self/mountinfo") as f:
        return any(path_part in line for line in f)


def nsenter(flag, pin, *cmd):
    return subprocess.run(["nsenter", f"{flag}={pin}", *cmd], capture_output=True, text=True, timeout=10)


def test_pod_lifecycle(crisp, cri):
    pb, _ = cri
    pid = run(crisp, pb, sysctls={"kernel.shm_rmid_forced": "1", "net.ipv4.ping_group_range": "0 0"})
    assert len(pid) == 64 and all(c in "0123456789abcdef" for c in pid)
    st = status(crisp, pb, pid)
    assert st.state == pb.SANDBOX_READY
    assert st.metadata.name == "web" and st.metadata.namespace == NS and st.metadata.uid == "uid-web"
    assert st.network.ip.startswith("10.250.0."), st.network
    assert st.labels["app"] == "web" and st.annotations["note"] == "e2e"
    assert abs(st.created_at - time.time_ns()) < 60 * 10**9
    assert st.linux.namespaces.options.network == pb.POD
    ip = st.network.ip

    # The pod's own namespaces, pinned, with its hostname and sysctls.
    poddir = os.path.join(crisp.runroot, "pods", pid)
    r = nsenter("--uts", os.path.join(poddir, "ns", "uts"), "hostname")
    assert r.stdout.strip() == "web-host", r
    r = nsenter("--ipc", os.path.join(poddir, "ns", "ipc"), "cat", "/proc/sys/kernel/shm_rmid_forced")
    assert r.stdout.strip() == "1", r
    netns = os.path.join(crisp.runroot, "netns", pid)
    r = nsenter("--net", netns, "cat", "/proc/sys/net/ipv4/ping_group_range")
    assert r.stdout.split() == ["0", "0"], r
    r = nsenter("--net", netns, "ip", "-4", "-o", "addr", "show", "eth0")
    assert ip in r.stdout, r
    with open(os.path.join(poddir, "resolv.conf")) as f:
        resolv = f.read()
    assert "nameserver 10.250.0.10" in resolv and "search svc.cluster.local" in resolv and "options ndots:5" in resolv
    with open(os.path.join(poddir, "hosts")) as f:
        assert f"{ip}\tweb-host" in f.read()

    # Listing, with filters.
    items = crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items
    assert [p.id for p in items] == [pid]
    f = pb.PodSandboxFilter(label_selector={"app": "web"})
    assert len(crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(filter=f), timeout=10).items) == 1
    f = pb.PodSandboxFilter(label_selector={"app": "db"})
    assert len(crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(filter=f), timeout=10).items) == 0
    f = pb.PodSandboxFilter(id=pid[:12], state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))
    assert len(crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(filter=f), timeout=10).items) == 1
    # A unique prefix works for status too.
    assert status(crisp, pb, pid[:10]).id == pid
    # verbose: execd's own view as JSON under "info".
    import json
    v = crisp.runtime().PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid, verbose=True), timeout=10)
    info = json.loads(v.info["info"])
    assert info["netnsPath"] == netns and info["ips"] == [ip] and info["hostname"] == "web-host"
    assert info["hostNetwork"] is False and info["podDirectory"] == poddir
    assert "info" not in crisp.runtime().PodSandboxStatus(
        pb.PodSandboxStatusRequest(pod_sandbox_id=pid), timeout=10).info

    # The same name again: ALREADY_EXISTS naming the owner.
    with pytest.raises(grpc.RpcError) as e:
        run(crisp, pb)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS and pid in e.value.details()

    # Stop: NOTREADY, network released (host-local forgets the address).
    crisp.runtime().StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    assert status(crisp, pb, pid).state == pb.SANDBOX_NOTREADY
    assert not os.path.exists(netns)
    ipam = os.path.join(crisp.tmp, "ipam", "crisp-test")
    assert ip not in (os.listdir(ipam) if os.path.isdir(ipam) else [])
    crisp.runtime().StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=60)  # idempotent

    # Remove: gone, pins unmounted, directory removed; then idempotent.
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    with pytest.raises(grpc.RpcError) as e:
        status(crisp, pb, pid)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert not os.path.exists(poddir)
    assert not mounted(pid)
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    crisp.runtime().StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    assert len(crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == 0


def test_remove_without_stop_and_two_pods(crisp, cri):
    pb, _ = cri
    a = run(crisp, pb, name="a")
    b = run(crisp, pb, name="b")
    ia, ib = status(crisp, pb, a).network.ip, status(crisp, pb, b).network.ip
    assert ia != ib
    # The two pods reach each other over the bridge.
    r = nsenter("--net", os.path.join(crisp.runroot, "netns", a), "busybox", "ping", "-c1", "-W2", ib)
    assert r.returncode == 0, r
    for p in (a, b):
        crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p), timeout=60)
        assert not mounted(p)
    assert len(crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == 0


def test_host_network_pod(crisp, cri):
    pb, _ = cri
    pid = run(crisp, pb, name="hostnet", host_net=True)
    st = status(crisp, pb, pid)
    assert st.state == pb.SANDBOX_READY and st.network.ip == ""
    assert st.linux.namespaces.options.network == pb.NODE
    assert not os.path.exists(os.path.join(crisp.runroot, "netns", pid))
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)


def test_refusals_leave_nothing(crisp, cri):
    pb, _ = cri
    cases = [
        (dict(name="s1", sysctls={"vm.swappiness": "10"}), grpc.StatusCode.INVALID_ARGUMENT, "not namespaced"),
        (dict(name="s2", host_net=True, sysctls={"net.ipv4.ping_group_range": "0 0"}),
         grpc.StatusCode.INVALID_ARGUMENT, "host's network"),
        (dict(name="s3", sysctls={"kernel.shm_rmid_forced": "not-a-number"}),
         grpc.StatusCode.INVALID_ARGUMENT, "sysctl"),
    ]
    for kw, code, text in cases:
        with pytest.raises(grpc.RpcError) as e:
            run(crisp, pb, **kw)
        assert e.value.code() == code and text in e.value.details(), (kw, e.value.details())
    # Nothing half made: no record, no directory, no pin, no address.
    assert len(crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == 0
    assert os.listdir(os.path.join(crisp.runroot, "pods")) == []
    assert not mounted(os.path.join(crisp.runroot, "pods"))
    ipam = os.path.join(crisp.tmp, "ipam", "crisp-test")
    assert not [n for n in (os.listdir(ipam) if os.path.isdir(ipam) else []) if n.startswith("10.")]


def test_no_network_config_is_a_clear_error(crisp, cri):
    pb, _ = cri
    os.unlink(os.path.join(crisp.cni_dir, "10-test.conflist"))
    with pytest.raises(grpc.RpcError) as e:
        run(crisp, pb, name="nonet")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value.details()
    assert crisp.cni_dir in e.value.details()
    assert len(crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == 0


def test_pods_survive_execd_and_crisp_restarts(crisp, cri):
    pb, _ = cri
    pid = run(crisp, pb, name="durable")
    ip = status(crisp, pb, pid).network.ip
    roles = crisp.wait_roles()
    os.kill(roles["crisp-execd"], signal.SIGKILL)
    crisp.wait_roles(exclude={"crisp-execd": roles["crisp-execd"]})
    st = status(crisp, pb, pid)
    assert st.state == pb.SANDBOX_READY and st.network.ip == ip
    # All of crisp down and up again: the record, pins and address stay.
    crisp.stop()
    crisp.start()
    st = status(crisp, pb, pid)
    assert st.state == pb.SANDBOX_READY and st.network.ip == ip
    assert mounted(pid)
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    assert not mounted(pid)


def test_netd_killed_between_add_and_remove_releases_ip(crisp, cri):
    pb, _ = cri
    pid = run(crisp, pb, name="netkill")
    ip = status(crisp, pb, pid).network.ip
    ipam = os.path.join(crisp.tmp, "ipam", "crisp-test")
    assert ip in os.listdir(ipam)
    roles = crisp.wait_roles()
    os.kill(roles["crisp-netd"], signal.SIGKILL)
    crisp.wait_roles(exclude={"crisp-netd": roles["crisp-netd"]})
    # DEL from netd's durable cache, with the same prevResult.
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    assert ip not in os.listdir(ipam)
    assert not mounted(pid)


def test_100_create_remove_cycles_leave_nothing(crisp, cri):
    pb, _ = cri
    ipam = os.path.join(crisp.tmp, "ipam", "crisp-test")
    with open("/proc/self/mountinfo") as f:
        mounts_before = len(f.readlines())
    links_before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.count("\n")
    for i in range(100):
        pid = run(crisp, pb, name=f"cycle{i}")
        crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    assert len(crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items) == 0
    assert not [n for n in os.listdir(ipam) if n.startswith("10.")]
    assert os.listdir(os.path.join(crisp.runroot, "pods")) == []
    assert os.listdir(os.path.join(crisp.runroot, "netns")) == []
    with open("/proc/self/mountinfo") as f:
        assert len(f.readlines()) == mounts_before
    # veths are gone; the bridge itself may stay (created by the first pod).
    links_after = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.count("\n")
    assert links_after <= links_before + 1


def test_runtime_policy_enforced_in_execd(crisp, cri):
    import json
    pb, _ = cri
    policy = os.path.join(crisp.tmp, "runtime-policy.json")
    with open(policy, "w") as f:
        json.dump({"default": {"hostNetwork": False},
                   "namespaces": {"kube-system": {"hostNetwork": True}}}, f)
    crisp.write_conf(extra=f"[execd]\nruntime_policy = {policy}\n")
    crisp.proc.send_signal(signal.SIGHUP)
    t0 = time.monotonic()
    while "configuration 2 committed" not in crisp.logtext():
        assert time.monotonic() - t0 < 5
        time.sleep(0.05)
    with pytest.raises(grpc.RpcError) as e:
        run(crisp, pb, name="hn", host_net=True)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "runtime policy (default): hostNetwork is not allowed" in e.value.details()
    # A namespace of its own may (the pod's namespace is kube-system).
    cfg = pod_config(pb, name="hn2", host_net=True)
    cfg.metadata.namespace = "kube-system"
    pid = crisp.runtime().RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    # The file is re-read when it changes; a broken one refuses new pods.
    time.sleep(0.01)
    with open(policy + ".tmp", "w") as f:
        f.write('{"default": {"hostNetwork": maybe}}')
    os.rename(policy + ".tmp", policy)
    with pytest.raises(grpc.RpcError) as e:
        run(crisp, pb, name="any")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and policy in e.value.details()
    os.unlink(policy)   # back to the embedded default, which allows it
    pid = run(crisp, pb, name="hn3", host_net=True)
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)


def test_update_runtime_config_pod_cidr_reaches_ipam(crisp, cri):
    """kubelet's node pod CIDR (UpdateRuntimeConfig) is offered to the
    plugins as the ipRanges capability; host-local then allocates from it.
    netd keeps it across restarts."""
    pb, _ = cri
    ipam = os.path.join(crisp.tmp, "ipam2")
    with open(os.path.join(crisp.cni_dir, "10-test.conflist"), "w") as f:
        f.write("""{"cniVersion": "1.0.0", "name": "crisp-test", "plugins": [
          {"type": "loopback"},
          {"type": "bridge", "bridge": "crisptest0", "isGateway": true, "ipMasq": false,
           "capabilities": {"ipRanges": true},
           "ipam": {"type": "host-local", "dataDir": "%s"}}]}""" % ipam)
    rc = pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr="10.247.0.0/24"))
    crisp.runtime().UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(runtime_config=rc), timeout=10)
    roles = crisp.wait_roles()
    os.kill(roles["crisp-netd"], signal.SIGKILL)
    crisp.wait_roles(exclude={"crisp-netd": roles["crisp-netd"]})
    pid = run(crisp, pb, name="cidr")
    assert status(crisp, pb, pid).network.ip.startswith("10.247.0.")
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    bad = pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr="10.247.0.0/99"))
    with pytest.raises(grpc.RpcError) as e:
        crisp.runtime().UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(runtime_config=bad), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_frontd_killed_mid_call_loses_nothing(crisp, cri):
    """frontd holds nothing that matters: killed while a RunPodSandbox is in
    flight (held up in netd), the pod is still made by execd and netd; the
    client sees UNAVAILABLE, and its retry learns the pod's id."""
    pb, _ = cri
    roles = crisp.wait_roles()
    os.kill(roles["crisp-netd"], signal.SIGSTOP)
    try:
        fut = crisp.runtime().RunPodSandbox.future(
            pb.RunPodSandboxRequest(config=pod_config(pb, name="inflight")), timeout=30)
        time.sleep(0.5)
        os.kill(roles["crisp-frontd"], signal.SIGKILL)
    finally:
        os.kill(roles["crisp-netd"], signal.SIGCONT)
    with pytest.raises(grpc.RpcError) as e:
        fut.result()
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    crisp.wait_roles(exclude={"crisp-frontd": roles["crisp-frontd"]})
    crisp.wait_version()
    deadline = time.monotonic() + 10
    while True:
        items = crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items
        if items:
            break
        assert time.monotonic() < deadline, "the pod was not made"
        time.sleep(0.05)
    assert len(items) == 1 and items[0].metadata.name == "inflight" and items[0].state == pb.SANDBOX_READY
    with pytest.raises(grpc.RpcError) as e:
        run(crisp, pb, name="inflight")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS and items[0].id in e.value.details()
    crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=items[0].id), timeout=60)


def test_answer_over_the_ipc_bound_is_an_error_not_a_hang(crisp, cri):
    """Three pods with 1.5 MiB of annotations each: listing them exceeds
    what one ipc answer may carry.  The client gets RESOURCE_EXHAUSTED at
    once rather than waiting out its deadline."""
    pb, _ = cri
    ids = []
    for i in range(3):
        cfg = pod_config(pb, name=f"big{i}", host_net=True)
        cfg.annotations["big"] = "x" * (1536 * 1024)
        ids.append(crisp.runtime().RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id)
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
    assert time.monotonic() - t0 < 5
    # Each alone fits.
    assert status(crisp, pb, ids[0]).annotations["big"].startswith("xxx")
    for p in ids:
        crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p), timeout=60)
