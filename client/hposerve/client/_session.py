"""Sessions: one thread's trial calls over one ``StudyService.Session`` stream.

A unary gRPC call costs a few hundred microseconds of CPU on each side in Python; a message on
an open stream costs a fraction of that. Trainers make many small calls (a report per epoch),
so the calls a trial makes go over a stream per thread, one request and its response at a time.
Each thread has its own stream, so calls from several threads never wait on one another.

The client's heartbeat thread has its own session, like any other thread.

A stream that breaks is dropped and the call goes through the transport's usual retry (every
call that goes over a session is safe to send twice: an ask carries a request id, the others
are idempotent by the trial they name). A server that has no session free, or does not know
sessions, gets unary calls from then on.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import grpc

from hposerve.v1 import study_service_pb2 as pb

# Unary method name -> its field in SessionRequest/SessionResponse.
SESSION_FIELDS = {
    "AskTrials": "ask_trials",
    "SuggestParameter": "suggest_parameter",
    "ReportIntermediateValue": "report_intermediate_value",
    "ShouldPrune": "should_prune",
    "TellTrial": "tell_trial",
    "SetTrialUserAttributes": "set_trial_user_attributes",
    "Heartbeat": "heartbeat",
}
_END = None  # ends the request stream
# A session is replaced (between calls, never during one) after this long, so that its stream
# can carry a deadline like every other call.
LIFETIME = 600.0


class SessionTimeout(Exception):
    """The session call took longer than its deadline; the stream was cancelled."""


class SessionClosed(Exception):
    """The server ended the session (it is stopping): the call may be sent again."""


class Session:
    """One stream; one call at a time (it belongs to one thread)."""

    def __init__(self, stub: Any, metadata: Any, max_call: float) -> None:
        self._requests: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
        self._responses = stub.Session(
            iter(self._requests.get, _END), metadata=metadata, timeout=LIFETIME + max_call
        )
        self.expires = time.monotonic() + LIFETIME
        self.deadline = float("inf")  # monotonic time the current call must answer by
        self.timed_out = False

    def call(self, field: str, request: Any, timeout: float) -> pb.SessionResponse:
        """Sends one request and waits for its response.

        Raises:
            grpc.RpcError: The stream failed (the session is then unusable).
            SessionTimeout: No response within ``timeout`` seconds.
        """
        self.deadline = time.monotonic() + timeout
        self._requests.put(pb.SessionRequest(**{field: request}))
        try:
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

    def drop(self, session: Session) -> None:
        """Forgets a broken session; this thread's next call opens a new one."""
        if getattr(self._local, "session", None) is session:
            self._local.session = None
        with self._lock:
            self._all.discard(session)
        session.close()

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
            session.close()
