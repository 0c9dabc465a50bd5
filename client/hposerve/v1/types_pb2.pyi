from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    MINIMIZE: _ClassVar[Direction]
    MAXIMIZE: _ClassVar[Direction]

class TrialState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIAL_STATE_UNSPECIFIED: _ClassVar[TrialState]
    RUNNING: _ClassVar[TrialState]
    COMPLETE: _ClassVar[TrialState]
    PRUNED: _ClassVar[TrialState]
    FAILED: _ClassVar[TrialState]
    WAITING: _ClassVar[TrialState]
DIRECTION_UNSPECIFIED: Direction
MINIMIZE: Direction
MAXIMIZE: Direction
TRIAL_STATE_UNSPECIFIED: TrialState
RUNNING: TrialState
COMPLETE: TrialState
PRUNED: TrialState
FAILED: TrialState
WAITING: TrialState

class Value(_message.Message):
    __slots__ = ("double_value", "int_value", "string_value", "bool_value", "null_value")
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    NULL_VALUE_FIELD_NUMBER: _ClassVar[int]
    double_value: float
    int_value: int
    string_value: str
    bool_value: bool
    null_value: _struct_pb2.NullValue
    def __init__(self, double_value: _Optional[float] = ..., int_value: _Optional[int] = ..., string_value: _Optional[str] = ..., bool_value: _Optional[bool] = ..., null_value: _Optional[_Union[_struct_pb2.NullValue, str]] = ...) -> None: ...

class FloatDistribution(_message.Message):
    __slots__ = ("low", "high", "log", "step")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    low: float
    high: float
    log: bool
    step: float
    def __init__(self, low: _Optional[float] = ..., high: _Optional[float] = ..., log: _Optional[bool] = ..., step: _Optional[float] = ...) -> None: ...

class IntDistribution(_message.Message):
    __slots__ = ("low", "high", "log", "step")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    low: int
    high: int
    log: bool
    step: int
    def __init__(self, low: _Optional[int] = ..., high: _Optional[int] = ..., log: _Optional[bool] = ..., step: _Optional[int] = ...) -> None: ...

class CategoricalDistribution(_message.Message):
    __slots__ = ("choices",)
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    choices: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, choices: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class Distribution(_message.Message):
    __slots__ = ("float", "int", "categorical")
    FLOAT_FIELD_NUMBER: _ClassVar[int]
    INT_FIELD_NUMBER: _ClassVar[int]
    CATEGORICAL_FIELD_NUMBER: _ClassVar[int]
    float: FloatDistribution
    int: IntDistribution
    categorical: CategoricalDistribution
    def __init__(self, float: _Optional[_Union[FloatDistribution, _Mapping]] = ..., int: _Optional[_Union[IntDistribution, _Mapping]] = ..., categorical: _Optional[_Union[CategoricalDistribution, _Mapping]] = ...) -> None: ...

class ParameterSpec(_message.Message):
    __slots__ = ("name", "distribution")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    distribution: Distribution
    def __init__(self, name: _Optional[str] = ..., distribution: _Optional[_Union[Distribution, _Mapping]] = ...) -> None: ...
