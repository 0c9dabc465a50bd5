"""The committed generated code is what proto/generate.py writes from the .proto files."""

from __future__ import annotations

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "client" / "hposerve" / "v1"


def _load_generator():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "proto" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path):
    written = _load_generator().generate(tmp_path)
    fresh = {p.name: p.read_bytes() for p in written}
    committed = {p.name: p.read_bytes() for p in COMMITTED.glob("*.py*")}
    assert fresh.keys() == committed.keys(), "run: python proto/generate.py"
    stale = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not stale, f"stale generated files {stale}; run: python proto/generate.py"


def test_stubs_ship_with_the_package():
    for name in ("study_service_pb2", "specs_pb2", "types_pb2"):
        assert (COMMITTED / f"{name}.pyi").exists()
