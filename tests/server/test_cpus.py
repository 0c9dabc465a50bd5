"""``hposerve serve --cpus``: the server's threads on the CPUs given, its sampling processes not."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from optuna.distributions import FloatDistribution

from hposerve.client import Client
from hposerve.server.domain._cpus import parse_cpus
from tests.support import SERVE, free_port, stop_gracefully, wait_serving

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity"), reason="the platform has no CPU affinity"
)
ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
several_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="one CPU: pinning cannot be seen")


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0", {0}), ("3", {3}), ("0-3", {0, 1, 2, 3}), ("0,2,4-5", {0, 2, 4, 5}), (" 1 , 2", {1, 2})],
)
def test_cpu_lists_read_as_taskset_writes_them(text: str, cpus: set[int]) -> None:
    assert parse_cpus(text) == cpus


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "'' is neither a CPU number nor a range"),
        ("a", "'a' is neither"),
        ("1,,2", "'' is neither"),
        ("-1", "'-1' is neither"),
        ("2-", "'2-' is neither"),
        ("3-1", "the range '3-1' is backwards"),
    ],
)
def test_a_bad_cpu_list_is_refused_with_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_cpus(text)


def _serve(tmp_path: Path, *options: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    argv = [*SERVE, "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), *options]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


def test_a_cpu_the_process_may_not_use_stops_serve_before_it_starts(tmp_path: Path) -> None:
    beyond = max(ALLOWED) + 1
    code, err = _serve(tmp_path, "--cpus", str(beyond))
    assert code == 2
    assert f"CPU {beyond} is not among those this process may run on" in err
    assert not (tmp_path / "data").exists()  # nothing opened


def test_a_malformed_cpu_list_is_a_usage_error(tmp_path: Path) -> None:
    code, err = _serve(tmp_path, "--cpus", "0-x")
    assert code == 2 and "argument --cpus: CPUs '0-x'" in err
    code, err = _serve(tmp_path, env={**os.environ, "HPOSERVE_CPUS": "x"})
    assert code == 2 and "argument --cpus: CPUs 'x'" in err


def _cpus_of(pid: int) -> dict[str, set[int]]:
    """Each thread's (or the process's) allowed CPUs, by thread id."""
    found = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                found[task] = set(parse_cpus(line.split(":", 1)[1].strip()))
    return found


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


@several_cpus
def test_every_thread_of_the_server_runs_on_the_cpu_given_and_a_sampling_process_on_all(
    spawn, tmp_path: Path
) -> None:
    cpu = ALLOWED[-1]
    port = free_port()
    server = spawn(
        [*SERVE, "--port", str(port), "--data-dir", str(tmp_path), "--sampling-processes", "1"],
        port=port,
        env={**os.environ, "HPOSERVE_CPUS": str(cpu)},
    )
    wait_serving(server)
    with Client(server.target) as client:
        # Calls on the event loop, on the call threads, and in a sampling process (a model).
        random = client.create_study(name="random", sampler={"type": "random"})
        tpe = client.create_study(name="tpe", sampler={"type": "tpe", "seed": 1})
        for study in (random, tpe):
            for _ in range(3):
                trial = study.ask({"x": FloatDistribution(0, 1)})
                study.tell(trial, trial.params["x"])
    threads = _cpus_of(server.process.pid)
    assert len(threads) > 10  # the loop, the call threads, gRPC's
    assert all(cpus == {cpu} for cpus in threads.values()), threads
    deadline = time.monotonic() + 30
    while not (samplers := _children(server.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert samplers, "no sampling process started"
    for pid in samplers:
        assert set().union(*_cpus_of(pid).values()) == set(ALLOWED)
    stop_gracefully(server)


def test_without_the_flag_the_server_keeps_every_cpu(spawn, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "HPOSERVE_CPUS"}
    server = spawn([*SERVE, "--port", str(port), "--data-dir", str(tmp_path)], port=port, env=env)
    wait_serving(server)
    assert all(cpus == set(ALLOWED) for cpus in _cpus_of(server.process.pid).values())
    stop_gracefully(server)


def test_the_bench_gives_each_server_of_a_case_its_own_cpu_in_turn() -> None:
    from hposerve.lab._bench_processes import bench_cpus

    if len(ALLOWED) < 2:
        assert bench_cpus(0) is None
        return
    assert [bench_cpus(i) for i in range(len(ALLOWED) + 1)] == [
        *(str(c) for c in ALLOWED),
        str(ALLOWED[0]),
    ]


@several_cpus
def test_the_bench_runs_a_server_on_every_cpu_unless_it_gives_it_one(tmp_path: Path) -> None:
    from hposerve.lab._bench_processes import hposerve_server

    for given, expected in (({}, set(ALLOWED)), ({"cpu_index": 1}, {ALLOWED[1]})):
        data_dir = str(tmp_path / f"data-{len(given)}")
        with hposerve_server(data_dir, **given):
            (pid,) = [
                kid
                for kid in _children(os.getpid())
                if data_dir in Path(f"/proc/{kid}/cmdline").read_text().replace("\0", " ")
            ]
            assert all(cpus == expected for cpus in _cpus_of(pid).values())
