"""Sessions: one thread's trial calls over one ``StudyService.Session`` stream.

A unary gRPC call costs a few hundred microseconds of CPU on each side in Python; a message on
an open stream costs a fraction of that. Trainers make many small calls (a report per epoch),
so the calls a trial makes go over a stream per thread, one request and its response at a time.
Each thread has its own stream, so calls from several threads never wait on one another.

The client's heartbeat thread has its own session, like any other thread.

Deferred reports (a study that never prunes) are held, not sent: the tell of their trial
carries them (``take_held``), and otherwise they go out as one batch
(``ReportIntermediateValues``) just before the session's next waiting call, when another thread
settles the session, at the heartbeat thread's next beat, or when the client closes. A trial
whose reports and tell come from one thread thus costs the tell's message alone, however many
reports it makes.

A stream that breaks is dropped and the call goes through the transport's usual retry (every
call that goes over a session is safe to send twice: an ask carries a request id, the others
are idempotent by the trial they name). A server that has no session free, or does not know
sessions, gets unary calls from then on.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from hposerve.v1 import study_service_pb2 as pb

from ._errors import HposerveError, from_status

# Unary method name -> its field in SessionRequest/SessionResponse.
SESSION_FIELDS = {
    "AskTrials": "ask_trials",
    "SuggestParameter": "suggest_parameter",
    "ReportIntermediateValue": "report_intermediate_value",
    "ShouldPrune": "should_prune",
    "TellTrial": "tell_trial",
    "SetTrialUserAttributes": "set_trial_user_attributes",
    "Heartbeat": "heartbeat",
    "ReportIntermediateValues": "report_intermediate_values",
    "TellAndAsk": "tell_and_ask",
}
# Held reports go out together as this call. MAX_BATCH is the server's limit on one batch
# (MAX_BATCH_REPORTS in hposerve/server/domain/_config.py; a test checks they agree).
_REPORT, _BATCH = "ReportIntermediateValue", "ReportIntermediateValues"
MAX_BATCH = 1000
_END = None  # ends the request stream
# A session is replaced (between calls, never during one) after this long, so that its stream
# can carry a deadline like every other call.
LIFETIME = 600.0


class SessionTimeout(Exception):
    """The session call took longer than its deadline; the stream was cancelled."""


class SessionClosed(Exception):
    """The server ended the session (it is stopping): the call may be sent again."""


#: What a deferred call's error is handed to, once its answer arrives.
OnError = Callable[[HposerveError], None]


class Deferred:
    """A call sent on a session whose answer nobody waits for: kept until it arrives, so that
    it can be sent again (a unary call) if the stream breaks first."""

    __slots__ = ("field", "method", "request", "on_error")

    def __init__(self, field: str, method: str, request: Any, on_error: OnError) -> None:
        self.field = field
        self.method = method
        self.request = request
        self.on_error = on_error


class Session:
    """One stream; one call at a time (it belongs to one thread).

    Besides calls that wait for their answer, a session carries deferred calls (``send``): the
    request goes out (at once, or held and batched: see the module) and the answer is read, in
    order, before the next call's own.

    Its lock makes the order of the messages on the stream the order of ``unanswered``: every
    message is put under it, so another thread may settle the session (``flush``) and the
    heartbeat thread may send its held reports (``send_held``) while its own thread works.
    """

    def __init__(self, stub: Any, metadata: Any, max_call: float) -> None:
        self._requests: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
        self._responses = stub.Session(
            iter(self._requests.get, _END), metadata=metadata, timeout=LIFETIME + max_call
        )
        self.expires = time.monotonic() + LIFETIME
        self.deadline = float("inf")  # monotonic time the current call must answer by
        self.timed_out = False
        self.unanswered: collections.deque[Deferred] = collections.deque()
        # Reports not sent yet, all of one trial.
        self.held: list[Deferred] = []
        # Held by the call being made, and while a message is put; another thread that must
        # see a trial's deferred calls answered (the trial moved threads) reads them under it.
        self._reading = threading.Lock()

    def send(self, deferred: Deferred) -> None:
        """Sends a request without waiting for its answer (read before the next call's); a
        report is held instead (see the module)."""
        with self._reading:
            report = deferred.method == _REPORT
            # One batch has one answer, so one recipient of its error: one trial's reports.
            joins = report and len(self.held) < MAX_BATCH
            if self.held and not (joins and deferred.on_error == self.held[0].on_error):
                self._send_held()
            if report:
                self.held.append(deferred)
            else:
                self._put(deferred)

    def take_held(self, trial: str) -> list[pb.IntermediateValue]:
        """Takes the held reports if they are ``trial``'s, for its tell to carry."""
        with self._reading:
            if not self.held or self.held[0].request.trial != trial:
                return []
            held, self.held = self.held, []
        return [pb.IntermediateValue(step=d.request.step, value=d.request.value) for d in held]

    def send_held(self) -> None:
        """Sends the held reports now (the heartbeat thread does, for a trainer that reports a
        burst and then trains for long). Skipped while the session is busy: a call sends them
        before its own request, a flush too, and the next beat tries again."""
        if self.held and self._reading.acquire(blocking=False):
            try:
                self._send_held()
            finally:
                self._reading.release()

    def _send_held(self) -> None:
        held = self.held
        if len(held) == 1:
            self._put(held[0])
        elif held:
            batch = pb.ReportIntermediateValuesRequest(reports=[d.request for d in held])
            self._put(Deferred(SESSION_FIELDS[_BATCH], _BATCH, batch, held[0].on_error))
        self.held = []

    def _put(self, deferred: Deferred) -> None:
        self._requests.put(pb.SessionRequest(**{deferred.field: deferred.request}))
        self.unanswered.append(deferred)

    def call(self, field: str, request: Any, timeout: float) -> pb.SessionResponse:
        """Sends one request and waits for its response.

        Raises:
            grpc.RpcError: The stream failed (the session is then unusable).
            SessionTimeout: No response within ``timeout`` seconds.
        """
        # Every call of a trial comes this way: the checks below skip work there is none of.
        with self._reading:
            self.deadline = time.monotonic() + timeout
            if self.held:
                self._send_held()  # before the call: a tell must come after its trial's reports
            self._requests.put(pb.SessionRequest(**{field: request}))
            try:
                if self.unanswered:
                    self._read_unanswered()
                return next(self._responses)
            except StopIteration:
                raise SessionClosed() from None  # the server ended the stream (it is stopping)
            except grpc.RpcError as e:
                if self.timed_out:
                    raise SessionTimeout() from None
                if e.code() == grpc.StatusCode.CANCELLED:
                    raise SessionClosed() from None  # cancelled by the server, not by us
                raise
            finally:
                self.deadline = float("inf")

    def _read_unanswered(self) -> None:
        """Reads the answers of the deferred calls sent before the current one."""
        while self.unanswered:
            answer = next(self._responses)
            deferred = self.unanswered.popleft()
            if answer.WhichOneof("result") == "error":
                deferred.on_error(from_status(answer.error))

    def flush(self, timeout: float) -> None:
        """Sends the held reports and waits for the answers of the deferred calls (another
        thread needs them in, or the stream is about to close)."""
        with self._reading:
            self._send_held()
            if not self.unanswered:
                return
            self.deadline = time.monotonic() + timeout
            try:
                self._read_unanswered()
            finally:
                self.deadline = float("inf")

    def take_leftovers(self) -> list[Deferred]:
        """Forgets and returns the deferred calls that may not have reached the server: the
        unanswered ones, then the held ones, in the order they were made."""
        with self._reading:
            leftovers = [*self.unanswered, *self.held]
            self.unanswered.clear()
            self.held = []
        return leftovers

    def cancel_if_late(self, now: float) -> None:
        if now > self.deadline:
            self.timed_out = True
            self._responses.cancel()

    def close(self) -> None:
        self._requests.put(_END)
        self._responses.cancel()


class Sessions:
    """The sessions of one transport: one per thread, and a watchdog for their deadlines."""

    def __init__(self, stub: Any, metadata: Any, max_call: float) -> None:
        self._stub = stub
        self._metadata = metadata
        self._max_call = max_call
        self._local = threading.local()
        self._all: set[Session] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._watchdog: threading.Thread | None = None

    def current(self) -> Session:
        """This thread's session, opened on first use."""
        session = getattr(self._local, "session", None)
        if session is not None and time.monotonic() > session.expires:
            self.drop(session)
            session = None
        if session is None:
            session = Session(self._stub, self._metadata, self._max_call)
            self._local.session = session
            with self._lock:
                self._all.add(session)
                if self._watchdog is None:
                    self._watchdog = threading.Thread(
                        target=self._watch, name="hposerve-session-watchdog", daemon=True
                    )
                    self._watchdog.start()
        return session

    def drop(self, session: Session) -> list[Deferred]:
        """Forgets a broken session; this thread's next call opens a new one.

        Returns its deferred calls unanswered or held: they may not have reached the server.
        """
        if getattr(self._local, "session", None) is session:
            self._local.session = None
        with self._lock:
            self._all.discard(session)
        session.close()
        return session.take_leftovers()

    def own(self) -> Session | None:
        """This thread's session, if it has one open."""
        return getattr(self._local, "session", None)

    def send_held(self) -> None:
        """Sends the reports every session holds (see ``Session.send_held``)."""
        with self._lock:
            sessions = list(self._all)
        for session in sessions:
            session.send_held()

    def _watch(self) -> None:
        # Deadlines are enforced by cancelling the stream: a stream has no per-message deadline.
        while not self._stopped.wait(0.05):
            now = time.monotonic()
            with self._lock:
                sessions = list(self._all)
            for session in sessions:
                session.cancel_if_late(now)

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            sessions, self._all = list(self._all), set()
        for session in sessions:
            if session.unanswered or session.held:  # let deferred calls reach the server
                # The stream may have broken: nothing more can be done at close.
                with contextlib.suppress(Exception):
                    session.flush(timeout=5.0)
            session.close()
