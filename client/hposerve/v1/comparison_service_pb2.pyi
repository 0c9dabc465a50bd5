import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hposerve.v1 import specs_pb2 as _specs_pb2
from hposerve.v1 import study_service_pb2 as _study_service_pb2
from hposerve.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ComparisonArm(_message.Message):
    __slots__ = ("name", "sampler", "pruner", "shuffle_grid", "grid_size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    SHUFFLE_GRID_FIELD_NUMBER: _ClassVar[int]
    GRID_SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    sampler: _specs_pb2.SamplerSpec
    pruner: _specs_pb2.PrunerSpec
    shuffle_grid: bool
    grid_size: int
    def __init__(self, name: _Optional[str] = ..., sampler: _Optional[_Union[_specs_pb2.SamplerSpec, _Mapping]] = ..., pruner: _Optional[_Union[_specs_pb2.PrunerSpec, _Mapping]] = ..., shuffle_grid: _Optional[bool] = ..., grid_size: _Optional[int] = ...) -> None: ...

class ComparisonMember(_message.Message):
    __slots__ = ("arm", "seed", "study", "budget", "trials_asked", "trials_finished", "trials_complete", "best_value")
    ARM_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STUDY_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    TRIALS_ASKED_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FINISHED_FIELD_NUMBER: _ClassVar[int]
    TRIALS_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    BEST_VALUE_FIELD_NUMBER: _ClassVar[int]
    arm: str
    seed: int
    study: str
    budget: int
    trials_asked: int
    trials_finished: int
    trials_complete: int
    best_value: float
    def __init__(self, arm: _Optional[str] = ..., seed: _Optional[int] = ..., study: _Optional[str] = ..., budget: _Optional[int] = ..., trials_asked: _Optional[int] = ..., trials_finished: _Optional[int] = ..., trials_complete: _Optional[int] = ..., best_value: _Optional[float] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("name", "direction", "search_space", "arms", "seeds", "trials_per_study", "options", "create_time", "members", "done", "finished")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_PER_STUDY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    name: str
    direction: _types_pb2.Direction
    search_space: _containers.RepeatedCompositeFieldContainer[_types_pb2.ParameterSpec]
    arms: _containers.RepeatedCompositeFieldContainer[ComparisonArm]
    seeds: int
    trials_per_study: int
    options: _study_service_pb2.StudyOptions
    create_time: _timestamp_pb2.Timestamp
    members: _containers.RepeatedCompositeFieldContainer[ComparisonMember]
    done: bool
    finished: bool
    def __init__(self, name: _Optional[str] = ..., direction: _Optional[_Union[_types_pb2.Direction, str]] = ..., search_space: _Optional[_Iterable[_Union[_types_pb2.ParameterSpec, _Mapping]]] = ..., arms: _Optional[_Iterable[_Union[ComparisonArm, _Mapping]]] = ..., seeds: _Optional[int] = ..., trials_per_study: _Optional[int] = ..., options: _Optional[_Union[_study_service_pb2.StudyOptions, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., members: _Optional[_Iterable[_Union[ComparisonMember, _Mapping]]] = ..., done: _Optional[bool] = ..., finished: _Optional[bool] = ...) -> None: ...

class CreateComparisonRequest(_message.Message):
    __slots__ = ("parent", "comparison_id", "direction", "search_space", "arms", "seeds", "trials_per_study", "options", "load_if_exists", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_PER_STUDY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    LOAD_IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    comparison_id: str
    direction: _types_pb2.Direction
    search_space: _containers.RepeatedCompositeFieldContainer[_types_pb2.ParameterSpec]
    arms: _containers.RepeatedCompositeFieldContainer[ComparisonArm]
    seeds: int
    trials_per_study: int
    options: _study_service_pb2.StudyOptions
    load_if_exists: bool
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., comparison_id: _Optional[str] = ..., direction: _Optional[_Union[_types_pb2.Direction, str]] = ..., search_space: _Optional[_Iterable[_Union[_types_pb2.ParameterSpec, _Mapping]]] = ..., arms: _Optional[_Iterable[_Union[ComparisonArm, _Mapping]]] = ..., seeds: _Optional[int] = ..., trials_per_study: _Optional[int] = ..., options: _Optional[_Union[_study_service_pb2.StudyOptions, _Mapping]] = ..., load_if_exists: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetComparisonRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListComparisonsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListComparisonsResponse(_message.Message):
    __slots__ = ("comparisons", "next_page_token")
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    comparisons: _containers.RepeatedCompositeFieldContainer[Comparison]
    next_page_token: str
    def __init__(self, comparisons: _Optional[_Iterable[_Union[Comparison, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteComparisonRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AskComparisonTrialRequest(_message.Message):
    __slots__ = ("comparison", "request_id")
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    comparison: str
    request_id: str
    def __init__(self, comparison: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AskComparisonTrialResponse(_message.Message):
    __slots__ = ("trial", "arm", "seed", "study", "done")
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STUDY_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    trial: _study_service_pb2.Trial
    arm: str
    seed: int
    study: str
    done: bool
    def __init__(self, trial: _Optional[_Union[_study_service_pb2.Trial, _Mapping]] = ..., arm: _Optional[str] = ..., seed: _Optional[int] = ..., study: _Optional[str] = ..., done: _Optional[bool] = ...) -> None: ...
