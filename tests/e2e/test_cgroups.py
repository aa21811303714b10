"""cgroup limits beyond memory and cpu, end to end: cpuset, memory+swap,
huge pages and the CRI unified map, at CreateContainer and through
UpdateContainerResources, read back from the host's cgroup files and from
inside the container (ExecSync).  Bad values are refused with
INVALID_ARGUMENT and leave nothing behind.

This node runs cgroup v1 with swap accounting (memory.memsw.*) and no
hugetlb hierarchy; the v2 writes are covered by the unit test
tests/unit/test_cgroup_resources.c."""

import os

import grpc
import pytest

from test_containers import env, sh_exec  # noqa: F401,F811  (env: the fixture)

CG = "/sys/fs/cgroup"
V2 = os.path.exists(f"{CG}/cgroup.controllers")
UNLIMITED = 9223372036854771712  # v1's "no limit", page-aligned LLONG_MAX


def v1_file(ctrl, cid, name):
    return f"{CG}/{ctrl}/crisp/crisp-{cid}/{name}"


def read(path):
    with open(path) as f:
        return f.read().strip()


def node_cpus():
    return read(f"{CG}/cpuset/cpuset.effective_cpus") if os.path.exists(f"{CG}/cpuset") else ""


def hugepage_sizes():
    """The node's huge page sizes as kubelet names them ("2MB", "1GB")."""
    out = []
    for d in sorted(os.listdir("/sys/kernel/mm/hugepages")):
        kb = int(d[len("hugepages-"):-2])
        for unit in ("KB", "MB", "GB", "TB"):
            if kb % 1024 or unit == "TB":
                out.append(f"{kb}{unit}")
                break
            kb //= 1024
    return out


def container_cgroups():
    """Every container cgroup under the default parent, in every hierarchy."""
    out = set()
    for h in os.listdir(CG):
        d = f"{CG}/{h}/crisp"
        if os.path.isdir(d):
            out |= {f"{d}/{x}" for x in os.listdir(d) if x.startswith("crisp-")}
    return out


def refused(env, pod, resources, where):
    """CreateContainer with resources is refused with INVALID_ARGUMENT and
    leaves no container, cgroup or state directory."""
    before_cg = container_cgroups()
    before_state = set(os.listdir(os.path.join(env.c.root, "containers"))) \
        if os.path.isdir(os.path.join(env.c.root, "containers")) else set()
    with pytest.raises(grpc.RpcError) as ei:
        env.create(pod, env.busybox, name="bad", command=["/bin/busybox", "sleep", "60"], resources=resources)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (where, ei.value.details())
    listed = env.rt.ListContainers(env.pb.ListContainersRequest(), timeout=10).containers
    assert [c.id for c in listed if c.metadata.name == "bad"] == [], where
    assert container_cgroups() == before_cg, where
    after_state = set(os.listdir(os.path.join(env.c.root, "containers"))) \
        if os.path.isdir(os.path.join(env.c.root, "containers")) else set()
    assert after_state <= before_state, where
    return ei.value.details()


def update(env, cid, **kw):
    env.rt.UpdateContainerResources(env.pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=env.pb.LinuxContainerResources(**kw)), timeout=10)


def cpus_allowed(env, cid):
    rc, out, err = sh_exec(env, cid, "/bin/busybox grep Cpus_allowed_list /proc/self/status")
    assert rc == 0, err
    return out.split()[-1]


