"""The sampling process's side (see ``_sampling``): it reads the storage, samples, answers.

It runs ``main`` in a process of its own. It only reads the storage: what its samplers write
goes to the provisional trial the server then stores.
"""

from __future__ import annotations

import collections
import pickle
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection

import optuna
from optuna.storages import BaseStorage

from hposerve.server.domain import _optuna, _specs
from hposerve.server.domain._consistency import one_call
from hposerve.server.domain._cpus import unpin_child
from hposerve.server.domain._sampling import SampleRequest
from hposerve.v1 import specs_pb2

__all__ = ["main"]

# Studies kept loaded (their samplers' state); the least recently used goes first.
_MAX_STUDIES = 256


def main(conn: Connection) -> None:
    """Serves sample requests on ``conn`` until it closes or sends None.

    The first message is the mirror: how to open the server's storage for reading.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the server logs what matters
    try:
        mirror: Callable[[], BaseStorage] = conn.recv()
        storage = mirror()
    except Exception as e:
        conn.send((False, _picklable(e)))
        return
    conn.send((True, None))
    studies: collections.OrderedDict[int, optuna.Study] = collections.OrderedDict()
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return  # the server is gone
        if request is None:
            return
        try:
            conn.send((True, _sample(storage, studies, request)))
        except Exception as e:
            conn.send((False, _picklable(e)))


@one_call  # one read of the storage per ask, however many reads the sampler makes
def _sample(
    storage: BaseStorage,
    studies: collections.OrderedDict[int, optuna.Study],
    request: SampleRequest,
) -> _optuna.Sampled:
    study = studies.get(request.study_id)
    if study is None:
        sampler = _specs.build_sampler(
            specs_pb2.SamplerSpec.FromString(request.sampler), n_objectives=request.n_objectives
        )
        study = optuna.load_study(study_name=request.study_name, storage=storage, sampler=sampler)
        if _optuna.study_id_of(study) != request.study_id:
            raise KeyError(f"{request.study_name} was replaced")  # the server finds out why
        studies[request.study_id] = study
        while len(studies) > _MAX_STUDIES:
            studies.popitem(last=False)
    studies.move_to_end(request.study_id)
    _, sampled = _optuna.sample_new(
        study, request.space, system_attrs=request.system_attrs, number=request.number
    )
    return sampled


def _picklable(error: Exception) -> Exception:
    """``error`` if it survives pickling (the server re-raises it), else a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


if __name__ == "__main__":  # started by _sampling with the file descriptor of its socket
    unpin_child()  # a GIL of its own: the CPUs the server had before it took one (``_cpus``)
    main(Connection(int(sys.argv[1])))
