"""Checking each message of a session before the servicer sees it, answering refusals in-band.

The interceptors that authorize (``_auth``) and that enforce quotas (``_quota_gate``) both
check a session message by message. The servicer answers each request in order, one response
each: a refused message goes on to it as an empty call (answered with an error, changing
nothing), and its answer is replaced by the refusal. Thus the servicer keeps its own stream.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from google.rpc import code_pb2

from hposerve.v1 import study_service_pb2 as pb

__all__ = ["SESSION", "CheckMessage", "gated_session", "outcome_of"]

SESSION = "/hposerve.v1.StudyService/Session"
_EMPTY_CALL = pb.SessionRequest()

# A message -> (its in-band refusal or None, what to call with its outcome or None).
CheckMessage = Callable[
    [pb.SessionRequest],
    Awaitable[tuple[pb.SessionResponse | None, Callable[[str], None] | None]],
]


async def gated_session(
    behaviour: Callable[[Any, Any], AsyncIterator[Any]],
    requests: AsyncIterator[pb.SessionRequest],
    context: Any,
    check: CheckMessage,
) -> AsyncIterator[pb.SessionResponse]:
    """The session ``behaviour`` serves, each message first passed through ``check``."""
    pending: collections.deque[tuple[pb.SessionResponse | None, Callable[[str], None] | None]]
    pending = collections.deque()

    async def checked() -> AsyncIterator[pb.SessionRequest]:
        async for request in requests:
            refusal, after = await check(request)
            pending.append((refusal, after))
            yield request if refusal is None else _EMPTY_CALL

    async for response in behaviour(checked(), context):
        refusal, after = pending.popleft() if pending else (None, None)
        answer = refusal if refusal is not None else response
        if after is not None:
            after(outcome_of(answer))
        yield answer


def outcome_of(response: pb.SessionResponse) -> str:
    """The status code's name that a session response stands for."""
    if response.WhichOneof("result") != "error":
        return "OK"
    return (
        code_pb2.Code.Name(response.error.code)
        if response.error.code in code_pb2.Code.values()
        else str(response.error.code)
    )
