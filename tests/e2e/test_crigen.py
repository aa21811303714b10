"""The generated CRI stubs load and carry the CRI v1 (Kubernetes 1.26) wire
contract: package, rpc set and streaming, and a sample of field numbers,
enum values and encoded bytes that kubelet/crictl depend on."""

import os
import shutil

import grpc
from google.protobuf import descriptor_pb2

import crigen
from crigen import cri  # noqa: F401  (session fixture)

RUNTIME_RPCS_1_26 = {
    "Version",
    "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus",
    "ListPodSandbox",
    "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
    "ListContainers", "ContainerStatus", "UpdateContainerResources",
    "ReopenContainerLog",
    "ExecSync", "Exec", "Attach", "PortForward",
    "ContainerStats", "ListContainerStats", "PodSandboxStats", "ListPodSandboxStats",
    "UpdateRuntimeConfig", "Status", "CheckpointContainer",
    "GetContainerEvents", "ListMetricDescriptors", "ListPodSandboxMetrics",
}
IMAGE_RPCS = {"ListImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"}


def file_proto(cri):
    fp = descriptor_pb2.FileDescriptorProto()
    cri.pb2.DESCRIPTOR.CopyToProto(fp)
    return fp


def service(cri, name):
    return {m.name: m for m in next(s for s in file_proto(cri).service if s.name == name).method}


def fields(cri, msg):
    d = cri.pb2.DESCRIPTOR.message_types_by_name[msg]
    return {f.number: f for f in d.fields}


def test_package(cri):
    assert cri.pb2.DESCRIPTOR.package == "runtime.v1"
    assert cri.pb2.DESCRIPTOR.syntax == "proto3"
    assert not cri.pb2.DESCRIPTOR.dependencies     # no gogo or other imports


def test_runtime_service_rpcs(cri):
    rpcs = service(cri, "RuntimeService")
    assert len(rpcs) == 28
    assert set(rpcs) == RUNTIME_RPCS_1_26


def test_image_service_rpcs(cri):
    rpcs = service(cri, "ImageService")
    assert set(rpcs) == IMAGE_RPCS


def test_streaming(cri):
    for svc in ("RuntimeService", "ImageService"):
        for name, m in service(cri, svc).items():
            assert not m.client_streaming, name
            assert m.server_streaming == (name == "GetContainerEvents"), name
    ev = service(cri, "RuntimeService")["GetContainerEvents"]
    assert ev.input_type == ".runtime.v1.GetEventsRequest"
    assert ev.output_type == ".runtime.v1.ContainerEventResponse"


def test_grpc_stubs(cri):
    chan = grpc.insecure_channel("unix:///nonexistent/crisp-test.sock")  # lazy
    try:
        rt = cri.grpc.RuntimeServiceStub(chan)
        im = cri.grpc.ImageServiceStub(chan)
        for name in RUNTIME_RPCS_1_26:
            kind = "UnaryStream" if name == "GetContainerEvents" else "UnaryUnary"
            assert kind in type(getattr(rt, name)).__name__, name
        for name in IMAGE_RPCS:
            assert "UnaryUnary" in type(getattr(im, name)).__name__, name
        assert hasattr(cri.grpc, "RuntimeServiceServicer")
        assert hasattr(cri.grpc, "add_ImageServiceServicer_to_server")
    finally:
        chan.close()


def test_sizes(cri):
    # Totals of the 1.26 api.proto: catch a dropped or added message/field.
    fp = file_proto(cri)

    def walk(ms):
        for m in ms:
            yield m
            yield from walk(m.nested_type)
    allm = list(walk(fp.message_type))
    assert len(fp.message_type) == 142
    assert sum(m.options.map_entry for m in allm) == 28
    assert sum(len(m.field) for m in allm) == 453
    assert len(fp.enum_type) == 7 and sum(len(m.enum_type) for m in allm) == 1


