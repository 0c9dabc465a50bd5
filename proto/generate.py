"""Generates the Python protobuf and gRPC code (with .pyi stubs) for hposerve.v1.

Run from anywhere: ``python proto/generate.py``. The output goes to
``client/hposerve/v1/``, which is committed; ``tests/test_proto.py`` fails when it is stale.
Pass ``--out DIR`` to write elsewhere (the staleness test does).
"""

from __future__ import annotations

import argparse
import importlib.resources
import pathlib
import sys

from grpc_tools import protoc

PROTO_ROOT = pathlib.Path(__file__).resolve().parent
DEFAULT_OUT = PROTO_ROOT.parent / "client"
PACKAGE = pathlib.Path("hposerve") / "v1"
INIT = '"""Generated protobuf and gRPC code for the hposerve.v1 API. Do not edit."""\n'


def generate(out: pathlib.Path) -> list[pathlib.Path]:
    """Writes the generated package under ``out`` and returns the files written."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    (out / PACKAGE).mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (out / PACKAGE / "__init__.py").write_text(INIT)
    return sorted((out / PACKAGE).glob("*.py*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    for path in generate(parser.parse_args().out):
        print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
