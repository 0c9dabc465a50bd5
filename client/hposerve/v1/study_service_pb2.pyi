import datetime

from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hposerve.v1 import specs_pb2 as _specs_pb2
from hposerve.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Parameter(_message.Message):
    __slots__ = ("name", "value", "distribution")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: _types_pb2.Value
    distribution: _types_pb2.Distribution
    def __init__(self, name: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ..., distribution: _Optional[_Union[_types_pb2.Distribution, _Mapping]] = ...) -> None: ...

class IntermediateValue(_message.Message):
    __slots__ = ("step", "value")
    STEP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    step: int
    value: float
    def __init__(self, step: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class Study(_message.Message):
    __slots__ = ("name", "directions", "sampler", "pruner", "options", "create_time", "trial_count", "complete_trial_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIRECTIONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    directions: _containers.RepeatedScalarFieldContainer[_types_pb2.Direction]
    sampler: _specs_pb2.SamplerSpec
    pruner: _specs_pb2.PrunerSpec
    options: StudyOptions
    create_time: _timestamp_pb2.Timestamp
    trial_count: int
    complete_trial_count: int
    def __init__(self, name: _Optional[str] = ..., directions: _Optional[_Iterable[_Union[_types_pb2.Direction, str]]] = ..., sampler: _Optional[_Union[_specs_pb2.SamplerSpec, _Mapping]] = ..., pruner: _Optional[_Union[_specs_pb2.PrunerSpec, _Mapping]] = ..., options: _Optional[_Union[StudyOptions, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trial_count: _Optional[int] = ..., complete_trial_count: _Optional[int] = ...) -> None: ...

class StudyOptions(_message.Message):
    __slots__ = ("lease_seconds", "retry_expired_trials", "max_retries")
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_EXPIRED_TRIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    lease_seconds: float
    retry_expired_trials: bool
    max_retries: int
    def __init__(self, lease_seconds: _Optional[float] = ..., retry_expired_trials: _Optional[bool] = ..., max_retries: _Optional[int] = ...) -> None: ...

class Trial(_message.Message):
    __slots__ = ("name", "number", "state", "values", "params", "intermediate_values", "user_attrs", "start_time", "complete_time", "lease_expire_time", "sample_seconds", "user_attrs_json", "system_attrs_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    INTERMEDIATE_VALUES_FIELD_NUMBER: _ClassVar[int]
    USER_ATTRS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    USER_ATTRS_JSON_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_ATTRS_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    number: int
    state: _types_pb2.TrialState
    values: _containers.RepeatedScalarFieldContainer[float]
    params: _containers.RepeatedCompositeFieldContainer[Parameter]
    intermediate_values: _containers.RepeatedCompositeFieldContainer[IntermediateValue]
    user_attrs: _struct_pb2.Struct
    start_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    lease_expire_time: _timestamp_pb2.Timestamp
    sample_seconds: float
    user_attrs_json: str
    system_attrs_json: str
    def __init__(self, name: _Optional[str] = ..., number: _Optional[int] = ..., state: _Optional[_Union[_types_pb2.TrialState, str]] = ..., values: _Optional[_Iterable[float]] = ..., params: _Optional[_Iterable[_Union[Parameter, _Mapping]]] = ..., intermediate_values: _Optional[_Iterable[_Union[IntermediateValue, _Mapping]]] = ..., user_attrs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lease_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sample_seconds: _Optional[float] = ..., user_attrs_json: _Optional[str] = ..., system_attrs_json: _Optional[str] = ...) -> None: ...

class CreateStudyRequest(_message.Message):
    __slots__ = ("parent", "study_id", "directions", "sampler", "pruner", "options", "load_if_exists", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTIONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    LOAD_IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    study_id: str
    directions: _containers.RepeatedScalarFieldContainer[_types_pb2.Direction]
    sampler: _specs_pb2.SamplerSpec
    pruner: _specs_pb2.PrunerSpec
    options: StudyOptions
    load_if_exists: bool
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., study_id: _Optional[str] = ..., directions: _Optional[_Iterable[_Union[_types_pb2.Direction, str]]] = ..., sampler: _Optional[_Union[_specs_pb2.SamplerSpec, _Mapping]] = ..., pruner: _Optional[_Union[_specs_pb2.PrunerSpec, _Mapping]] = ..., options: _Optional[_Union[StudyOptions, _Mapping]] = ..., load_if_exists: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetStudyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListStudiesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStudiesResponse(_message.Message):
    __slots__ = ("studies", "next_page_token")
    STUDIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    studies: _containers.RepeatedCompositeFieldContainer[Study]
    next_page_token: str
    def __init__(self, studies: _Optional[_Iterable[_Union[Study, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteStudyRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AskTrialsRequest(_message.Message):
    __slots__ = ("parent", "search_space", "count", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    search_space: _containers.RepeatedCompositeFieldContainer[_types_pb2.ParameterSpec]
    count: int
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., search_space: _Optional[_Iterable[_Union[_types_pb2.ParameterSpec, _Mapping]]] = ..., count: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class AskTrialsResponse(_message.Message):
    __slots__ = ("trials",)
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    def __init__(self, trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ...) -> None: ...

class SuggestParameterRequest(_message.Message):
    __slots__ = ("trial", "parameter")
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_FIELD_NUMBER: _ClassVar[int]
    trial: str
    parameter: _types_pb2.ParameterSpec
    def __init__(self, trial: _Optional[str] = ..., parameter: _Optional[_Union[_types_pb2.ParameterSpec, _Mapping]] = ...) -> None: ...

class SuggestParameterResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _types_pb2.Value
    def __init__(self, value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...

class ReportIntermediateValueRequest(_message.Message):
    __slots__ = ("trial", "step", "value")
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    trial: str
    step: int
    value: float
    def __init__(self, trial: _Optional[str] = ..., step: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class ReportIntermediateValueResponse(_message.Message):
    __slots__ = ("should_prune",)
    SHOULD_PRUNE_FIELD_NUMBER: _ClassVar[int]
    should_prune: bool
    def __init__(self, should_prune: _Optional[bool] = ...) -> None: ...

class ReportIntermediateValuesRequest(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[ReportIntermediateValueRequest]
    def __init__(self, reports: _Optional[_Iterable[_Union[ReportIntermediateValueRequest, _Mapping]]] = ...) -> None: ...

class ReportIntermediateValuesResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShouldPruneRequest(_message.Message):
    __slots__ = ("trial",)
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    trial: str
    def __init__(self, trial: _Optional[str] = ...) -> None: ...

class ShouldPruneResponse(_message.Message):
    __slots__ = ("should_prune",)
    SHOULD_PRUNE_FIELD_NUMBER: _ClassVar[int]
    should_prune: bool
    def __init__(self, should_prune: _Optional[bool] = ...) -> None: ...

class TellTrialRequest(_message.Message):
    __slots__ = ("trial", "state", "values", "constraints", "intermediate_values")
    class ConstraintsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    INTERMEDIATE_VALUES_FIELD_NUMBER: _ClassVar[int]
    trial: str
    state: _types_pb2.TrialState
    values: _containers.RepeatedScalarFieldContainer[float]
    constraints: _containers.ScalarMap[str, float]
    intermediate_values: _containers.RepeatedCompositeFieldContainer[IntermediateValue]
    def __init__(self, trial: _Optional[str] = ..., state: _Optional[_Union[_types_pb2.TrialState, str]] = ..., values: _Optional[_Iterable[float]] = ..., constraints: _Optional[_Mapping[str, float]] = ..., intermediate_values: _Optional[_Iterable[_Union[IntermediateValue, _Mapping]]] = ...) -> None: ...

class TellAndAskRequest(_message.Message):
    __slots__ = ("tell", "ask")
    TELL_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    tell: TellTrialRequest
    ask: AskTrialsRequest
    def __init__(self, tell: _Optional[_Union[TellTrialRequest, _Mapping]] = ..., ask: _Optional[_Union[AskTrialsRequest, _Mapping]] = ...) -> None: ...

class TellAndAskResponse(_message.Message):
    __slots__ = ("told", "asked", "ask_error")
    TOLD_FIELD_NUMBER: _ClassVar[int]
    ASKED_FIELD_NUMBER: _ClassVar[int]
    ASK_ERROR_FIELD_NUMBER: _ClassVar[int]
    told: Trial
    asked: _containers.RepeatedCompositeFieldContainer[Trial]
    ask_error: Status
    def __init__(self, told: _Optional[_Union[Trial, _Mapping]] = ..., asked: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., ask_error: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("trials",)
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, trials: _Optional[_Iterable[str]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("leases",)
    LEASES_FIELD_NUMBER: _ClassVar[int]
    leases: _containers.RepeatedCompositeFieldContainer[LeaseStatus]
    def __init__(self, leases: _Optional[_Iterable[_Union[LeaseStatus, _Mapping]]] = ...) -> None: ...

class LeaseStatus(_message.Message):
    __slots__ = ("trial", "running", "expire_time")
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    trial: str
    running: bool
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, trial: _Optional[str] = ..., running: _Optional[bool] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetTrialRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListTrialsRequest(_message.Message):
    __slots__ = ("parent", "states", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    states: _containers.RepeatedScalarFieldContainer[_types_pb2.TrialState]
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_types_pb2.TrialState, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTrialsResponse(_message.Message):
    __slots__ = ("trials", "next_page_token")
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    next_page_token: str
    def __init__(self, trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class EnqueueTrialRequest(_message.Message):
    __slots__ = ("parent", "params", "user_attrs", "skip_if_exists", "request_id", "user_attrs_json")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    USER_ATTRS_FIELD_NUMBER: _ClassVar[int]
    SKIP_IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ATTRS_JSON_FIELD_NUMBER: _ClassVar[int]
    parent: str
    params: _containers.MessageMap[str, _types_pb2.Value]
    user_attrs: _struct_pb2.Struct
    skip_if_exists: bool
    request_id: str
    user_attrs_json: str
    def __init__(self, parent: _Optional[str] = ..., params: _Optional[_Mapping[str, _types_pb2.Value]] = ..., user_attrs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., skip_if_exists: _Optional[bool] = ..., request_id: _Optional[str] = ..., user_attrs_json: _Optional[str] = ...) -> None: ...

class SetTrialUserAttributesRequest(_message.Message):
    __slots__ = ("trial", "user_attrs", "user_attrs_json")
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    USER_ATTRS_FIELD_NUMBER: _ClassVar[int]
    USER_ATTRS_JSON_FIELD_NUMBER: _ClassVar[int]
    trial: str
    user_attrs: _struct_pb2.Struct
    user_attrs_json: str
    def __init__(self, trial: _Optional[str] = ..., user_attrs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., user_attrs_json: _Optional[str] = ...) -> None: ...

class GetBestTrialRequest(_message.Message):
    __slots__ = ("parent",)
    PARENT_FIELD_NUMBER: _ClassVar[int]
    parent: str
    def __init__(self, parent: _Optional[str] = ...) -> None: ...

class GetParetoFrontRequest(_message.Message):
    __slots__ = ("parent",)
    PARENT_FIELD_NUMBER: _ClassVar[int]
    parent: str
    def __init__(self, parent: _Optional[str] = ...) -> None: ...

class GetParetoFrontResponse(_message.Message):
    __slots__ = ("trials",)
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    def __init__(self, trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ...) -> None: ...

class AddTrialsRequest(_message.Message):
    __slots__ = ("parent", "trials", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class AddTrialsResponse(_message.Message):
    __slots__ = ("trials",)
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    def __init__(self, trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ...) -> None: ...

class GetStudyAttributesRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class StudyAttributes(_message.Message):
    __slots__ = ("user_attrs_json", "metric_names")
    USER_ATTRS_JSON_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAMES_FIELD_NUMBER: _ClassVar[int]
    user_attrs_json: str
    metric_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_attrs_json: _Optional[str] = ..., metric_names: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateStudyAttributesRequest(_message.Message):
    __slots__ = ("name", "user_attrs_json", "metric_names")
    NAME_FIELD_NUMBER: _ClassVar[int]
    USER_ATTRS_JSON_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAMES_FIELD_NUMBER: _ClassVar[int]
    name: str
    user_attrs_json: str
    metric_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., user_attrs_json: _Optional[str] = ..., metric_names: _Optional[_Iterable[str]] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("ask_trials", "suggest_parameter", "report_intermediate_value", "should_prune", "tell_trial", "set_trial_user_attributes", "heartbeat", "report_intermediate_values", "tell_and_ask")
    ASK_TRIALS_FIELD_NUMBER: _ClassVar[int]
    SUGGEST_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    REPORT_INTERMEDIATE_VALUE_FIELD_NUMBER: _ClassVar[int]
    SHOULD_PRUNE_FIELD_NUMBER: _ClassVar[int]
    TELL_TRIAL_FIELD_NUMBER: _ClassVar[int]
    SET_TRIAL_USER_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REPORT_INTERMEDIATE_VALUES_FIELD_NUMBER: _ClassVar[int]
    TELL_AND_ASK_FIELD_NUMBER: _ClassVar[int]
    ask_trials: AskTrialsRequest
    suggest_parameter: SuggestParameterRequest
    report_intermediate_value: ReportIntermediateValueRequest
    should_prune: ShouldPruneRequest
    tell_trial: TellTrialRequest
    set_trial_user_attributes: SetTrialUserAttributesRequest
    heartbeat: HeartbeatRequest
    report_intermediate_values: ReportIntermediateValuesRequest
    tell_and_ask: TellAndAskRequest
    def __init__(self, ask_trials: _Optional[_Union[AskTrialsRequest, _Mapping]] = ..., suggest_parameter: _Optional[_Union[SuggestParameterRequest, _Mapping]] = ..., report_intermediate_value: _Optional[_Union[ReportIntermediateValueRequest, _Mapping]] = ..., should_prune: _Optional[_Union[ShouldPruneRequest, _Mapping]] = ..., tell_trial: _Optional[_Union[TellTrialRequest, _Mapping]] = ..., set_trial_user_attributes: _Optional[_Union[SetTrialUserAttributesRequest, _Mapping]] = ..., heartbeat: _Optional[_Union[HeartbeatRequest, _Mapping]] = ..., report_intermediate_values: _Optional[_Union[ReportIntermediateValuesRequest, _Mapping]] = ..., tell_and_ask: _Optional[_Union[TellAndAskRequest, _Mapping]] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("ask_trials", "suggest_parameter", "report_intermediate_value", "should_prune", "tell_trial", "set_trial_user_attributes", "heartbeat", "report_intermediate_values", "tell_and_ask", "error")
    ASK_TRIALS_FIELD_NUMBER: _ClassVar[int]
    SUGGEST_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    REPORT_INTERMEDIATE_VALUE_FIELD_NUMBER: _ClassVar[int]
    SHOULD_PRUNE_FIELD_NUMBER: _ClassVar[int]
    TELL_TRIAL_FIELD_NUMBER: _ClassVar[int]
    SET_TRIAL_USER_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REPORT_INTERMEDIATE_VALUES_FIELD_NUMBER: _ClassVar[int]
    TELL_AND_ASK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ask_trials: AskTrialsResponse
    suggest_parameter: SuggestParameterResponse
    report_intermediate_value: ReportIntermediateValueResponse
    should_prune: ShouldPruneResponse
    tell_trial: Trial
    set_trial_user_attributes: Trial
    heartbeat: HeartbeatResponse
    report_intermediate_values: ReportIntermediateValuesResponse
    tell_and_ask: TellAndAskResponse
    error: Status
    def __init__(self, ask_trials: _Optional[_Union[AskTrialsResponse, _Mapping]] = ..., suggest_parameter: _Optional[_Union[SuggestParameterResponse, _Mapping]] = ..., report_intermediate_value: _Optional[_Union[ReportIntermediateValueResponse, _Mapping]] = ..., should_prune: _Optional[_Union[ShouldPruneResponse, _Mapping]] = ..., tell_trial: _Optional[_Union[Trial, _Mapping]] = ..., set_trial_user_attributes: _Optional[_Union[Trial, _Mapping]] = ..., heartbeat: _Optional[_Union[HeartbeatResponse, _Mapping]] = ..., report_intermediate_values: _Optional[_Union[ReportIntermediateValuesResponse, _Mapping]] = ..., tell_and_ask: _Optional[_Union[TellAndAskResponse, _Mapping]] = ..., error: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("code", "message", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    details: _containers.RepeatedCompositeFieldContainer[_any_pb2.Any]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[_Iterable[_Union[_any_pb2.Any, _Mapping]]] = ...) -> None: ...
