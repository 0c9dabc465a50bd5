"""A retried delete with the same request id answers OK (the first answer), not NOT_FOUND,
also after a restart (the record of a delete is kept in storage).

``DeleteStudyRequest.request_id`` and ``DeleteComparisonRequest.request_id`` were never read: a
delete retried after its answer was lost answered NOT_FOUND. A different or empty request id on
a missing resource is still NOT_FOUND.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import empty_pb2

from hposerve.server import make_server
from hposerve.server.domain._exceptions import NotFound
from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import comparison_service_pb2_grpc, specs_pb2, study_service_pb2_grpc, types_pb2
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


def _stub_of(srv):
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    return channel, study_service_pb2_grpc.StudyServiceStub(channel)


def test_a_delete_retried_after_a_restart_answers_ok(tmp_path, study_name):
    """The record of a delete is in storage: a restarted server (or another replica) finds it."""
    data = tmp_path / "restarted"
    srv = make_server("127.0.0.1:0", data_dir=data).start()
    channel, stub = _stub_of(srv)
    name = stub.CreateStudy(pb.CreateStudyRequest(parent=PARENT, study_id=study_name)).name
    delete = pb.DeleteStudyRequest(name=name, request_id="del-r")
    stub.DeleteStudy(delete)
    channel.close()
    srv.stop(grace=1)
    srv = make_server("127.0.0.1:0", data_dir=data).start()
    try:
        channel, stub = _stub_of(srv)
        assert stub.DeleteStudy(delete) == empty_pb2.Empty()
        not_found(stub.DeleteStudy, pb.DeleteStudyRequest(name=name, request_id="del-other"))
        # The hidden record is no study of any namespace.
        listed = stub.ListStudies(pb.ListStudiesRequest(parent=PARENT))
        assert [s.name for s in listed.studies] == []
        channel.close()
    finally:
        srv.stop(grace=1)


def test_a_delete_cut_short_by_a_crash_is_completed_by_its_retry(tmp_path, monkeypatch):
    from hposerve.server.domain import StudyOptions, StudyRef, StudyRegistry
    from hposerve.server.storage import close_storage, open_storage

    storage = open_storage(None, data_dir=tmp_path / "crash")
    try:
        registry = StudyRegistry(storage)
        ref, kept = StudyRef("default", "doomed"), StudyRef("default", "kept")
        for r in (ref, kept):
            registry.create_study(
                r,
                directions=[],
                sampler=None,
                pruner=None,
                options=StudyOptions(),
                load_if_exists=False,
            )
        delete_study = type(storage).delete_study

        def crash(self, study_id):
            raise SystemExit("killed between the record and the delete")

        monkeypatch.setattr(type(storage), "delete_study", crash)
        with pytest.raises(SystemExit):
            registry.delete_study(ref, request_id="del-c")
        monkeypatch.setattr(type(storage), "delete_study", delete_study)
        registry.get_study(ref)  # still there: the crash came first
        registry.delete_study(ref, request_id="del-c")  # the retry completes it
        with pytest.raises(NotFound):
            registry.get_study(ref)
        assert registry.get_study(kept).ref == kept
        # A study made again under the name is not the one the record names.
        registry.create_study(
            ref,
            directions=[],
            sampler=None,
            pruner=None,
            options=StudyOptions(),
            load_if_exists=False,
        )
        registry.delete_study(ref, request_id="del-c")
        assert registry.get_study(ref).ref == ref
    finally:
        close_storage(storage)
