"""Container cycles leave nothing behind: 200 rounds of CreateContainer,
StartContainer, StopContainer and RemoveContainer in one pod (the container
counterpart of test_pods.py's pod create/remove cycles), then the host is
as it was before the first container: nothing listed but the pod, no file
under crisp's root or runroot, no mount but the pod's, no container cgroup,
no monitor or other process, the same roles (none restarted), crispd's and
every role's open fds back to where a short warm-up left them, and execd's
and crispd's resident memory no higher than a small slack above it."""

import os
import time

import conftest
from conftest import child_procs
from test_policy import fd_count, make_env, teardown_env

CYCLES = 200
WARMUP = 5
FD_SLACK = 2
RSS_SLACK_KB = 8192  # 40 KiB kept a cycle would exceed it (execd allocates ~1.4 MiB a cycle)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(ln.split()[1] for ln in f if ln.startswith("VmRSS:")))


def test_200_container_cycles_leave_nothing(crisp_factory, regconf, registry, cri, tmpdir_short, monkeypatch):
    pb, _ = cri
    # ASan keeps freed memory in a quarantine (256 MiB by default) that
    # would grow execd's RSS by what each cycle frees; with a small one RSS
    # shows what stays allocated (LeakSanitizer only sees unreachable
    # memory, at exit).
    monkeypatch.setitem(conftest.SAN_ENV, "ASAN_OPTIONS",
                        conftest.SAN_ENV["ASAN_OPTIONS"] + ":quarantine_size_mb=1:thread_local_quarantine_size_kb=64")
    e = make_env(crisp_factory, regconf, registry, pb, tmpdir_short, "crispleak0", "10.249.20.0/24")
    e.c.start()
    try:
        e.pull_busybox()
        pod = e.run_pod("leak", "web")
        base = e.snapshot()
        # Nothing under crisp's root or runroot is mounted but for the pod
        # (its namespace pins, its /dev/shm, its netns) and netd's own
        # mount of the netns directory.
        netns_dir = os.path.join(e.c.runroot, "netns")
        assert all(pod[0] in m or m == netns_dir for m in base["mounts"]), base["mounts"]

        def cycle(i):
            # Three kinds of container: one that has exited by the time it
            # is stopped, one that exits on SIGTERM, one that StopContainer
            # kills outright.
            kind = i % 4
            if kind == 1:
                cmd, stop_timeout = ["/bin/sh", "-c", "trap 'exit 0' TERM; /bin/busybox sleep 30 & wait"], 2
            elif kind == 3:
                cmd, stop_timeout = ["/bin/busybox", "sleep", "30"], 0
            else:
                cmd, stop_timeout = ["/bin/sh", "-c", "exit 0"], 10
            cid = e.create(pod, e.ctr_config("cycle", attempt=i, command=cmd, log_path="cycle.log"))
            e.start(cid)
            if cmd[-1] == "exit 0":
                e.wait_exit(cid)
            e.stop(cid, timeout=stop_timeout)
            st = e.ctr_status(cid)
            assert st.state == pb.CONTAINER_EXITED, st
            e.remove(cid)
            return kind

        spent = [0.0] * 4
        for i in range(WARMUP):
            cycle(i)
        roles = e.c.roles()
        execd = roles["crisp-execd"]
        pids = dict(roles, crispd=e.c.proc.pid)
        fds = {k: fd_count(p) for k, p in pids.items()}
        rss = {k: rss_kb(pids[k]) for k in ("crisp-execd", "crispd")}
        execd_children = child_procs(execd)

        t0 = time.monotonic()
        for i in range(WARMUP, WARMUP + CYCLES):
            t = time.monotonic()
            spent[cycle(i)] += time.monotonic() - t
        elapsed = time.monotonic() - t0
        print(f"\n{CYCLES} container cycles: {elapsed:.1f} s ({elapsed / CYCLES * 1000:.0f} ms each; by kind, ms: "
              f"{', '.join(f'{x / (CYCLES / 4) * 1000:.0f}' for x in spent)})")

        assert e.c.roles() == roles, "a role restarted"
        assert child_procs(execd) == execd_children
        for k, p in pids.items():
            n = fd_count(p)
            assert n <= fds[k] + FD_SLACK, (k, fds[k], n, sorted(os.readlink(f"/proc/{p}/fd/{x}")
                                                                  for x in os.listdir(f"/proc/{p}/fd")))
        for k, was in rss.items():
            assert rss_kb(pids[k]) <= was + RSS_SLACK_KB, (k, was, rss_kb(pids[k]))
        print(f"fds after warm-up {fds}, now {({k: fd_count(p) for k, p in pids.items()})}; RSS kB after "
              f"warm-up {rss}, now {({k: rss_kb(pids[k]) for k in rss})}")
        e.assert_unchanged(base)
        # and the pod is still whole
        assert e.pod_status(pod[0]).state == pb.SANDBOX_READY
    finally:
        teardown_env(e)
