"""Reading a study's trials: all of them, one, the best ones (as ``optuna.Study`` reads them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hposerve.v1 import study_service_pb2 as pb

from ._enums import StudyDirection, state_to_proto
from ._names import trial_name
from ._trial import FrozenTrial

if TYPE_CHECKING:
    from ._transport import Transport


class StudyResults:
    """The read side of :class:`~hposerve.client.Study`."""

    _transport: Transport
    resource_name: str
    directions: list[StudyDirection]

    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials in number order."""
        return self.get_trials()

    def get_trials(
        self, deepcopy: bool = True, states: Iterable[Any] | None = None
    ) -> list[FrozenTrial]:
        """Returns the trials in number order, fetching them a page at a time.

        Args:
            deepcopy: Ignored (results are always fresh copies); accepted for Optuna code.
            states: Only trials in these states (``TrialState`` members, ours or Optuna's, or
                names such as ``"complete"``); None for all.
        """
        del deepcopy
        request = pb.ListTrialsRequest(
            parent=self.resource_name, states=[state_to_proto(s) for s in states or ()]
        )
        return [
            FrozenTrial.from_proto(t)
            for t in self._transport.pages("ListTrials", request, "trials")
        ]

    def get_trial(self, number: int) -> FrozenTrial:
        """Returns one trial by number.

        Raises:
            NotFound: No such trial.
        """
        request = pb.GetTrialRequest(name=trial_name(self.resource_name, number))
        return FrozenTrial.from_proto(self._transport.call("GetTrial", request))

    @property
    def best_trial(self) -> FrozenTrial:
        """The best complete trial of a single-objective study; among feasible trials when
        trials have constraints, as in Optuna.

        Raises:
            RuntimeError: The study has several objectives.
            FailedPrecondition: (a ValueError, as Optuna raises) No feasible trial is
                complete yet.
        """
        if len(self.directions) != 1:
            raise RuntimeError("this study has several objectives; use `best_trials`")
        request = pb.GetBestTrialRequest(parent=self.resource_name)
        return FrozenTrial.from_proto(self._transport.call("GetBestTrial", request))

    @property
    def best_value(self) -> float:
        """The objective value of :attr:`best_trial`."""
        value = self.best_trial.value
        assert value is not None
        return value

    @property
    def best_params(self) -> dict[str, Any]:
        """The parameters of :attr:`best_trial`."""
        return self.best_trial.params

    @property
    def best_trials(self) -> list[FrozenTrial]:
        """The Pareto-optimal complete trials (feasible ones when trials have constraints)."""
        request = pb.GetParetoFrontRequest(parent=self.resource_name)
        response = self._transport.call("GetParetoFront", request)
        return [FrozenTrial.from_proto(t) for t in response.trials]

    def delete(self) -> None:
        """Deletes the study and all its trials."""
        self._transport.call("DeleteStudy", pb.DeleteStudyRequest(name=self.resource_name))
