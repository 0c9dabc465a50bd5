"""The one path every call takes: deadline, metadata, request id, retries, error mapping."""

from __future__ import annotations

import enum
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import Message

from hposerve.v1 import comparison_service_pb2_grpc, study_service_pb2_grpc
from hposerve.v1 import study_service_pb2 as pb

from ._config import ClientConfig
from ._errors import DeadlineExceeded, HposerveError, Unavailable, from_rpc_error, from_status
from ._session import SESSION_FIELDS, Deferred, SessionClosed, Sessions, SessionTimeout

_logger = logging.getLogger("hposerve.client")
_SESSION_PAUSE = 30.0  # seconds of unary calls after the server refused a session


class Retry(enum.Enum):
    """Why a call may be sent again after UNAVAILABLE, when its first answer may be lost."""

    REQUEST_ID = "the server returns the first answer to a retry with the same request id"
    BY_NAME = "idempotent by what it names: doing it twice does it once"
    READ = "a read: it changes nothing"
    NEVER = "not retried"


# Every RPC of StudyService and ComparisonService, and why it is safe to retry (a test checks
# this against the service descriptors: a new RPC needs a decision). A method not here is not
# retried. REQUEST_ID calls carry the request_id field that the transport fills.
RETRY: dict[str, Retry] = {
    # StudyService.
    "CreateStudy": Retry.REQUEST_ID,
    "GetStudy": Retry.READ,
    "ListStudies": Retry.READ,
    "DeleteStudy": Retry.REQUEST_ID,
    "AskTrials": Retry.REQUEST_ID,
    "SuggestParameter": Retry.BY_NAME,  # returns the parameter's value once sampled
    "ReportIntermediateValue": Retry.BY_NAME,  # keeps the first value of a step
    "ReportIntermediateValues": Retry.BY_NAME,  # each report keeps the first value of its step
    "ShouldPrune": Retry.READ,
    "TellTrial": Retry.BY_NAME,  # telling the outcome a trial already has is a no-op
    "TellAndAsk": Retry.BY_NAME,  # the tell by name; the ask by the request id set in it
    "Heartbeat": Retry.BY_NAME,  # renewing a lease again renews it
    "GetTrial": Retry.READ,
    "ListTrials": Retry.READ,
    "EnqueueTrial": Retry.REQUEST_ID,
    "SetTrialUserAttributes": Retry.BY_NAME,  # sets the same values again
    "GetBestTrial": Retry.READ,
    "GetParetoFront": Retry.READ,
    "AddTrials": Retry.REQUEST_ID,
    "GetStudyAttributes": Retry.READ,
    "UpdateStudyAttributes": Retry.BY_NAME,  # sets the same values again
    # A stream, never called as such: each call it carries is retried under its own entry.
    "Session": Retry.NEVER,
    # ComparisonService.
    "CreateComparison": Retry.REQUEST_ID,
    "GetComparison": Retry.READ,
    "ListComparisons": Retry.READ,
    "DeleteComparison": Retry.REQUEST_ID,
    "AskComparisonTrial": Retry.REQUEST_ID,
}


def retried(method: str) -> bool:
    """Whether ``method`` is retried after UNAVAILABLE (see :data:`RETRY`)."""
    return RETRY.get(method, Retry.NEVER) is not Retry.NEVER


def make_channel(
    target: str, config: ClientConfig, credentials: grpc.ChannelCredentials | None
) -> grpc.Channel:
    """Opens a channel to ``target`` with the configured options."""
    options = list(config.channel_options)
    if config.load_balancing:
        service_config: dict[str, Any] = {"loadBalancingConfig": [{config.load_balancing: {}}]}
        options.append(("grpc.service_config", json.dumps(service_config)))
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


