"""Every CRI v1 RPC answers through the real socket: a real answer, or
UNIMPLEMENTED with a message naming the missing backend -- never a fake OK --
and a malformed request is INVALID_ARGUMENT whether or not its backend
exists yet."""

import grpc
import pytest

ID = "0123456789abcdef" * 4

# Methods that answer for real today (a real answer, or a real error such
# as NOT_FOUND for the made-up ids below).
# What crisp deliberately does not implement (containerd 1.6 does not either).
NOT_IMPLEMENTED = {"CheckpointContainer", "ListMetricDescriptors", "ListPodSandboxMetrics"}
# Answers a real backend gives these minimal requests: unknown ids, and an
# image pull with no way out of this machine (or no signature policy file).
REAL_ERRORS = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS,
               grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED}


def minimal_requests(pb):
    meta = pb.PodSandboxMetadata(name="p", namespace="default", uid="u1", attempt=0)
    sandbox = pb.PodSandboxConfig(metadata=meta, log_directory="/var/log/pods/default_p_u1")
    cmeta = pb.ContainerMetadata(name="c", attempt=0)
    image = pb.ImageSpec(image="docker.io/library/busybox:latest")
    return {
        "RunPodSandbox": pb.RunPodSandboxRequest(config=sandbox),
        "StopPodSandbox": pb.StopPodSandboxRequest(pod_sandbox_id=ID),
        "RemovePodSandbox": pb.RemovePodSandboxRequest(pod_sandbox_id=ID),
        "PodSandboxStatus": pb.PodSandboxStatusRequest(pod_sandbox_id=ID),
        "PodSandboxStats": pb.PodSandboxStatsRequest(pod_sandbox_id=ID),
        "CreateContainer": pb.CreateContainerRequest(
            pod_sandbox_id=ID, sandbox_config=sandbox,
            config=pb.ContainerConfig(metadata=cmeta, image=image, log_path="c/0.log")),
        "StartContainer": pb.StartContainerRequest(container_id=ID),
        "StopContainer": pb.StopContainerRequest(container_id=ID, timeout=1),
        "RemoveContainer": pb.RemoveContainerRequest(container_id=ID),
        "ContainerStatus": pb.ContainerStatusRequest(container_id=ID),
        "UpdateContainerResources": pb.UpdateContainerResourcesRequest(container_id=ID),
        "ReopenContainerLog": pb.ReopenContainerLogRequest(container_id=ID),
        "ExecSync": pb.ExecSyncRequest(container_id=ID, cmd=["true"], timeout=1),
        "Exec": pb.ExecRequest(container_id=ID, cmd=["sh"], stdout=True),
        "Attach": pb.AttachRequest(container_id=ID, stdout=True),
        "PortForward": pb.PortForwardRequest(pod_sandbox_id=ID, port=[80]),
        "ContainerStats": pb.ContainerStatsRequest(container_id=ID),
        "CheckpointContainer": pb.CheckpointContainerRequest(container_id=ID, location="/tmp/cp.tar"),
        "PullImage": pb.PullImageRequest(image=image),
        "ImageStatus": pb.ImageStatusRequest(image=image),
        "RemoveImage": pb.RemoveImageRequest(image=image),
    }


def all_methods(pb):
    for svc in ("RuntimeService", "ImageService"):
        sd = pb.DESCRIPTOR.services_by_name[svc]
        for m in sd.methods:
            yield svc, m


def call(crisp, pb, svc, m, req):
    stub = crisp.runtime() if svc == "RuntimeService" else crisp.image()
    fn = getattr(stub, m.name)
    if m.name == "GetContainerEvents":
        # A live stream: it stays open until the client goes away.
        it = fn(req)
        it.cancel()
        return None
    return fn(req, timeout=5)


def test_every_rpc_answers(crisp, cri):
    pb, _ = cri
    reqs = minimal_requests(pb)
    seen = 0
    for svc, m in all_methods(pb):
        req = reqs.get(m.name) or getattr(pb, m.input_type.name)()
        seen += 1
        if m.name not in NOT_IMPLEMENTED:
            try:
                call(crisp, pb, svc, m, req)
            except grpc.RpcError as e:
                assert e.code() in REAL_ERRORS, (m.name, e.code(), e.details())
                assert e.details(), m.name
            continue
        with pytest.raises(grpc.RpcError) as e:
            call(crisp, pb, svc, m, req)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, (m.name, e.value.code(), e.value.details())
        assert m.name in e.value.details(), (m.name, e.value.details())
    assert seen == 33
    # RunPodSandbox made a real pod: remove it like kubelet would.
    for p in crisp.runtime().ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items:
        crisp.runtime().RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=60)


def test_malformed_requests_are_invalid_argument(crisp, cri):
    pb, _ = cri
    bad = {
        "StopPodSandbox": pb.StopPodSandboxRequest(pod_sandbox_id="not-an-id!"),
        "RemovePodSandbox": pb.RemovePodSandboxRequest(),
        "ContainerStatus": pb.ContainerStatusRequest(container_id="ABCDEF"),
        "ExecSync": pb.ExecSyncRequest(container_id=ID, cmd=[]),
        "RunPodSandbox": pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="p", namespace="Not_A_Label", uid="u"))),
        "PullImage": pb.PullImageRequest(image=pb.ImageSpec(image="has space")),
        "ListContainers": pb.ListContainersRequest(filter=pb.ContainerFilter(
            state=pb.ContainerStateValue(state=42))),
    }
    for svc, m in all_methods(pb):
        if m.name not in bad:
            continue
        with pytest.raises(grpc.RpcError) as e:
            call(crisp, pb, svc, m, bad[m.name])
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (m.name, e.value.code(), e.value.details())
        assert e.value.details(), m.name
