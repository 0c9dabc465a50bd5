"""Generated protobuf and gRPC code for the hposerve.v1 API. Do not edit."""
