"""The client's cheaper conversions (run on every ask and tell) give what the plain ones give."""

from __future__ import annotations

import datetime
import os
import time

import pytest

from hposerve.client import _distributions as d
from hposerve.client._frozen_trial import json_object, local_time, params_from_proto
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2


def _general_local_time(proto: pb.Trial) -> datetime.datetime:
    return (
        proto.start_time.ToDatetime(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)
    )


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
)
def test_local_time_matches_the_general_conversion(zone) -> None:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        # Every half hour of 2024 (both daylight-saving changes), and the ends of the fast path.
        stamps = [(s, 123_456_789) for s in range(1_704_067_200, 1_735_689_600, 1800)]
        stamps += [(0, 0), (4_102_444_799, 999_999_999), (4_102_444_800, 5), (-86_400, 7)]
        for seconds, nanos in stamps:
            proto = pb.Trial()
            proto.start_time.seconds, proto.start_time.nanos = seconds, nanos
            got = local_time(proto, "start_time")
            assert got == _general_local_time(proto) and got.tzinfo is None and got.fold == 0
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_a_missing_time_is_none() -> None:
    assert local_time(pb.Trial(), "start_time") is None


def test_converted_distributions_are_shared_but_keep_value_types() -> None:
    ints = d.distribution_to_proto(d.CategoricalDistribution((1, 0)))
    bools = d.distribution_to_proto(d.CategoricalDistribution((True, False)))
    assert d.distribution_from_proto(ints) is d.distribution_from_proto(ints)
    # 1 == True in Python: the cache is keyed by the proto's bytes, which tell them apart.
    assert [type(c) for c in d.distribution_from_proto(bools).choices] == [bool, bool]  # type: ignore[union-attr]
    assert [type(c) for c in d.distribution_from_proto(ints).choices] == [int, int]  # type: ignore[union-attr]


def test_params_from_proto_types_values_by_their_distributions() -> None:
    params = [
        pb.Parameter(
            name="n",
            value=types_pb2.Value(double_value=3.0),
            distribution=d.distribution_to_proto(d.IntDistribution(1, 8)),
        ),
        pb.Parameter(name="enqueued", value=types_pb2.Value(int_value=2)),
    ]
    values, distributions = params_from_proto(params)
    assert values == {"n": 3, "enqueued": 2} and type(values["n"]) is int
    assert distributions == {"n": d.IntDistribution(1, 8)}


@pytest.mark.parametrize(
    "distribution",
    [
        d.FloatDistribution(0.0, 0.0),  # every field zero: still a float distribution
        d.FloatDistribution(1e-5, 1e-1, log=True),
        d.FloatDistribution(0.0, 1.0, step=0.25),
        d.IntDistribution(0, 0),
        d.IntDistribution(2, 10, step=2),
        d.CategoricalDistribution(()),
        d.CategoricalDistribution((None, True, 1, 2.5, "a", "")),
    ],
)
def test_distributions_built_from_dicts_equal_those_built_field_by_field(distribution) -> None:
    proto = d.distribution_to_proto(distribution)
    assert proto.WhichOneof("kind") is not None
    assert d.distribution_from_proto(proto) == distribution
    specs = d.search_space_to_proto({"x": distribution})
    request = pb.AskTrialsRequest()
    d.add_search_space(request.search_space, {"x": distribution})
    assert list(request.search_space) == specs
    assert specs[0].distribution == proto


def test_a_proto_distribution_is_passed_through() -> None:
    proto = types_pb2.Distribution(float=types_pb2.FloatDistribution(low=1, high=2))
    assert d.distribution_to_proto(proto) is proto
    assert d.search_space_to_proto({"x": proto})[0].distribution == proto


def test_value_to_proto_keeps_bool_apart_from_int() -> None:
    assert d.value_to_proto(True).WhichOneof("kind") == "bool_value"
    assert d.value_to_proto(1).WhichOneof("kind") == "int_value"
    assert d.value_to_proto(None).WhichOneof("kind") == "null_value"
    with pytest.raises(d.InvalidArgument):
        d.value_to_proto([1])


def test_json_object() -> None:
    assert json_object("") == {} and json_object("{}") == {}
    assert json_object('{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    first = json_object("{}")
    first["x"] = 1
    assert json_object("{}") == {}  # a fresh dict each time
