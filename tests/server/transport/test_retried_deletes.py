"""A retried delete with the same request id answers OK (the first answer), not NOT_FOUND.

``DeleteStudyRequest.request_id`` and ``DeleteComparisonRequest.request_id`` were never read: a
delete retried after its answer was lost answered NOT_FOUND. A different or empty request id on
a missing resource is still NOT_FOUND.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import empty_pb2

from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import comparison_service_pb2_grpc, specs_pb2, types_pb2
from hposerve.v1 import study_service_pb2 as pb

PARENT = "namespaces/default"


def not_found(call, request) -> None:
    with pytest.raises(grpc.RpcError) as e:
        call(request)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_retried_delete_study(stub, study_name):
    name = stub.CreateStudy(pb.CreateStudyRequest(parent=PARENT, study_id=study_name)).name
    other = stub.CreateStudy(pb.CreateStudyRequest(parent=PARENT, study_id=study_name + "-b"))
    delete = pb.DeleteStudyRequest(name=name, request_id="del-1")
    assert stub.DeleteStudy(delete) == empty_pb2.Empty()
    assert stub.DeleteStudy(delete) == empty_pb2.Empty()  # the retry: the first answer
    not_found(stub.GetStudy, pb.GetStudyRequest(name=name))
    not_found(stub.DeleteStudy, pb.DeleteStudyRequest(name=name, request_id="del-2"))
    not_found(stub.DeleteStudy, pb.DeleteStudyRequest(name=name))
    # The request id answers for the study it deleted only.
    not_found(stub.DeleteStudy, pb.DeleteStudyRequest(name=f"{name}-c", request_id="del-1"))
    # The retry changed nothing else.
    assert stub.GetStudy(pb.GetStudyRequest(name=other.name)).name == other.name


def test_a_delete_of_a_missing_study_is_not_found_however_often(stub, study_name):
    delete = pb.DeleteStudyRequest(name=f"{PARENT}/studies/{study_name}", request_id="del-x")
    not_found(stub.DeleteStudy, delete)
    not_found(stub.DeleteStudy, delete)  # a NOT_FOUND is not remembered as done


def test_a_study_created_again_after_a_delete_is_deleted_by_a_new_request(stub, study_name):
    create = pb.CreateStudyRequest(parent=PARENT, study_id=study_name)
    name = stub.CreateStudy(create).name
    stub.DeleteStudy(pb.DeleteStudyRequest(name=name, request_id="del-1"))
    stub.CreateStudy(create)
    stub.DeleteStudy(pb.DeleteStudyRequest(name=name, request_id="del-2"))
    not_found(stub.GetStudy, pb.GetStudyRequest(name=name))


def test_retried_delete_comparison(target):
    random = specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler())
    space = types_pb2.ParameterSpec(
        name="x", distribution=types_pb2.Distribution(float=types_pb2.FloatDistribution(high=1))
    )
    with grpc.insecure_channel(target) as channel:
        cstub = comparison_service_pb2_grpc.ComparisonServiceStub(channel)
        made = cstub.CreateComparison(
            cpb.CreateComparisonRequest(
                parent=PARENT,
                comparison_id="cmp",
                search_space=[space],
                arms=[cpb.ComparisonArm(sampler=random)],
                seeds=2,
                trials_per_study=1,
            )
        )
        delete = cpb.DeleteComparisonRequest(name=made.name, request_id="del-1")
        assert cstub.DeleteComparison(delete) == empty_pb2.Empty()
        assert cstub.DeleteComparison(delete) == empty_pb2.Empty()
        not_found(cstub.GetComparison, cpb.GetComparisonRequest(name=made.name))
        not_found(
            cstub.DeleteComparison, cpb.DeleteComparisonRequest(name=made.name, request_id="x")
        )
        not_found(cstub.DeleteComparison, cpb.DeleteComparisonRequest(name=made.name))
