"""frontd under load: many concurrent CRI clients, a bounded time.

CRISP_LOAD_CLIENTS clients (default 50, under frontd.max_connections 64),
each a thread with its own grpc channel and so its own connection to the
CRI socket, call Version (answered by frontd) and Status (frontd asks execd
and netd over ipc) in a loop for CRISP_LOAD_SECONDS (default 10).  Every
call must succeed with a correct answer; afterwards frontd is the same
process, holds no client connection, the same other fds as before the
load, and its VmRSS is within h2raw.rss_tolerance_kb() of its baseline
after a warm-up (ASan's quarantine bounded, see h2raw.watched_crisp and
test_grpc_robustness.py).

The call rate printed is bounded by the Python clients (grpcio threads
under one GIL on the same cores), not by frontd: tests/bench measures
frontd's latency.
"""

import os
import threading
import time

import grpc
import pytest

import crigen
from h2raw import watched_crisp

CLIENTS = int(os.environ.get("CRISP_LOAD_CLIENTS", "50"))
SECONDS = float(os.environ.get("CRISP_LOAD_SECONDS", "10"))


@pytest.fixture
def front(tmpdir_short, monkeypatch):
    with watched_crisp(tmpdir_short, monkeypatch) as w:
        yield w


def new_channel(sock):
    # A local subchannel pool: otherwise grpcio shares one connection
    # among channels to the same target.
    return grpc.insecure_channel("unix://" + sock,
                                 options=[("grpc.use_local_subchannel_pool", 1)])


class Client(threading.Thread):
    def __init__(self, sock, pb, start, stop_at):
        super().__init__(daemon=True)
        self.chan = new_channel(sock)
        self.rt = crigen.stubs(self.chan)[0]
        self.pb = pb
        self.start_evt = start
        self.stop_at = stop_at
        self.calls = {"Version": 0, "Status": 0}
        self.lat = []
        self.errors = []

    def one(self, i):
        pb = self.pb
        t0 = time.monotonic()
        if i % 2 == 0:
            v = self.rt.Version(pb.VersionRequest(version="v1"), timeout=10)
            if v.runtime_name != "crisp" or v.runtime_api_version != "v1":
                raise AssertionError(f"bad Version answer: {v}")
            name = "Version"
        else:
            st = self.rt.Status(pb.StatusRequest(), timeout=10)
            conds = {c.type: c.status for c in st.status.conditions}
            if conds != {"RuntimeReady": True, "NetworkReady": True}:
                raise AssertionError(f"bad Status answer: {st}")
            name = "Status"
        self.lat.append(time.monotonic() - t0)
        self.calls[name] += 1

    def run(self):
        self.start_evt.wait()
        i = 0
        while time.monotonic() < self.stop_at[0]:
            try:
                self.one(i)
            except (grpc.RpcError, AssertionError) as e:
                self.errors.append(repr(e)[:300])
                if len(self.errors) > 20:
                    return
            i += 1

    def close(self):
        self.chan.close()


def run_load(front, clients, seconds):
    """(calls by method, latencies, errors, most connections frontd held)."""
    pb, _ = crigen.load()
    start = threading.Event()
    stop_at = [float("inf")]
    threads = [Client(front.sock, pb, start, stop_at) for _ in range(clients)]
    try:
        for t in threads:
            t.start()
        stop_at[0] = time.monotonic() + seconds
        start.set()
        peak = 0
        while any(t.is_alive() for t in threads):
            peak = max(peak, front.census()[0])
            time.sleep(0.2)
            if time.monotonic() > stop_at[0] + 30:
                raise AssertionError("clients did not finish 30 s after the end of the load")
    finally:
        stop_at[0] = 0
        for t in threads:
            t.join(timeout=15)
            t.close()
    calls = {"Version": 0, "Status": 0}
    lat, errors = [], []
    for t in threads:
        for k, v in t.calls.items():
            calls[k] += v
        lat += t.lat
        errors += t.errors
    return calls, lat, errors, peak


def pct(sorted_vals, p):
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * p))]


def test_concurrent_clients(front):
    # Warm-up: every client connects and makes a few calls.
    _, _, errors, _ = run_load(front, CLIENTS, min(1.0, SECONDS))
    assert not errors, errors[:5]
    base_fds, base_rss = front.baseline()

    t0 = time.monotonic()
    calls, lat, errors, peak = run_load(front, CLIENTS, SECONDS)
    took = time.monotonic() - t0
    total = sum(calls.values())
    lat.sort()
    delta = front.check()
    print(f"\nload: {CLIENTS} clients, {took:.1f} s: {total} calls "
          f"(Version {calls['Version']}, Status {calls['Status']}), {total / took:.0f} calls/s, "
          f"latency p50 {pct(lat, 0.5) * 1e3:.2f} ms p99 {pct(lat, 0.99) * 1e3:.2f} ms "
          f"max {lat[-1] * 1e3:.2f} ms; frontd held {peak} connections at most; "
          f"fds {base_fds}; VmRSS {base_rss} kB baseline, {delta:+d} kB after "
          f"(tolerance {front.rss_tol_kb} kB)")
    assert not errors, f"{len(errors)} errors, first: {errors[:5]}"
    assert calls["Version"] > 0 and calls["Status"] > 0
    # Each client really had its own connection.
    assert peak >= CLIENTS, f"frontd held at most {peak} connections for {CLIENTS} clients"
