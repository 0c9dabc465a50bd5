"""Checks of deploy/: parse every file, then run the commands they run, outside a container.

No Docker engine is needed. The Dockerfile, compose.yaml and the Kubernetes manifests are
parsed for structure (images, port 50051 everywhere, gRPC probes, non-root, the Secret), and
each container's command line (image ENTRYPOINT + CMD/command/args, image ENV + manifest env)
is run here as a subprocess with the port, the data directory and the storage URL swapped for
local ones: it must reach SERVING on the gRPC health service and exit 0 on SIGTERM.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import support
import yaml
from support import SERVICE, ServerProcess, free_port, stop_gracefully, wait_serving

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"

PORT = 50051
DATA_DIR = "/data"
IMAGE = "hposerve:0.1.0"
POSTGRES_URL = os.environ.get(
    "HPOSERVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# --- parsing -------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments) pairs; continuations joined, comments gone."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment and empty lines, even inside a continuation
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    """A JSON-array (exec form) instruction argument; the shell form would need /bin/sh."""
    value = json.loads(arguments)
    assert isinstance(value, list), arguments
    assert all(isinstance(item, str) for item in value), arguments
    return value


def one(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [arguments for k, arguments in stage if k == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {found}"
    return found[0]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in final_stage():
        if keyword == "ENV":
            for token in shlex.split(arguments):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def healthcheck_command() -> list[str]:
    arguments = one(final_stage(), "HEALTHCHECK")
    _, _, command = arguments.partition(" CMD ")
    return exec_form(command.strip())


def copies() -> list[tuple[list[str], str]]:
    """COPY instructions from the build context (not --from=stage) as (sources, destination)."""
    result = []
    for keyword, arguments in dockerfile():
        words = arguments.split()
        if keyword == "COPY" and not any(word.startswith("--from=") for word in words):
            paths = [word for word in words if not word.startswith("--")]
            result.append((paths[:-1], paths[-1]))
    return result


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def compose() -> dict[str, Any]:
    (document,) = yaml_documents(DEPLOY / "compose.yaml")
    return document


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml_documents(path)]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def workloads() -> list[dict[str, Any]]:
    return [o for o in k8s_objects() if o["kind"] in ("Deployment", "StatefulSet")]


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def secret_value(name: str, key: str) -> str:
    return k8s_object("Secret", name)["stringData"][key]


def container_env(container: dict[str, Any]) -> dict[str, str]:
    env = {}
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = secret_value(ref["name"], ref["key"])
    return env


# --- the container command lines -----------------------------------------------------------


@dataclass
class Launch:
    """A container's process: argv as inside the container (argv[0] == "hposerve"), env."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def setting(self, flag: str, variable: str) -> str | None:
        """The value of ``--flag`` if given, else of the environment variable (as the CLI)."""
        for i, word in enumerate(self.argv):
            if word == flag:
                return self.argv[i + 1]
            if word.startswith(flag + "="):
                return word.partition("=")[2]
        return self.env.get(variable)


def entrypoint() -> list[str]:
    return exec_form(one(final_stage(), "ENTRYPOINT"))


def launches() -> dict[str, Launch]:
    """Every container that runs hposerve, by name. Manifests without a command of their own
    run the image's ENTRYPOINT with their args; their env is laid over the image's ENV."""
    service = compose()["services"]["hposerve"]
    result = {
        "dockerfile": Launch(entrypoint() + exec_form(one(final_stage(), "CMD")), image_env()),
        "compose": Launch(
            entrypoint() + service["command"],
            image_env() | {k: str(v) for k, v in service.get("environment", {}).items()},
        ),
    }
    for workload in workloads():
        container = only_container(workload)
        assert "command" not in container, "keep the image's ENTRYPOINT"
        result[workload["metadata"]["name"]] = Launch(
            entrypoint() + container["args"], image_env() | container_env(container)
        )
    return result


EMBEDDED = ["dockerfile", "hposerve-embedded"]
ON_POSTGRES = ["compose", "hposerve"]


# --- static checks -------------------------------------------------------------------------