@pytest.mark.skipif(V2, reason="cgroup v1 paths")  # reason: the v2 writes are the unit test's
def test_cpuset_and_swap(env):
    pb = env.pb
    cpus = node_cpus()
    assert cpus, "no cpuset hierarchy"
    pod = env.pod()
    mib = 1 << 20
    cid = env.create(pod, env.busybox, command=["/bin/busybox", "sleep", "300"], resources=pb.LinuxContainerResources(
        cpuset_cpus="0", cpuset_mems="0", memory_limit_in_bytes=64 * mib, memory_swap_limit_in_bytes=64 * mib))
    # a container without a cpuset gets the node's, through every level
    free = env.create(pod, env.busybox, name="free", command=["/bin/busybox", "sleep", "300"])
    env.start(cid)
    env.start(free)
    try:
        assert read(v1_file("cpuset", cid, "cpuset.cpus")) == "0"
        assert read(v1_file("cpuset", cid, "cpuset.mems")) == "0"
        assert cpus_allowed(env, cid) == "0"
        assert read(v1_file("cpuset", free, "cpuset.cpus")) == cpus
        assert cpus_allowed(env, free) == cpus
        assert read(f"{CG}/cpuset/crisp/cpuset.cpus") == cpus  # the parent crisp made
        # kubelet's swap: memory+swap = memory, i.e. none
        assert int(read(v1_file("memory", cid, "memory.limit_in_bytes"))) == 64 * mib
        assert int(read(v1_file("memory", cid, "memory.memsw.limit_in_bytes"))) == 64 * mib

        # UpdateContainerResources: the CPU manager moves it; "" leaves it
        last = cpus.split("-")[-1].split(",")[-1]
        update(env, cid, cpuset_cpus=last)
        assert read(v1_file("cpuset", cid, "cpuset.cpus")) == last
        assert cpus_allowed(env, cid) == last
        update(env, cid, cpu_shares=256)
        assert read(v1_file("cpuset", cid, "cpuset.cpus")) == last
        update(env, cid, cpuset_cpus=cpus, cpuset_mems="0")
        assert cpus_allowed(env, cid) == cpus

        # memory and memory+swap in both directions: the kernel refuses a
        # memory limit above memsw and a memsw below memory, so the order
        # of the two writes matters each way
        update(env, cid, memory_limit_in_bytes=128 * mib, memory_swap_limit_in_bytes=256 * mib)
        assert int(read(v1_file("memory", cid, "memory.limit_in_bytes"))) == 128 * mib
        assert int(read(v1_file("memory", cid, "memory.memsw.limit_in_bytes"))) == 256 * mib
        update(env, cid, memory_limit_in_bytes=32 * mib, memory_swap_limit_in_bytes=32 * mib)
        assert int(read(v1_file("memory", cid, "memory.limit_in_bytes"))) == 32 * mib
        assert int(read(v1_file("memory", cid, "memory.memsw.limit_in_bytes"))) == 32 * mib
        update(env, cid, memory_limit_in_bytes=48 * mib, memory_swap_limit_in_bytes=-1)  # UnlimitedSwap
        assert int(read(v1_file("memory", cid, "memory.limit_in_bytes"))) == 48 * mib
        assert int(read(v1_file("memory", cid, "memory.memsw.limit_in_bytes"))) == UNLIMITED
        r = env.status(cid).resources.linux
        assert (r.memory_limit_in_bytes, r.memory_swap_limit_in_bytes) == (48 * mib, -1), r
        update(env, cid, memory_limit_in_bytes=40 * mib)  # swap unset: none (as CRI-O)
        assert int(read(v1_file("memory", cid, "memory.memsw.limit_in_bytes"))) == 40 * mib

        # refused updates change nothing
        for bad in (dict(cpuset_cpus="0-"), dict(cpuset_cpus="abc"), dict(cpuset_cpus="4096"),
                    dict(memory_limit_in_bytes=64 * mib, memory_swap_limit_in_bytes=32 * mib),
                    dict(memory_swap_limit_in_bytes=64 * mib),
                    dict(hugepage_limits=[pb.HugepageLimit(page_size="3MB")]),
                    dict(unified={"memory.high": "max"}), dict(unified={"../x": "1"})):
            with pytest.raises(grpc.RpcError) as ei:
                update(env, cid, **bad)
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (bad, ei.value.details())
        assert read(v1_file("cpuset", cid, "cpuset.cpus")) == cpus
        assert int(read(v1_file("memory", cid, "memory.limit_in_bytes"))) == 40 * mib
        assert int(read(v1_file("memory", cid, "memory.memsw.limit_in_bytes"))) == 40 * mib
        # ContainerStatus reports the limits in force, updates included,
        # read back from the cgroup (what in-place resize compares)
        update(env, cid, cpu_quota=50000, cpu_period=100000)
        r = env.status(cid).resources.linux
        assert (r.cpuset_cpus, r.cpuset_mems) == (cpus, "0"), r
        assert (r.memory_limit_in_bytes, r.memory_swap_limit_in_bytes) == (40 * mib, 40 * mib), r
        assert (r.cpu_shares, r.cpu_quota, r.cpu_period) == (256, 50000, 100000), r
        # the free container: no limit reads as 0, the node's cpus
        r = env.status(free).resources.linux
        assert (r.memory_limit_in_bytes, r.cpu_quota, r.cpuset_cpus) == (0, 0, cpus), r
    finally:
        env.cleanup()
    for c in (cid, free):
        assert not os.path.exists(f"{CG}/cpuset/crisp/crisp-{c}")


