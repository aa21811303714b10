"""The container monitor as its own binary: a running container's monitor
is crisp-monitor (beside the roles), holds no capability, runs with
no_new_privs and a seccomp filter, and still does its whole job under
them: the CRI log (also reopened by path, into a directory it must make
again), attach, the exit record.  And, run by hand, it reaps children
other than the container (it may be a subreaper for an external runtime)
while recording the container's status only."""

import os
import signal
import socket
import subprocess
import time

from conftest import BUILD, proc_status
from test_containers import Env, env, monitor_of, monitors  # noqa: F401  (env: the fixture)

MONITOR = os.path.join(BUILD, "bin", "crisp-monitor")


def sanitized():
    with open(MONITOR, "rb") as f:
        return b"__asan_init" in f.read()


def wait_for(pred, timeout=10, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_monitor_is_confined_crisp_monitor(env):
    pb = env.pb
    pod = env.pod()
    cid = env.create(pod, env.busybox, command=["/bin/sh", "-c",
                     "echo one; while [ ! -e /go ]; do /bin/busybox sleep 0.05; done; echo two;"
                     " while [ ! -e /end ]; do /bin/busybox sleep 0.05; done; echo three; exit 7"])
    env.start(cid)
    mon = monitor_of(cid)

    # the binary: crisp-monitor beside the roles, executed by execd
    assert os.readlink(f"/proc/{mon}/exe") == os.path.realpath(MONITOR)
    # confined right after the exec, before its loop starts
    wait_for(lambda: proc_status(mon)["Seccomp"] == "2", timeout=5, what="the monitor's seccomp filter")
    st = proc_status(mon)
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[k], 16) == 0, (k, st[k])
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    assert st["Uid"].split()[0] == "0"
    if not sanitized():  # a sanitizer build maps its shadow memory
        assert int(st["VmRSS"].split()[0]) < 1024, st["VmRSS"]

    # ReopenContainerLog with no capabilities, into a log directory that
    # is gone: the monitor makes it again (as its root owner) and reopens
    path = env.status(cid).log_path
    logdir = os.path.dirname(path)
    wait_for(lambda: "stdout F one" in read(path), what="first line")
    os.rename(logdir, logdir + ".old")
    env.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid), timeout=10)
    assert os.path.isdir(logdir) and os.path.isfile(path)
    assert os.stat(logdir).st_uid == 0 and (os.stat(logdir).st_mode & 0o777) == 0o755
    env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["/bin/busybox", "touch", "/go"], timeout=10),
                    timeout=20)
    wait_for(lambda: "stdout F two" in read(path), what="second line in the new log")
    assert "one" not in read(path)
    assert "stdout F one" in read(os.path.join(logdir + ".old", os.path.basename(path)))

    # the same after a plain rotation (rename of the file only)
    os.rename(path, path + ".1")
    env.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid), timeout=10)
    env.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["/bin/busybox", "touch", "/end"], timeout=10),
                    timeout=20)
    # the monitor writes the exit record under its filter
    st = env.wait_exit(cid)
    assert st.exit_code == 7
    assert "stdout F three" in read(path) and "two" not in read(path)
    assert cid not in monitors()
    os.rename(path + ".1", os.path.join(logdir + ".old", "rotated"))


def test_monitor_refuses_to_run_by_hand():
    r = subprocess.run([MONITOR], capture_output=True, timeout=10)
    assert r.returncode == 2 and b"crisp-execd" in r.stderr
    r = subprocess.run([MONITOR, "--container-monitor", "x"], capture_output=True, timeout=10)
    assert r.returncode == 2


def test_monitor_reaps_other_children_records_only_the_container(tmp_path):
    """crisp-monitor run by hand with the argv execd gives it: its
    "container" is a child that exits 3 after a while; another child of it
    exits at once (as an orphan adopted by a subreaper would).  The other
    one is reaped (no zombie), the record is the container's."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    log = tmp_path / "logs" / "c" / "0.log"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # becomes the monitor
        try:
            os.close(r)
            ctr = os.fork()
            if ctr == 0:
                os.close(w)
                time.sleep(1.0)
                os._exit(3)
            other = os.fork()
            if other == 0:
                os._exit(0)
            ls = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            ls.bind(str(run / "ctl"))
            ls.listen(4)
            dfd = os.open(str(run), os.O_PATH | os.O_DIRECTORY)
            out_r, out_w = os.pipe()
            os.write(out_w, b"hello\n")
            os.close(out_w)
            os.write(w, f"{ctr} {other}\n".encode())
            os.close(w)
            fds = [ls.fileno(), out_r, dfd]
            for fd in fds:
                os.set_inheritable(fd, True)
            os.execv(MONITOR, ["crisp-monitor", "--container-monitor", "test", str(ctr), str(ls.fileno()),
                               str(out_r), "-1", "-1", "-1", str(dfd), "0", "0", str(log)])
        finally:
            os._exit(127)
    os.close(w)
    try:
        with os.fdopen(r) as f:
            ctr, other = (int(x) for x in f.readline().split())
        # the other child is reaped while the container still runs
        wait_for(lambda: not os.path.exists(f"/proc/{other}"), timeout=5, what="the other child reaped")
        assert os.path.exists(f"/proc/{ctr}")
        assert proc_status(pid)["Seccomp"] == "2"
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        code, ns, sig = read(run / "exit").split()
        assert (int(code), int(sig)) == (3, 0) and int(ns) > 0
        assert not (run / "ctl").exists()
        # no log fd was given: nothing written (the path is for reopening)
        assert not log.exists()
    finally:
        for p in (pid,):
            try:
                os.kill(p, signal.SIGKILL)
                os.waitpid(p, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def test_monitor_tty_attach_stdin_and_resize(env):
    """Under its filter the monitor still serves a tty container: attach
    with stdin (frames on its control socket), a resize (TIOCSWINSZ on the
    pty), the output into the CRI log and to the attached client."""
    pb = env.pb
    pid, pcfg = env.pod()
    cfg = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="tty"), image=pb.ImageSpec(image=env.busybox),
        command=["/bin/sh"], tty=True, stdin=True, log_path="tty/0.log",
        linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD))))
    cid = env.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=cfg, sandbox_config=pcfg),
                                 timeout=60).container_id
    env.created.append(cid)
    env.start(cid)
    mon = monitor_of(cid)
    wait_for(lambda: proc_status(mon)["Seccomp"] == "2", timeout=5, what="the monitor's seccomp filter")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(os.path.join(env.c.runroot, "containers", cid, "ctl"))
        s.send(b"a")
        time.sleep(0.2)
        s.send(b"\x04" + b'{"Width":123,"Height":45}')
        s.send(b"\x00" + b"busybox stty size; echo done-$((6*7))\n")
        got = b""
        s.settimeout(10)
        while b"done-42" not in got:
            fr = s.recv(70000)
            assert fr, f"EOF; got {got!r}"
            if fr[0] == 1:
                got += fr[1:]
        assert b"45 123" in got
        s.send(b"\x00" + b"exit 5\n")
        while True:  # the status frame, then EOF
            fr = s.recv(70000)
            if not fr or fr[0] == 3:
                break
        assert fr and b'"message":"5"' in fr
    finally:
        s.close()
    assert env.wait_exit(cid).exit_code == 5
    log = read(env.status(cid).log_path)
    assert "stdout F 45 123" in log.replace("\r", "") and "done-42" in log
    assert cid not in monitors()
