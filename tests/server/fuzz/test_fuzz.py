"""Generated requests over every RPC and session call, against one real server.

Requests are built from the proto descriptors (``_messages``) and, for every method, raw
undecodable bytes too. None may be answered INTERNAL or UNKNOWN (or time out); afterwards the
server is healthy, its memory grew less than a bound, and a restart on the same data directory
shows the same studies and trials.

Examples per test: ``HPOSERVE_FUZZ_EXAMPLES`` (default 25, ~1 minute in all on 2 busy cores);
``HPOSERVE_FUZZ_EXAMPLES=2000`` is a long run.
"""

from __future__ import annotations

import os
import re

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hposerve.server import make_server
from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import comparison_service_pb2_grpc, study_service_pb2_grpc
from hposerve.v1 import specs_pb2 as S
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2 as T

from ._messages import Builder

EXAMPLES = int(os.environ.get("HPOSERVE_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
SERVER_FAULTS = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
# The whole process's resident memory (the server is in-process) may grow this much. What
# grows is what the generated requests stored (the journal and the live studies stay in
# memory) and Hypothesis's own: measured +65 MB at 25 examples per test and +273 MB at 300
# (2 cores, Python 3.11); a request's own cost is bounded by the limits (domain/_config.py).
MAX_RSS_GROWTH_MB = 120 + 0.8 * EXAMPLES
NS = "namespaces/default"
STUDIES = ["fuzz-a", "fuzz-grid", "fuzz-multi"]

SERVICES = [
    pb.DESCRIPTOR.services_by_name["StudyService"],
    cpb.DESCRIPTOR.services_by_name["ComparisonService"],
]
UNARY = [
    m for s in SERVICES for m in s.methods if not m.client_streaming and not m.server_streaming
]
SESSION_CALLS = list(pb.SessionRequest.DESCRIPTOR.oneofs_by_name["call"].fields)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        (kb,) = re.findall(r"VmRSS:\s+(\d+) kB", f.read())
    return int(kb) / 1024


def seed(stub, comparisons) -> list[str]:
    """Studies with trials in every state, and a comparison: real names for the fuzzer."""
    unit = T.Distribution(float=T.FloatDistribution(low=0, high=1))
    space = [T.ParameterSpec(name="x", distribution=unit)]
    grid = S.SamplerSpec(
        grid=S.GridSampler(
            search_space=[S.GridAxis(name="x", values=[T.Value(double_value=0.5)] * 1)]
        )
    )
    specs = {
        "fuzz-a": {},
        "fuzz-grid": {"sampler": grid},
        "fuzz-multi": {"directions": [T.MINIMIZE, T.MAXIMIZE]},
    }
    names = [NS, "namespaces/other"]
    for study_id, kwargs in specs.items():
        request = pb.CreateStudyRequest(parent=NS, study_id=study_id, load_if_exists=True, **kwargs)
        study = stub.CreateStudy(request).name
        if not stub.ListTrials(pb.ListTrialsRequest(parent=study)).trials:
            trials = stub.AskTrials(
                pb.AskTrialsRequest(parent=study, count=3, search_space=space)
            ).trials
            n = 2 if study_id == "fuzz-multi" else 1
            stub.TellTrial(
                pb.TellTrialRequest(trial=trials[0].name, state=T.COMPLETE, values=[1.0] * n)
            )
            stub.TellTrial(pb.TellTrialRequest(trial=trials[1].name, state=T.FAILED))
        names += [study, study_id, *(f"{study}/trials/{i}" for i in range(3))]
    arm = cpb.ComparisonArm(sampler=S.SamplerSpec(random=S.RandomSampler()))
    created = comparisons.CreateComparison(
        cpb.CreateComparisonRequest(
            parent=NS,
            comparison_id="fuzz-c",
            search_space=space,
            arms=[arm],
            seeds=2,
            trials_per_study=3,
            load_if_exists=True,
        )
    )
    return [*names, created.name, "fuzz-c", *(m.study for m in created.members)]


class Fuzzed:
    """The server under fuzzing and what the checks at the end need."""

    def __init__(self, data_dir) -> None:
        self.data_dir = data_dir
        self.server = make_server("127.0.0.1:0", data_dir=data_dir, reap_interval=0.05).start()
        options = [("grpc.max_receive_message_length", 256 * 2**20)]
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.server.port}", options=options)
        self.stub = study_service_pb2_grpc.StudyServiceStub(self.channel)
        self.comparisons = comparison_service_pb2_grpc.ComparisonServiceStub(self.channel)
        self.builder = Builder(seed(self.stub, self.comparisons))
        self.rss_before = rss_mb()

    def close(self) -> None:
        self.channel.close()
        self.server.stop(grace=1)


@pytest.fixture(scope="module")
def server_under_fuzz(tmp_path_factory):
    f = Fuzzed(tmp_path_factory.mktemp("fuzz") / "data")
    yield f
    f.close()


@pytest.fixture
def fuzzed(server_under_fuzz):
    # Deletes are fuzzed too: each test starts with the seeded studies there (new trials).
    seed(server_under_fuzz.stub, server_under_fuzz.comparisons)
    return server_under_fuzz


def path(method) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def request_class(descriptor):
    module = cpb if descriptor.file.name == cpb.DESCRIPTOR.name else pb
    return getattr(module, descriptor.name)


def check(call, request, what: str) -> None:
    try:
        call(request, timeout=60)
    except grpc.RpcError as e:
        assert e.code() not in SERVER_FAULTS, (
            f"{what}: {e.code().name}: {e.details()}\n{request!r}"[:4000]
        )


@pytest.mark.parametrize("method", UNARY, ids=lambda m: m.name)
def test_generated_requests(fuzzed, method):
    cls = request_class(method.input_type)
    call = fuzzed.channel.unary_unary(path(method), request_serializer=cls.SerializeToString)

    @FUZZ
    @given(request=fuzzed.builder.message(cls))
    def run(request) -> None:
        check(call, request, method.name)

    run()


@pytest.mark.parametrize("method", UNARY, ids=lambda m: m.name)
def test_raw_bytes(fuzzed, method):
    call = fuzzed.channel.unary_unary(path(method))  # identity: the bytes as they are

    @FUZZ
    @given(raw=st.binary(max_size=200))
    def run(raw: bytes) -> None:
        check(call, raw, method.name)

    run()


@pytest.mark.parametrize("field", SESSION_CALLS, ids=lambda f: f.name)
def test_session_calls(fuzzed, field):
    inner = request_class(field.message_type)

    @FUZZ
    @given(request=fuzzed.builder.message(inner), raw=st.binary(max_size=100))
    def run(request, raw: bytes) -> None:
        session = fuzzed.channel.stream_stream(
            "/hposerve.v1.StudyService/Session",
            request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
            response_deserializer=pb.SessionResponse.FromString,
        )
        messages = [pb.SessionRequest(**{field.name: request}), raw]
        answers = list(session(iter(messages), timeout=60))  # ends OK: the stream went on
        assert len(answers) == len(messages)
        for answer in answers:
            if answer.WhichOneof("result") == "error":
                code = grpc.StatusCode(
                    next(c for c in grpc.StatusCode if c.value[0] == answer.error.code)
                )
                assert code not in SERVER_FAULTS, f"{field.name}: {answer.error.message}"

    run()


def snapshot(stub) -> dict[str, list[tuple]]:
    studies = stub.ListStudies(pb.ListStudiesRequest(parent=NS, page_size=1000)).studies
    return {
        s.name: sorted(
            (t.number, t.state, tuple(t.values), t.user_attrs_json)
            for t in stub.ListTrials(pb.ListTrialsRequest(parent=s.name, page_size=10_000)).trials
        )
        for s in studies
    }


def test_afterwards_healthy_bounded_and_the_same_after_a_restart(fuzzed):
    health = health_pb2_grpc.HealthStub(fuzzed.channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == serving
    growth = rss_mb() - fuzzed.rss_before
    print(f"RSS growth over the fuzz run: {growth:.1f} MB ({EXAMPLES} examples per test)")
    assert growth < MAX_RSS_GROWTH_MB
    before = snapshot(fuzzed.stub)
    assert before  # the seeded studies, at least some of them
    fuzzed.close()
    restarted = Fuzzed.__new__(Fuzzed)
    restarted.server = make_server("127.0.0.1:0", data_dir=fuzzed.data_dir).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{restarted.server.port}") as channel:
            assert snapshot(study_service_pb2_grpc.StudyServiceStub(channel)) == before
    finally:
        restarted.server.stop(grace=1)
        fuzzed.server = restarted.server  # stopped: the fixture's close stops nothing twice
        fuzzed.channel = grpc.insecure_channel("127.0.0.1:1")