def test_hugepage_limits(env):
    """kubelet sends a limit for every page size the node has; without a
    hugetlb controller they are accepted and skipped (as CRI-O, and
    containerd's default tolerate_missing_hugetlb_controller); with one
    they land in hugetlb.<size>.limit_in_bytes.  Sizes the node does not
    have are refused."""
    pb = env.pb
    sizes = hugepage_sizes()
    if not sizes:
        pytest.skip("no huge page sizes")  # reason: the kernel offers no huge pages on this node
    pod = env.pod()
    limits = [pb.HugepageLimit(page_size=s, limit=0) for s in sizes]
    limits[0].limit = 4 << 20
    cid = env.create(pod, env.busybox, command=["/bin/busybox", "sleep", "300"],
                     resources=pb.LinuxContainerResources(hugepage_limits=limits))
    env.start(cid)
    if os.path.isdir(f"{CG}/hugetlb"):
        assert int(read(v1_file("hugetlb", cid, f"hugetlb.{sizes[0]}.limit_in_bytes"))) == 4 << 20
    else:
        assert not any(os.path.exists(f"{CG}/{h}/crisp/crisp-{cid}/hugetlb.{sizes[0]}.limit_in_bytes")
                       for h in os.listdir(CG))
    update(env, cid, hugepage_limits=[pb.HugepageLimit(page_size=sizes[0], limit=2 << 20)])
    assert env.status(cid).state == pb.CONTAINER_RUNNING
    # a well-formed size this node has no pages of (x86: 2MB and 1GB only)
    other = next(s for s in ("4MB", "16GB", "64KB", "2MB") if s not in sizes)
    d = refused(env, pod, pb.LinuxContainerResources(hugepage_limits=[pb.HugepageLimit(page_size=other)]), other)
    assert other in d


@pytest.mark.skipif(V2, reason="cgroup v1 node only")  # reason: on v2 the unified map is applied
def test_unified_refused_on_v1(env):
    pb = env.pb
    pod = env.pod()
    d = refused(env, pod, pb.LinuxContainerResources(unified={"memory.high": "100000000"}), "unified")
    assert "v1" in d
    # an empty map is no request at all
    cid = env.create(pod, env.busybox, command=["/bin/busybox", "sleep", "300"],
                     resources=pb.LinuxContainerResources(unified={}))
    env.start(cid)
    with pytest.raises(grpc.RpcError) as ei:
        update(env, cid, unified={"pids.max": "10"})
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_values_refused(env):
    pb = env.pb
    mib = 1 << 20
    pod = env.pod()
    cases = [
        ("cpuset 0-", pb.LinuxContainerResources(cpuset_cpus="0-")),
        ("cpuset abc", pb.LinuxContainerResources(cpuset_cpus="abc")),
        ("cpuset mems 1,,2", pb.LinuxContainerResources(cpuset_mems="1,,2")),
        ("hugepage 3MB", pb.LinuxContainerResources(hugepage_limits=[pb.HugepageLimit(page_size="3MB")])),
        ("hugepage 2048KB", pb.LinuxContainerResources(hugepage_limits=[pb.HugepageLimit(page_size="2048KB")])),
        ("hugepage 2XB", pb.LinuxContainerResources(hugepage_limits=[pb.HugepageLimit(page_size="2XB")])),
        ("unified ../x", pb.LinuxContainerResources(unified={"../x": "1"})),
        ("unified cgroup.procs", pb.LinuxContainerResources(unified={"cgroup.procs": "1"})),
        ("unified cgroup.subtree_control", pb.LinuxContainerResources(unified={"cgroup.subtree_control": "+cpu"})),
        ("swap below memory", pb.LinuxContainerResources(memory_limit_in_bytes=64 * mib,
                                                         memory_swap_limit_in_bytes=32 * mib)),
        ("swap without memory", pb.LinuxContainerResources(memory_swap_limit_in_bytes=64 * mib)),
    ]
    if not V2:
        # well-formed, but not cpus this node has: the kernel's EINVAL,
        # after the cgroups were made (they are removed again)
        cases.append(("cpuset 4096", pb.LinuxContainerResources(cpuset_cpus="4096")))
    for where, res in cases:
        refused(env, pod, res, where)
