"""Names through the real server: a trailing newline is not a second name (issue 10, item 8).

Matched with ``$``, ``"abc\\n"`` was a study beside ``"abc"`` and ``namespaces/default\\n`` a
new namespace.
"""

from __future__ import annotations

import grpc
import pytest

from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import comparison_service_pb2_grpc
from hposerve.v1 import study_service_pb2 as pb


def test_a_study_id_with_a_trailing_newline_is_refused_by_the_server(stub) -> None:
    made = stub.CreateStudy(pb.CreateStudyRequest(parent="namespaces/default", study_id="abc"))
    assert made.name == "namespaces/default/studies/abc"
    for request in (
        pb.CreateStudyRequest(parent="namespaces/default", study_id="abc\n"),
        pb.CreateStudyRequest(parent="namespaces/default\n", study_id="abc"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            stub.CreateStudy(request)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as e:
        stub.GetStudy(pb.GetStudyRequest(name="namespaces/default/studies/abc\n"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = stub.ListStudies(pb.ListStudiesRequest(parent="namespaces/default"))
    assert [s.name for s in listed.studies] == ["namespaces/default/studies/abc"]


def test_a_comparison_id_with_a_trailing_newline_is_refused_by_the_server(target) -> None:
    with grpc.insecure_channel(target) as channel:
        cstub = comparison_service_pb2_grpc.ComparisonServiceStub(channel)
        with pytest.raises(grpc.RpcError) as e:
            cstub.GetComparison(
                cpb.GetComparisonRequest(name="namespaces/default/comparisons/cmp\n")
            )
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
