"""Container health check: exit 0 iff hposerve's gRPC health service says SERVING.

Used by the Dockerfile's HEALTHCHECK (and so by compose). It asks the local server on
HPOSERVE_PORT (default 50051), so keep that variable in step with `serve --port`.
Kubernetes does not need this: its native `grpc` probes call the same health service.
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE = "hposerve.v1.StudyService"


def main() -> int:
    target = f"127.0.0.1:{os.environ.get('HPOSERVE_PORT', '50051')}"
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=3
            )
        except grpc.RpcError as error:
            print(f"unhealthy: {target}: {error.code().name}", file=sys.stderr)
            return 1
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        print(f"unhealthy: {target}: {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
