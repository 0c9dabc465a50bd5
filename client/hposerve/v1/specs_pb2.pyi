from google.protobuf import struct_pb2 as _struct_pb2
from hposerve.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SamplerSpec(_message.Message):
    __slots__ = ("tpe", "random", "grid", "cmaes", "gp", "qmc", "nsga2", "nsga3", "bruteforce")
    TPE_FIELD_NUMBER: _ClassVar[int]
    RANDOM_FIELD_NUMBER: _ClassVar[int]
    GRID_FIELD_NUMBER: _ClassVar[int]
    CMAES_FIELD_NUMBER: _ClassVar[int]
    GP_FIELD_NUMBER: _ClassVar[int]
    QMC_FIELD_NUMBER: _ClassVar[int]
    NSGA2_FIELD_NUMBER: _ClassVar[int]
    NSGA3_FIELD_NUMBER: _ClassVar[int]
    BRUTEFORCE_FIELD_NUMBER: _ClassVar[int]
    tpe: TpeSampler
    random: RandomSampler
    grid: GridSampler
    cmaes: CmaEsSampler
    gp: GpSampler
    qmc: QmcSampler
    nsga2: NsgaIISampler
    nsga3: NsgaIIISampler
    bruteforce: BruteForceSampler
    def __init__(self, tpe: _Optional[_Union[TpeSampler, _Mapping]] = ..., random: _Optional[_Union[RandomSampler, _Mapping]] = ..., grid: _Optional[_Union[GridSampler, _Mapping]] = ..., cmaes: _Optional[_Union[CmaEsSampler, _Mapping]] = ..., gp: _Optional[_Union[GpSampler, _Mapping]] = ..., qmc: _Optional[_Union[QmcSampler, _Mapping]] = ..., nsga2: _Optional[_Union[NsgaIISampler, _Mapping]] = ..., nsga3: _Optional[_Union[NsgaIIISampler, _Mapping]] = ..., bruteforce: _Optional[_Union[BruteForceSampler, _Mapping]] = ...) -> None: ...

class TpeSampler(_message.Message):
    __slots__ = ("seed", "n_startup_trials", "n_ei_candidates", "multivariate", "group", "constant_liar", "prior_weight", "consider_prior", "consider_magic_clip", "consider_endpoints")
    SEED_FIELD_NUMBER: _ClassVar[int]
    N_STARTUP_TRIALS_FIELD_NUMBER: _ClassVar[int]
    N_EI_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MULTIVARIATE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSTANT_LIAR_FIELD_NUMBER: _ClassVar[int]
    PRIOR_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONSIDER_PRIOR_FIELD_NUMBER: _ClassVar[int]
    CONSIDER_MAGIC_CLIP_FIELD_NUMBER: _ClassVar[int]
    CONSIDER_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    seed: int
    n_startup_trials: int
    n_ei_candidates: int
    multivariate: bool
    group: bool
    constant_liar: bool
    prior_weight: float
    consider_prior: bool
    consider_magic_clip: bool
    consider_endpoints: bool
    def __init__(self, seed: _Optional[int] = ..., n_startup_trials: _Optional[int] = ..., n_ei_candidates: _Optional[int] = ..., multivariate: _Optional[bool] = ..., group: _Optional[bool] = ..., constant_liar: _Optional[bool] = ..., prior_weight: _Optional[float] = ..., consider_prior: _Optional[bool] = ..., consider_magic_clip: _Optional[bool] = ..., consider_endpoints: _Optional[bool] = ...) -> None: ...

class RandomSampler(_message.Message):
    __slots__ = ("seed",)
    SEED_FIELD_NUMBER: _ClassVar[int]
    seed: int
    def __init__(self, seed: _Optional[int] = ...) -> None: ...

