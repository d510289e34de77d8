"""An independent gRPC client (Python grpcio) for Strongroom.

It knows the appliance only from its .proto files, which it compiles itself,
and from server reflection.
Usage: grpcio_client.py ADDR CACERT PROTO_DIR CLIENT_CERT CLIENT_KEY.
Exits non-zero with a message on the first thing that does not hold.
"""

import os
import sys
import tempfile

import grpc
import grpc_tools
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_tools import protoc


def compile_protos(proto_dir: str) -> str:
    out = tempfile.mkdtemp(prefix="strongroom-grpcio-")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = ["strongroom/v1/ca.proto", "strongroom/v1/sys.proto"]
    rc = protoc.main(
        ["protoc", f"-I{proto_dir}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}"]
        + files
    )
    if rc != 0:
        sys.exit(f"protoc failed on {files}")
    sys.path.insert(0, out)
    return out


def main() -> None:
    addr, cacert, proto_dir, client_cert, client_key = sys.argv[1:6]
    compile_protos(proto_dir)
    from strongroom.v1 import ca_pb2, ca_pb2_grpc, sys_pb2, sys_pb2_grpc

    target = addr.removeprefix("https://")
    with open(cacert, "rb") as ca, open(client_cert, "rb") as cert, open(client_key, "rb") as key:
        # Mutual TLS with the dev admin's certificate: the appliance's
        # policies grant nothing to anonymous callers.
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.read(), private_key=key.read(), certificate_chain=cert.read()
        )
    channel = grpc.secure_channel(target, credentials)

    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert health.status == health_pb2.HealthCheckResponse.SERVING, health

    status = sys_pb2_grpc.SysStub(channel).Status(sys_pb2.StatusRequest())
    assert status.hsm_status == "ready", status

    ca = ca_pb2_grpc.CaStub(channel)
    issued = ca.IssueWithKey(
        ca_pb2.IssueWithKeyRequest(profile="server", common_name="py.test", dns_names=["py.test"])
    )
    assert "BEGIN CERTIFICATE" in issued.certificate.pem, issued
    assert "BEGIN PRIVATE KEY" in issued.private_key_pem
    assert issued.certificate.status == ca_pb2.CERTIFICATE_STATUS_ISSUED
    assert "DNS:py.test" in issued.certificate.sans, issued.certificate.sans

    fetched = ca.GetCertificate(ca_pb2.GetCertificateRequest(serial=issued.certificate.serial))
    assert fetched.pem == issued.certificate.pem

    try:
        ca.IssueWithKey(
            ca_pb2.IssueWithKeyRequest(profile="server", common_name="evil.example.com", dns_names=["evil.example.com"])
        )
        sys.exit("a disallowed name was issued")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        assert "evil.example.com" in e.details(), e.details()

    reflection = ProtoReflectionDescriptorDatabase(channel)
    services = set(reflection.get_services())
    for name in ["strongroom.v1.Ca", "strongroom.v1.Sys", "grpc.health.v1.Health"]:
        assert name in services, services
    described = reflection.FindFileContainingSymbol("strongroom.v1.Ca")
    assert described.package == "strongroom.v1", described.name

    print("grpcio client: ok")


if __name__ == "__main__":
    main()