def test_dockerfile_structure() -> None:
    instructions = dockerfile()
    froms = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert all(f.split()[0] == "python:3.11-slim" for f in froms), froms
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    torch = next(i for i, run in enumerate(runs) if "torch==" in run)
    package = next(i for i, run in enumerate(runs) if '".[server,postgres,redis]"' in run)
    # CPU-only torch must be in place before the package install resolves torch from PyPI.
    assert torch < package
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]

    stage = final_stage()
    user = one(stage, "USER").split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root user, for runAsNonRoot"
    assert one(stage, "VOLUME") in (DATA_DIR, json.dumps([DATA_DIR]))
    assert one(stage, "EXPOSE") == str(PORT)
    assert entrypoint() == ["hposerve"]
    cmd = Launch(entrypoint() + exec_form(one(stage, "CMD")), image_env())
    assert cmd.argv[1] == "serve"
    assert cmd.setting("--host", "") == "0.0.0.0"
    assert cmd.setting("--port", "HPOSERVE_PORT") == str(PORT)
    assert cmd.setting("--data-dir", "HPOSERVE_DATA_DIR") == DATA_DIR
    assert image_env()["HPOSERVE_PORT"] == str(PORT)
    assert image_env()["HPOSERVE_DATA_DIR"] == DATA_DIR
    assert healthcheck_command()[0] == "python"


def test_dockerfile_copies_exist() -> None:
    for sources, destination in copies():
        for source in sources:
            # A glob may match nothing (optional files), but a COPY must copy something.
            assert any(REPO.glob(source)) or "[" in source, f"COPY {source} {destination}"
        assert any(any(REPO.glob(source)) for source in sources), sources
    script = healthcheck_command()[1]
    assert any(destination == script for _, destination in copies()), script