class Transport:
    """Calls StudyService and ComparisonService methods. Thread-safe.

    Every call gets a deadline and the metadata (the configured metadata, and the token); a
    request that has a request id field left empty gets a fresh id. The methods that are safe
    to retry (:data:`RETRY`) are retried, re-sending the same request so the server can
    deduplicate it, after UNAVAILABLE with exponential backoff and full jitter, and after
    RESOURCE_EXHAUSTED with a retry delay (a quota) once that delay has passed, if it fits
    in the call's deadline and ``max_retry_delay``. Every gRPC error is raised as an
    :class:`HposerveError`.

    Args:
        channel: The channel to call on.
        config: The client's settings.
        metadata: The metadata of every call; None: ``config.metadata``.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        config: ClientConfig,
        metadata: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        self._channel = channel
        self._config = config
        # Never logged nor shown: it may hold the token.
        self._metadata = (config.metadata if metadata is None else metadata) or None
        self._stub = study_service_pb2_grpc.StudyServiceStub(channel)
        self._comparison_stub = comparison_service_pb2_grpc.ComparisonServiceStub(channel)
        self._closed = threading.Event()
        self._random = random.Random()
        self._sessions = Sessions(
            self._stub, self._metadata, max(config.timeout, config.ask_timeout)
        )
        self._sessions_paused_until = 0.0 if config.sessions else float("inf")
        #: Calls that waited for an answer (each a round trip), for the bench's count.
        self.round_trips = 0

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def call(
        self,
        method: str,
        request: Message,
        *,
        timeout: float | None = None,
        wait_for_quota: bool = True,
    ) -> Any:
        """Calls ``method`` with ``request`` and returns the response.

        Args:
            method: The RPC name, e.g. ``"AskTrials"``.
            request: The request message. A ``request_id`` field left empty is filled in place.
            timeout: Deadline of each attempt in seconds; defaults to ``config.timeout``.
            wait_for_quota: False raises a quota's refusal at once instead of retrying it.

        Raises:
            HposerveError: The call failed (after retries, on a method that is safe to retry).
        """
        if self.closed:
            raise HposerveError("the client is closed", code=grpc.StatusCode.CANCELLED)
        # Set once, before the first attempt, so that retries carry the same id.
        fields = request.DESCRIPTOR.fields_by_name
        if "request_id" in fields and not request.request_id:  # type: ignore[attr-defined]
            request.request_id = uuid.uuid4().hex  # type: ignore[attr-defined]
        deadline = self._config.timeout if timeout is None else timeout
        attempts = self._config.max_attempts if retried(method) else 1
        backoff = self._config.initial_backoff
        attempt = 1
        waited = 0.0  # on quotas, which the deadline bounds
        while True:
            try:
                return self._attempt(method, request, deadline)
            except HposerveError as error:
                if attempt >= attempts:
                    raise
                delay: float | None
                if error.code == grpc.StatusCode.UNAVAILABLE:
                    delay = self._random.uniform(0, min(backoff, self._config.max_backoff))
                elif not wait_for_quota:
                    raise
                else:
                    delay = self._quota_wait(error, deadline - waited)
                    if delay is None:
                        raise
                    waited += delay
                _logger.info(
                    "%s %s (attempt %d of %d), retrying in %.2fs: %s",
                    method,
                    error.code.name,
                    attempt,
                    attempts,
                    delay,
                    error.message,
                )
                # Waiting on the close event lets close() cut a wait short.
                if self._closed.wait(delay):
                    raise
            backoff *= 2
            attempt += 1

    def defer(
        self, method: str, request: Message, on_error: Callable[[HposerveError], None]
    ) -> Any:
        """Sends a session call without waiting for its answer: it is read before this thread's
        next call's; an error in it is handed to ``on_error`` then (never raised here).

        Only for calls that are safe to send twice (a broken stream's unanswered calls are sent
        again, as unary calls, before the next call). Without a session it is a plain call.

        Returns:
            The session it went on (``settle`` it from another thread), or None (answered).
        """
        field = SESSION_FIELDS[method]
        if self.closed or time.monotonic() < self._sessions_paused_until:
            try:
                self.call(method, request)
            except HposerveError as e:
                on_error(e)
            return None
        session = self._sessions.current()
        session.send(Deferred(field, method, request, on_error))
        return session

    def settle(self, session: Any) -> None:
        """Waits until the deferred calls sent on ``session`` are answered (errors handed over).

        On this thread's own session nothing is needed: its next call reads them first.
        """
        if session is None or session is self._sessions.own():
            return
        try:
            session.flush(self._config.timeout)
        except (grpc.RpcError, SessionClosed, SessionTimeout):
            self._drop(session)

    def take_held(self, trial: str) -> list[pb.IntermediateValue]:
        """Takes the reports of ``trial`` this thread's session holds, for its tell to carry."""
        session = self._sessions.own()
        return session.take_held(trial) if session is not None else []

    def send_held(self) -> None:
        """Sends the reports the sessions hold for a batch (the heartbeat thread calls it, so
        that reports wait no longer than a beat when their trainer makes no call)."""
        self._sessions.send_held()

    def _drop(self, session: Any) -> None:
        """Drops a broken session, and sends again (unary) its deferred calls left unanswered
        or held (a batch as one ReportIntermediateValues)."""
        for deferred in self._sessions.drop(session):
            try:
                getattr(self._stub, deferred.method)(
                    deferred.request, timeout=self._config.timeout, metadata=self._metadata
                )
            except grpc.RpcError as e:
                deferred.on_error(from_rpc_error(e))

    def _quota_wait(self, error: HposerveError, budget: float) -> float | None:
        """How long to wait before retrying after ``error``; None: do not retry it."""
        advised = error.retry_delay
        limit = min(budget, self._config.max_retry_delay)
        if error.code != grpc.StatusCode.RESOURCE_EXHAUSTED or advised is None or advised > limit:
            return None
        # A little jitter, so that the callers a quota turned away do not all come back at once.
        return min(limit, advised + self._random.uniform(0, advised / 10))

    def _attempt(self, method: str, request: Message, timeout: float) -> Any:
        """One attempt; every failure raised as an :class:`HposerveError`."""
        try:
            return self._invoke(method, request, timeout, self._metadata)
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from None
        except ValueError:  # grpc raises it for a call on a closed channel
            if self.closed:
                raise HposerveError(
                    "the client is closed", code=grpc.StatusCode.CANCELLED
                ) from None
            raise

    def _invoke(self, method: str, request: Message, timeout: float, metadata: Any) -> Any:
        """One attempt: over this thread's session where the call can go there, else unary."""
        self.round_trips += 1
        field = SESSION_FIELDS.get(method)
        if field is not None and time.monotonic() >= self._sessions_paused_until:
            session = self._sessions.current()
            try:
                response = session.call(field, request, timeout)
            except SessionTimeout:
                self._drop(session)
                raise DeadlineExceeded(
                    f"{method} got no answer within {timeout} s",
                    code=grpc.StatusCode.DEADLINE_EXCEEDED,
                ) from None
            except SessionClosed:
                self._drop(session)
                if self.closed:
                    raise HposerveError(
                        "the client is closed", code=grpc.StatusCode.CANCELLED
                    ) from None
                # Retried like any UNAVAILABLE call, with the same request id.
                raise Unavailable(
                    f"the server closed the session during {method}",
                    code=grpc.StatusCode.UNAVAILABLE,
                ) from None
            except grpc.RpcError as e:
                self._drop(session)
                if e.code() not in (
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    grpc.StatusCode.UNIMPLEMENTED,
                ):
                    raise
                # No session free on the server, or an older server: unary calls for a while.
                _logger.info("sessions unavailable (%s); using unary calls", e.code().name)
                self._sessions_paused_until = time.monotonic() + _SESSION_PAUSE
            else:
                if response.WhichOneof("result") == "error":
                    raise from_status(response.error)
                return getattr(response, field)
        stub = self._stub if hasattr(self._stub, method) else self._comparison_stub
        return getattr(stub, method)(request, timeout=timeout, metadata=metadata)

    def pages(self, method: str, request: Message, items: str) -> Iterator[Any]:
        """Yields the ``items`` of every page of a List call, following next_page_token."""
        while True:
            response = self.call(method, request)
            yield from getattr(response, items)
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token  # type: ignore[attr-defined]

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled, later calls fail."""
        self._closed.set()
        self._sessions.close()
        self._channel.close()