class GridAxis(_message.Message):
    __slots__ = ("name", "values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    values: _containers.RepeatedCompositeFieldContainer[_types_pb2.Value]
    def __init__(self, name: _Optional[str] = ..., values: _Optional[_Iterable[_Union[_types_pb2.Value, _Mapping]]] = ...) -> None: ...

class GridSampler(_message.Message):
    __slots__ = ("search_space", "seed")
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    search_space: _containers.RepeatedCompositeFieldContainer[GridAxis]
    seed: int
    def __init__(self, search_space: _Optional[_Iterable[_Union[GridAxis, _Mapping]]] = ..., seed: _Optional[int] = ...) -> None: ...

class CmaEsSampler(_message.Message):
    __slots__ = ("seed", "sigma0", "n_startup_trials", "restart_strategy", "popsize", "inc_popsize", "consider_pruned_trials", "use_separable_cma", "with_margin", "lr_adapt", "x0", "source_study")
    SEED_FIELD_NUMBER: _ClassVar[int]
    SIGMA0_FIELD_NUMBER: _ClassVar[int]
    N_STARTUP_TRIALS_FIELD_NUMBER: _ClassVar[int]
    RESTART_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    POPSIZE_FIELD_NUMBER: _ClassVar[int]
    INC_POPSIZE_FIELD_NUMBER: _ClassVar[int]
    CONSIDER_PRUNED_TRIALS_FIELD_NUMBER: _ClassVar[int]
    USE_SEPARABLE_CMA_FIELD_NUMBER: _ClassVar[int]
    WITH_MARGIN_FIELD_NUMBER: _ClassVar[int]
    LR_ADAPT_FIELD_NUMBER: _ClassVar[int]
    X0_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STUDY_FIELD_NUMBER: _ClassVar[int]
    seed: int
    sigma0: float
    n_startup_trials: int
    restart_strategy: str
    popsize: int
    inc_popsize: int
    consider_pruned_trials: bool
    use_separable_cma: bool
    with_margin: bool
    lr_adapt: bool
    x0: _struct_pb2.Struct
    source_study: str
    def __init__(self, seed: _Optional[int] = ..., sigma0: _Optional[float] = ..., n_startup_trials: _Optional[int] = ..., restart_strategy: _Optional[str] = ..., popsize: _Optional[int] = ..., inc_popsize: _Optional[int] = ..., consider_pruned_trials: _Optional[bool] = ..., use_separable_cma: _Optional[bool] = ..., with_margin: _Optional[bool] = ..., lr_adapt: _Optional[bool] = ..., x0: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source_study: _Optional[str] = ...) -> None: ...

class GpSampler(_message.Message):
    __slots__ = ("seed", "n_startup_trials", "deterministic_objective")
    SEED_FIELD_NUMBER: _ClassVar[int]
    N_STARTUP_TRIALS_FIELD_NUMBER: _ClassVar[int]
    DETERMINISTIC_OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    seed: int
    n_startup_trials: int
    deterministic_objective: bool
    def __init__(self, seed: _Optional[int] = ..., n_startup_trials: _Optional[int] = ..., deterministic_objective: _Optional[bool] = ...) -> None: ...

class QmcSampler(_message.Message):
    __slots__ = ("seed", "qmc_type", "scramble")
    SEED_FIELD_NUMBER: _ClassVar[int]
    QMC_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCRAMBLE_FIELD_NUMBER: _ClassVar[int]
    seed: int
    qmc_type: str
    scramble: bool
    def __init__(self, seed: _Optional[int] = ..., qmc_type: _Optional[str] = ..., scramble: _Optional[bool] = ...) -> None: ...

class NsgaIISampler(_message.Message):
    __slots__ = ("seed", "population_size", "mutation_prob", "crossover", "crossover_prob", "swapping_prob")
    SEED_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    MUTATION_PROB_FIELD_NUMBER: _ClassVar[int]
    CROSSOVER_FIELD_NUMBER: _ClassVar[int]
    CROSSOVER_PROB_FIELD_NUMBER: _ClassVar[int]
    SWAPPING_PROB_FIELD_NUMBER: _ClassVar[int]
    seed: int
    population_size: int
    mutation_prob: float
    crossover: str
    crossover_prob: float
    swapping_prob: float
    def __init__(self, seed: _Optional[int] = ..., population_size: _Optional[int] = ..., mutation_prob: _Optional[float] = ..., crossover: _Optional[str] = ..., crossover_prob: _Optional[float] = ..., swapping_prob: _Optional[float] = ...) -> None: ...

class NsgaIIISampler(_message.Message):
    __slots__ = ("seed", "population_size", "mutation_prob", "crossover", "crossover_prob", "swapping_prob", "dividing_parameter")
    SEED_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    MUTATION_PROB_FIELD_NUMBER: _ClassVar[int]
    CROSSOVER_FIELD_NUMBER: _ClassVar[int]
    CROSSOVER_PROB_FIELD_NUMBER: _ClassVar[int]
    SWAPPING_PROB_FIELD_NUMBER: _ClassVar[int]
    DIVIDING_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    seed: int
    population_size: int
    mutation_prob: float
    crossover: str
    crossover_prob: float
    swapping_prob: float
    dividing_parameter: int
    def __init__(self, seed: _Optional[int] = ..., population_size: _Optional[int] = ..., mutation_prob: _Optional[float] = ..., crossover: _Optional[str] = ..., crossover_prob: _Optional[float] = ..., swapping_prob: _Optional[float] = ..., dividing_parameter: _Optional[int] = ...) -> None: ...

class BruteForceSampler(_message.Message):
    __slots__ = ("seed", "avoid_premature_stop")
    SEED_FIELD_NUMBER: _ClassVar[int]
    AVOID_PREMATURE_STOP_FIELD_NUMBER: _ClassVar[int]
    seed: int
    avoid_premature_stop: bool
    def __init__(self, seed: _Optional[int] = ..., avoid_premature_stop: _Optional[bool] = ...) -> None: ...

class PrunerSpec(_message.Message):
    __slots__ = ("median", "percentile", "successive_halving", "hyperband", "threshold", "patient", "wilcoxon", "none")
    MEDIAN_FIELD_NUMBER: _ClassVar[int]
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    SUCCESSIVE_HALVING_FIELD_NUMBER: _ClassVar[int]
    HYPERBAND_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PATIENT_FIELD_NUMBER: _ClassVar[int]
    WILCOXON_FIELD_NUMBER: _ClassVar[int]
    NONE_FIELD_NUMBER: _ClassVar[int]
    median: MedianPruner
    percentile: PercentilePruner
    successive_halving: SuccessiveHalvingPruner
    hyperband: HyperbandPruner
    threshold: ThresholdPruner
    patient: PatientPruner
    wilcoxon: WilcoxonPruner
    none: NopPruner
    def __init__(self, median: _Optional[_Union[MedianPruner, _Mapping]] = ..., percentile: _Optional[_Union[PercentilePruner, _Mapping]] = ..., successive_halving: _Optional[_Union[SuccessiveHalvingPruner, _Mapping]] = ..., hyperband: _Optional[_Union[HyperbandPruner, _Mapping]] = ..., threshold: _Optional[_Union[ThresholdPruner, _Mapping]] = ..., patient: _Optional[_Union[PatientPruner, _Mapping]] = ..., wilcoxon: _Optional[_Union[WilcoxonPruner, _Mapping]] = ..., none: _Optional[_Union[NopPruner, _Mapping]] = ...) -> None: ...

class MedianPruner(_message.Message):
    __slots__ = ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials")
    N_STARTUP_TRIALS_FIELD_NUMBER: _ClassVar[int]
    N_WARMUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    N_MIN_TRIALS_FIELD_NUMBER: _ClassVar[int]
    n_startup_trials: int
    n_warmup_steps: int
    interval_steps: int
    n_min_trials: int
    def __init__(self, n_startup_trials: _Optional[int] = ..., n_warmup_steps: _Optional[int] = ..., interval_steps: _Optional[int] = ..., n_min_trials: _Optional[int] = ...) -> None: ...

class PercentilePruner(_message.Message):
    __slots__ = ("percentile", "n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials")
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    N_STARTUP_TRIALS_FIELD_NUMBER: _ClassVar[int]
    N_WARMUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    N_MIN_TRIALS_FIELD_NUMBER: _ClassVar[int]
    percentile: float
    n_startup_trials: int
    n_warmup_steps: int
    interval_steps: int
    n_min_trials: int
    def __init__(self, percentile: _Optional[float] = ..., n_startup_trials: _Optional[int] = ..., n_warmup_steps: _Optional[int] = ..., interval_steps: _Optional[int] = ..., n_min_trials: _Optional[int] = ...) -> None: ...

class SuccessiveHalvingPruner(_message.Message):
    __slots__ = ("min_resource", "reduction_factor", "min_early_stopping_rate", "bootstrap_count")
    MIN_RESOURCE_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    MIN_EARLY_STOPPING_RATE_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_COUNT_FIELD_NUMBER: _ClassVar[int]
    min_resource: int
    reduction_factor: int
    min_early_stopping_rate: int
    bootstrap_count: int
    def __init__(self, min_resource: _Optional[int] = ..., reduction_factor: _Optional[int] = ..., min_early_stopping_rate: _Optional[int] = ..., bootstrap_count: _Optional[int] = ...) -> None: ...

class HyperbandPruner(_message.Message):
    __slots__ = ("min_resource", "max_resource", "reduction_factor", "bootstrap_count")
    MIN_RESOURCE_FIELD_NUMBER: _ClassVar[int]
    MAX_RESOURCE_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_COUNT_FIELD_NUMBER: _ClassVar[int]
    min_resource: int
    max_resource: int
    reduction_factor: int
    bootstrap_count: int
    def __init__(self, min_resource: _Optional[int] = ..., max_resource: _Optional[int] = ..., reduction_factor: _Optional[int] = ..., bootstrap_count: _Optional[int] = ...) -> None: ...

class ThresholdPruner(_message.Message):
    __slots__ = ("lower", "upper", "n_warmup_steps", "interval_steps")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    N_WARMUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    lower: float
    upper: float
    n_warmup_steps: int
    interval_steps: int
    def __init__(self, lower: _Optional[float] = ..., upper: _Optional[float] = ..., n_warmup_steps: _Optional[int] = ..., interval_steps: _Optional[int] = ...) -> None: ...

class PatientPruner(_message.Message):
    __slots__ = ("wrapped_pruner", "patience", "min_delta")
    WRAPPED_PRUNER_FIELD_NUMBER: _ClassVar[int]
    PATIENCE_FIELD_NUMBER: _ClassVar[int]
    MIN_DELTA_FIELD_NUMBER: _ClassVar[int]
    wrapped_pruner: PrunerSpec
    patience: int
    min_delta: float
    def __init__(self, wrapped_pruner: _Optional[_Union[PrunerSpec, _Mapping]] = ..., patience: _Optional[int] = ..., min_delta: _Optional[float] = ...) -> None: ...

class WilcoxonPruner(_message.Message):
    __slots__ = ("p_threshold", "n_startup_steps")
    P_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    N_STARTUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    p_threshold: float
    n_startup_steps: int
    def __init__(self, p_threshold: _Optional[float] = ..., n_startup_steps: _Optional[int] = ...) -> None: ...

class NopPruner(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
