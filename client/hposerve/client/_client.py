"""The client: a channel to the service, and the studies of one namespace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from hposerve.v1 import comparison_service_pb2 as cpb

from ._client_studies import StudyMethods, StudySummary
from ._comparison import Comparison
from ._config import ClientConfig
from ._heartbeat import Heartbeat
from ._names import resolve_comparison
from ._pickling import remember
from ._requests import PrunerArg, SamplerArg, comparison_request, study_options
from ._security import channel_security
from ._study import Study
from ._transport import Transport, make_channel

__all__ = ["Client", "StudySummary"]


class Client(StudyMethods):
    """A connection to an hposerve server.

    Use it as a context manager, or call :meth:`close`. Thread-safe: share one client among
    the threads of a process.

    Example::

        with Client("localhost:50051") as client:
            study = client.create_study(name="mlp", direction="minimize", load_if_exists=True)
            study.optimize(objective, n_trials=50)

    Args:
        target: The server address, e.g. ``"localhost:50051"`` or ``"dns:///hpo.lab:50051"``.
        token: Bearer token (``hps_...``); None: ``config.token``, else ``HPOSERVE_TOKEN``.
        config: Settings; defaults to ``ClientConfig()``.
        credentials: Channel credentials of your own, instead of the config's TLS settings.

    Raises:
        ValueError: A token would go in plaintext beyond loopback (use TLS), or settings clash.
        OSError: A certificate file cannot be read.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        config: ClientConfig | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.target = target
        self.config = config or ClientConfig()
        credentials, metadata = channel_security(
            target, self.config, token=token, credentials=credentials
        )
        channel = make_channel(target, self.config, credentials)
        self._transport = Transport(channel, self.config, metadata)
        self._heartbeat = Heartbeat(self._transport, self.config.heartbeat_interval)
        remember(self)  # so that its studies can be pickled (without the token)

    def __repr__(self) -> str:
        return f"Client({self.target!r}, namespace={self.config.namespace!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stops renewing leases and closes the channel. Idempotent."""
        self._heartbeat.close()
        self._transport.close()

    def refine(
        self,
        *,
        source: Study | str,
        name: str,
        top: int | float = 0.2,
        margin: float = 0.5,
        sampler: SamplerArg = None,
        pruner: PrunerArg = None,
        load_if_exists: bool = False,
    ) -> tuple[Study, dict[str, Any]]:
        """Creates a study searching a space narrowed around the best trials of ``source``.

        Coarse to fine: run a wide (e.g. random, log-uniform) search first, then refine it.
        The source's space is the distributions of its trials (the first seen per name); it is
        narrowed by :func:`~hposerve.client.narrow_space`. The new study has the source's
        direction(s) and is warm-started with the source's complete trials whose parameters
        all lie in the narrowed space: each is enqueued, asked and told its known values, so
        the new study's sampler sees them as evidence. These trials are records of the
        source's evaluations, not new ones; each carries the user attribute
        ``"hposerve:refined_from"`` naming its source trial.

        Example::

            fine, space = client.refine(source="coarse", name="fine", top=0.2,
                                        sampler={"type": "tpe", "seed": 0})
            fine.optimize(objective, n_trials=20, search_space=space)

        Args:
            source: The coarse study, or its (short or resource) name.
            name: Short name of the new study.
            top: How many best trials to narrow around: an int count, or a fraction in
                (0, 1] of the complete trials.
            margin: How far to widen the top trials' range on each side, as a fraction of it.
            sampler: The new study's sampler, e.g. ``{"type": "tpe", "seed": 0}``.
            pruner: The new study's pruner.
            load_if_exists: Return an existing study of that name. If it has trials already,
                it is not warm-started again, and the space returned is that of its trials.

        Returns:
            The new study, and the narrowed space ``{name: distribution}`` to ask it with
            (``study.ask(space)``, ``study.optimize(..., search_space=space)``).

        Raises:
            FailedPrecondition: The source has no complete trial.
            AlreadyExists: The new study exists and ``load_if_exists`` is not set.
        """
        from ._refine import refine_study

        return refine_study(
            self,
            source=source,
            name=name,
            top=top,
            margin=margin,
            sampler=sampler,
            pruner=pruner,
            load_if_exists=load_if_exists,
        )

    # Comparisons.

    def _comparison_name(self, name: str) -> str:
        return resolve_comparison(self.config.namespace, name)

    def create_comparison(
        self,
        *,
        name: str,
        direction: Any = "minimize",
        search_space: Mapping[str, Any],
        arms: Sequence[Any],
        seeds: int,
        trials_per_study: int,
        load_if_exists: bool = False,
        lease_seconds: float | None = None,
        request_id: str | None = None,
    ) -> Comparison:
        """Creates a comparison: one study per (arm, seed), same space and budget.

        See :class:`Comparison` for an example.

        Args:
            name: Short comparison name; member studies are ``{name}.{arm}.s{seed}``.
            direction: ``"minimize"`` or ``"maximize"``.
            search_space: ``{name: distribution}``, the fixed space of every trial.
            arms: Sampler types (``"tpe"``), or dicts ``{"name": ..., "sampler": "tpe" or
                {"type": "tpe", ...}, "pruner": "median" or {...}, "shuffle_grid": bool}``.
                An arm's name defaults to its sampler type. A sampler without a seed gets the
                seed index of each member; one with a seed gets ``seed + index``. A grid
                without axes gets a grid derived from the space for the budget.
            seeds: Member studies per arm.
            trials_per_study: The budget of every member study.
            load_if_exists: Return the existing comparison (same definition) instead of
                raising AlreadyExists; completes one whose creation was interrupted.
            lease_seconds: How long an asked trial lives without a heartbeat; None: 300 s.
            request_id: Idempotency key; a fresh one is made if None.

        Returns:
            The comparison.

        Raises:
            InvalidArgument: A bad definition (unknown sampler, repeated arm name, a grid larger
                than the budget...); nothing is created.
            AlreadyExists: The comparison exists and ``load_if_exists`` is not set.
            FailedPrecondition: It exists with another definition.
        """
        request = comparison_request(
            parent=self.parent,
            name=name,
            direction=direction,
            search_space=search_space,
            arms=arms,
            seeds=seeds,
            trials_per_study=trials_per_study,
            options=study_options(lease_seconds=lease_seconds),
            load_if_exists=load_if_exists,
            request_id=request_id,
        )
        return self._comparison(self._transport.call("CreateComparison", request))

    def get_comparison(self, name: str) -> Comparison:
        """Returns the comparison of that (short or resource) name, with its progress.

        Raises:
            NotFound: No such comparison.
        """
        request = cpb.GetComparisonRequest(name=self._comparison_name(name))
        return self._comparison(self._transport.call("GetComparison", request))

    def list_comparisons(self) -> list[Comparison]:
        """Returns the comparisons of the namespace, fetching them a page at a time."""
        request = cpb.ListComparisonsRequest(parent=self.parent)
        return [
            self._comparison(c)
            for c in self._transport.pages("ListComparisons", request, "comparisons")
        ]

    def delete_comparison(self, name: str) -> None:
        """Deletes the comparison of that (short or resource) name and its member studies.

        Raises:
            NotFound: No such comparison.
        """
        request = cpb.DeleteComparisonRequest(name=self._comparison_name(name))
        self._transport.call("DeleteComparison", request)

    def _comparison(self, proto: cpb.Comparison) -> Comparison:
        return Comparison(self._transport, self._heartbeat, proto)