def test_compose_structure() -> None:
    services = compose()["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"]

    hposerve = services["hposerve"]
    assert hposerve["image"] == IMAGE
    build = hposerve["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert hposerve["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert hposerve["ports"] == [f"{PORT}:{PORT}"]
    launch = launches()["compose"]
    assert launch.setting("--port", "HPOSERVE_PORT") == str(PORT)
    # The storage URL must name the compose database, with its user and password.
    url = urlsplit(launch.setting("--storage", "HPOSERVE_STORAGE") or "")
    env = postgres["environment"]
    assert url.scheme == "postgresql+psycopg"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert (url.username, url.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
    assert url.path == "/" + env["POSTGRES_DB"]
    assert url.query == "hposerve_backend=journal", "replicas share hposerve's journal"


def test_kubernetes_objects_are_well_formed() -> None:
    objects = k8s_objects()
    assert {o["kind"] for o in objects} >= {"Deployment", "StatefulSet", "Service", "Secret"}
    for o in objects:
        assert o["apiVersion"] and o["metadata"]["name"], o
    for workload in workloads():
        spec = workload["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", ["hposerve", "hposerve-embedded"])
def test_kubernetes_workload(name: str) -> None:
    kind = "Deployment" if name == "hposerve" else "StatefulSet"
    workload = k8s_object(kind, name)
    pod = workload["spec"]["template"]["spec"]
    container = only_container(workload)
    assert container["image"] == IMAGE
    assert container["ports"] == [{"name": "grpc", "containerPort": PORT}]
    assert launches()[name].setting("--port", "HPOSERVE_PORT") == str(PORT)
    assert {"readinessProbe", "livenessProbe"} <= container.keys()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in container:
            handlers = container[probe].keys() & {"grpc", "httpGet", "tcpSocket", "exec"}
            assert handlers == {"grpc"}, probe
            assert container[probe]["grpc"]["port"] == PORT
            assert container[probe]["grpc"].get("service", SERVICE) in ("", SERVICE)
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(one(final_stage(), "USER").split(":")[0])
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # The grace period must cover the preStop sleep and a graceful drain.
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
    sleep = int(pre_stop["command"][1]) if pre_stop else 0
    assert pod["terminationGracePeriodSeconds"] >= sleep + 10
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    assert DATA_DIR in mounts, "the image's VOLUME; writable although the root fs is read-only"


def test_deployment_runs_replicas_on_postgres_from_the_secret() -> None:
    deployment = k8s_object("Deployment", "hposerve")
    assert deployment["spec"]["replicas"] == 3
    (storage,) = [v for v in only_container(deployment)["env"] if v["name"] == "HPOSERVE_STORAGE"]
    ref = storage["valueFrom"]["secretKeyRef"]
    url = urlsplit(secret_value(ref["name"], ref["key"]))
    assert (url.scheme, url.query) == ("postgresql+psycopg", "hposerve_backend=journal")


def test_statefulset_is_one_embedded_replica_on_a_volume() -> None:
    statefulset = k8s_object("StatefulSet", "hposerve-embedded")
    spec = statefulset["spec"]
    assert spec["replicas"] == 1, "the embedded storage locks its data dir: one replica only"
    governing = k8s_object("Service", spec["serviceName"])
    assert governing["spec"]["clusterIP"] == "None"
    launch = launches()["hposerve-embedded"]
    assert launch.setting("--storage", "HPOSERVE_STORAGE") is None
    data_dir = launch.setting("--data-dir", "HPOSERVE_DATA_DIR")
    mounts = {m["mountPath"]: m["name"] for m in only_container(statefulset)["volumeMounts"]}
    claims = {claim["metadata"]["name"] for claim in spec["volumeClaimTemplates"]}
    assert mounts[data_dir] in claims


def test_services_select_their_own_pods() -> None:
    services = [o for o in k8s_objects() if o["kind"] == "Service"]
    assert k8s_object("Service", "hposerve-headless")["spec"]["clusterIP"] == "None"
    assert k8s_object("Service", "hposerve")["spec"].get("clusterIP") != "None"
    for service in services:
        spec = service["spec"]
        assert [(p["port"], p["targetPort"]) for p in spec["ports"]] == [(PORT, "grpc")]
        selected = [
            w["metadata"]["name"]
            for w in workloads()
            if spec["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        # A Service over both workloads would mix two storages behind one name.
        assert len(selected) == 1, (service["metadata"]["name"], selected)


def test_only_known_environment_variables() -> None:
    """Every HPOSERVE_* variable set in deploy/ is one the CLI reads (catches typos)."""
    cli = (REPO / "server/hposerve/server/_cli.py").read_text()
    known = set(re.findall(r"HPOSERVE_[A-Z_]+", cli))
    assert {"HPOSERVE_STORAGE", "HPOSERVE_DATA_DIR", "HPOSERVE_PORT"} <= known
    for name, launch in launches().items():
        assert {k for k in launch.env if k.startswith("HPOSERVE_")} <= known, name


def test_every_launch_beyond_loopback_turns_auth_on() -> None:
    """A server bound beyond loopback without auth refuses to start: each launch has auth."""
    for name, launch in launches().items():
        assert launch.setting("--host", "HPOSERVE_HOST") == "0.0.0.0", name
        assert "--auth" in launch.argv or launch.env.get("HPOSERVE_AUTH") == "1", name
        assert "--insecure" not in launch.argv, name


def test_readme_names_every_file() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.name != "README.md" and "__pycache__" not in path.parts:
            assert path.relative_to(DEPLOY).as_posix() in readme, path


# --- running the commands ------------------------------------------------------------------


def hposerve_command() -> list[str]:
    """What runs ``hposerve`` here: ``python -m hposerve.server``, else the console script."""
    if importlib.util.find_spec("hposerve.server.__main__") is not None:
        return [sys.executable, "-m", "hposerve.server"]
    script = Path(sys.executable).with_name("hposerve")
    found = str(script) if script.exists() else shutil.which("hposerve")
    if found is None:
        pytest.fail("neither `python -m hposerve.server` nor an `hposerve` script is installed")
    return [found]


def localize(
    launch: Launch, *, port: int, data_dir: Path, storage: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """The launch's argv and environment for this machine: our port, data dir and storage."""
    replacements = {"--port": str(port), "--data-dir": str(data_dir), "--metrics-port": "0"}
    env_replacements = {
        "HPOSERVE_PORT": str(port),
        "HPOSERVE_DATA_DIR": str(data_dir),
        "HPOSERVE_METRICS_PORT": "0",  # a free port: a fixed one may be taken here
    }
    if storage is not None:
        assert launch.setting("--storage", "HPOSERVE_STORAGE"), "this launch sets no storage"
        replacements["--storage"] = storage
        env_replacements["HPOSERVE_STORAGE"] = storage
    argv = hposerve_command()
    words = iter(launch.argv[1:])
    for word in words:
        flag, equals, _ = word.partition("=")
        if flag not in replacements:
            argv.append(word)
        elif equals:  # --flag=value
            argv.append(f"{flag}={replacements[flag]}")
        else:  # --flag value
            next(words)
            argv += [flag, replacements[flag]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPOSERVE_")}
    env |= {k: env_replacements.get(k, v) for k, v in launch.env.items() if k != "PATH"}
    env["PYTHONUNBUFFERED"] = "1"
    return argv, env


@pytest.fixture
def start(spawn: Any) -> Any:
    """Starts a localized launch as a server process."""

    def _start(launch: Launch, *, data_dir: Path, storage: str | None = None) -> ServerProcess:
        port = free_port()
        argv, env = localize(launch, port=port, data_dir=data_dir, storage=storage)
        return spawn(argv, port=port, env=env)

    return _start


def run_healthcheck(port: int) -> int:
    """The image's HEALTHCHECK, with the script from this checkout and this Python."""
    script = healthcheck_command()[1]
    (source,) = next(sources for sources, destination in copies() if destination == script)
    env = os.environ | {"HPOSERVE_PORT": str(port)}
    argv = [sys.executable, str(REPO / source), *healthcheck_command()[2:]]
    return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode


@pytest.mark.parametrize("name", ["dockerfile", "compose", "hposerve", "hposerve-embedded"])
def test_cli_parser_accepts_the_command_line(name: str, tmp_path: Path) -> None:
    """The CLI's argparse parser accepts the argv (stopped right after parsing)."""
    parse_only = (
        "import argparse, sys\n"
        "parse = argparse.ArgumentParser.parse_args\n"
        "def parse_and_exit(self, *args, **kwargs):\n"
        "    print('PARSED', vars(parse(self, *args, **kwargs)), flush=True)\n"
        "    sys.exit(0)\n"
        "argparse.ArgumentParser.parse_args = parse_and_exit\n"
        "sys.argv[0] = 'hposerve'\n"
        "from hposerve.server._cli import main\n"
        "sys.exit(main())\n"
    )
    argv, env = localize(
        launches()[name], port=free_port(), data_dir=tmp_path / "data", storage=None
    )
    result = subprocess.run(
        [sys.executable, "-c", parse_only, *argv[len(hposerve_command()) :]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "PARSED" in result.stdout, result.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_command_serves_and_stops_on_sigterm(
    name: str, tmp_path: Path, start: Any
) -> None:
    data_dir = tmp_path / "data"
    server = start(launches()[name], data_dir=data_dir)
    wait_serving(server)
    assert run_healthcheck(server.port) == 0
    # The embedded storage lives in the data dir and locks it: a second server must refuse it.
    assert data_dir.is_dir() and any(data_dir.iterdir()), "nothing written to the data dir"
    second = start(launches()[name], data_dir=data_dir)
    try:
        code = second.process.wait(timeout=support.START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a second server started on a locked data dir:\n{second.output()}")
    assert code != 0
    check_auth_is_on(server, data_dir)
    stop_gracefully(server)
    assert run_healthcheck(server.port) != 0
    assert not (tmp_path / "hposerve-data").exists(), "the data dir was not passed on"


def check_auth_is_on(server: ServerProcess, data_dir: Path) -> None:
    """No token: UNAUTHENTICATED; the operator that ``hposerve admin init`` makes gets in."""
    import grpc

    from hposerve.v1 import study_service_pb2, study_service_pb2_grpc

    init = [sys.executable, "-m", "hposerve.cli", "admin", "init", "--data-dir", str(data_dir)]
    done = subprocess.run(init, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    token = done.stdout
    request = study_service_pb2.ListStudiesRequest(parent="namespaces/default")
    with grpc.insecure_channel(server.target) as channel:
        stub = study_service_pb2_grpc.StudyServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListStudies(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        md = [("authorization", f"Bearer {token.strip()}")]
        assert not stub.ListStudies(request, metadata=md, timeout=10).studies


def postgres_url() -> str:
    parts = urlsplit(POSTGRES_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 5432), timeout=2).close()
    except OSError:
        pytest.skip(f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432}")
    return POSTGRES_URL


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("name", ON_POSTGRES)
def test_postgres_command_serves_and_stops_on_sigterm(
    name: str, tmp_path: Path, start: Any
) -> None:
    import psycopg

    # The launch's own hposerve_* options (the journal), in a schema of this test's own.
    options = urlsplit(launches()[name].setting("--storage", "HPOSERVE_STORAGE") or "").query
    schema = f"hposerve_test_deploy_{uuid.uuid4().hex[:10]}"
    url = f"{postgres_url()}?{options}&hposerve_schema={schema}"
    # Two replicas at once, as the Deployment runs them: neither may lock the other out.
    try:
        servers = [start(launches()[name], data_dir=tmp_path / "data", storage=url) for _ in "ab"]
        for server in servers:
            wait_serving(server)
        for server in servers:
            stop_gracefully(server)
        assert not list(tmp_path.rglob("*.journal")), "a replica used the embedded storage"
        with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True) as conn:
            found = conn.execute("SELECT to_regclass(%s)", (f"{schema}.hposerve_journal",))
            assert found.fetchone() == (f"{schema}.hposerve_journal",)
    finally:
        with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