def test_field_numbers(cri):
    T = descriptor_pb2.FieldDescriptorProto
    v = fields(cri, "VersionRequest")
    assert set(v) == {1} and v[1].name == "version" and v[1].type == T.TYPE_STRING
    assert fields(cri, "PodSandboxConfig")[8].name == "linux"
    cc = fields(cri, "ContainerConfig")
    assert (cc[15].name, cc[16].name, cc[11].name) == ("linux", "windows", "log_path")
    sc = fields(cri, "LinuxContainerSecurityContext")
    assert (sc[12].name, sc[15].name, sc[16].name) == ("run_as_group", "seccomp", "apparmor")
    assert set(fields(cri, "Namespace")) == {2}     # field 1 unused upstream
    pf = fields(cri, "PortForwardRequest")[2]
    assert pf.name == "port" and pf.label == T.LABEL_REPEATED and pf.type == T.TYPE_INT32
    ev = fields(cri, "ContainerEventResponse")
    assert ev[4].name == "pod_sandbox_status" and ev[5].name == "containers_statuses"
    assert fields(cri, "Metric")[5].message_type.name == "UInt64Value"
    un = fields(cri, "LinuxContainerResources")[9]
    assert un.name == "unified" and un.message_type.GetOptions().map_entry


def test_enum_values(cri):
    p = cri.pb2
    assert (p.TCP, p.UDP, p.SCTP) == (0, 1, 2)
    assert (p.POD, p.CONTAINER, p.NODE, p.TARGET) == (0, 1, 2, 3)
    assert (p.SANDBOX_READY, p.SANDBOX_NOTREADY) == (0, 1)
    assert (p.CONTAINER_CREATED, p.CONTAINER_RUNNING, p.CONTAINER_EXITED,
            p.CONTAINER_UNKNOWN) == (0, 1, 2, 3)
    assert p.CONTAINER_DELETED_EVENT == 3 and p.GAUGE == 1
    assert p.PROPAGATION_BIDIRECTIONAL == 2
    assert p.SecurityProfile.Localhost == 2


def test_wire_bytes(cri):
    # Hand-encoded, independent of the generated code.
    p = cri.pb2
    assert p.VersionRequest(version="0.1.0").SerializeToString() == b"\x0a\x050.1.0"
    req = p.RunPodSandboxRequest(
        config=p.PodSandboxConfig(metadata=p.PodSandboxMetadata(
            name="n", uid="u", namespace="ns", attempt=1)),
        runtime_handler="h")
    want = (b"\x0a\x0e" b"\x0a\x0c" b"\x0a\x01n" b"\x12\x01u" b"\x1a\x02ns" b"\x20\x01"
            b"\x12\x01h")
    assert req.SerializeToString() == want
    back = p.RunPodSandboxRequest.FromString(want)
    assert back.config.metadata.namespace == "ns" and back.runtime_handler == "h"


def test_regenerates_when_proto_newer(tmp_path):
    proto = tmp_path / "cri.proto"
    out = tmp_path / "gen"
    shutil.copy(crigen.PROTO, proto)
    assert crigen.is_stale(str(proto), str(out))
    assert crigen.ensure(str(proto), str(out))
    assert not crigen.is_stale(str(proto), str(out))
    assert not crigen.ensure(str(proto), str(out))
    for m in crigen.MODULES:
        assert (out / (m + ".py")).is_file()
    # .proto edited after generation: outputs older than it.
    st = os.stat(proto)
    for m in crigen.MODULES:
        os.utime(out / (m + ".py"), ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))
    assert crigen.is_stale(str(proto), str(out))
    assert crigen.ensure(str(proto), str(out))
    assert not crigen.is_stale(str(proto), str(out))
    # A .proto stamped in the future (clock skew) must not stay stale.
    os.utime(proto, ns=(st.st_atime_ns, st.st_mtime_ns + 3600 * 10**9))
    assert crigen.ensure(str(proto), str(out))
    assert not crigen.is_stale(str(proto), str(out))
    # Same mtimes but different text: the stamp catches it.
    with open(proto, "a") as f:
        f.write("// edited\n")
    newer = os.stat(out / "cri_pb2.py").st_mtime_ns
    os.utime(proto, ns=(newer, newer))
    assert crigen.is_stale(str(proto), str(out))
