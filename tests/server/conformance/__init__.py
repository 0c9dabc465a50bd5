"""One suite of service cases, run against the domain in-process and through gRPC."""
