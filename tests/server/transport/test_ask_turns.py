"""Asks of one study wait for their turn on the event loop, not on a thread of the pool."""

from __future__ import annotations

import asyncio
import threading
import time

from hposerve.server.transport._trial_calls import Turns


def test_turns_of_one_key_come_one_at_a_time_and_other_keys_do_not_wait() -> None:
    async def run() -> tuple[list[str], int]:
        turns, events, started = Turns(), [], asyncio.Event()

        async def take(key: str, name: str, hold: float) -> None:
            async with turns.turn(key):
                events.append(f"{name} in")
                started.set()
                await asyncio.sleep(hold)
                events.append(f"{name} out")

        first = asyncio.create_task(take("a", "a1", 0.05))
        await started.wait()
        await asyncio.gather(first, take("a", "a2", 0.0), take("b", "b1", 0.0))
        return events, len(turns._locks)

    events, left = asyncio.run(run())
    # b1 ran while a1 held study a's turn; a2 only after a1 was out.
    assert events.index("b1 out") < events.index("a1 out") < events.index("a2 in")
    assert left == 0  # no lock kept for a key nobody waits on


def test_a_turn_is_released_when_its_holder_fails() -> None:
    async def run() -> int:
        turns = Turns()
        try:
            async with turns.turn("a"):
                raise RuntimeError("the ask failed")
        except RuntimeError:
            pass
        left = len(turns._locks)

        async def again() -> None:
            async with turns.turn("a"):
                pass

        await asyncio.wait_for(again(), timeout=5)
        return left

    assert asyncio.run(run()) == 0


def test_queued_asks_leave_the_pool_to_other_calls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A pool of two threads: many asks queued on one study do not hold both."""
    from hposerve.client import Client
    from hposerve.lab._bench_workload import optuna_space
    from hposerve.server.transport import make_server

    server = make_server("127.0.0.1:0", data_dir=tmp_path, max_workers=2).start()
    try:
        target = f"127.0.0.1:{server.port}"
        with Client(target) as client:
            busy = client.create_study(name="busy", sampler={"type": "tpe", "seed": 0})
            other = client.create_study(name="other", sampler={"type": "tpe", "seed": 1})
            for trial in busy.ask_batch(optuna_space(), 20):  # past TPE's random start
                busy.tell(trial, trial.params["dropout"])
            done: list[str] = []
            lock = threading.Lock()

            def ask(study, name: str) -> None:  # type: ignore[no-untyped-def]
                with Client(target) as own:
                    handle = own.get_study(study.name)
                    handle.ask_batch(optuna_space(), 50)
                with lock:
                    done.append(name)

            queued = [threading.Thread(target=ask, args=(busy, f"busy{i}")) for i in range(6)]
            for t in queued:
                t.start()
            time.sleep(0.3)  # all six sent: one samples, the others wait for its lock
            ask(other, "other")
            for t in queued:
                t.join()
        # Served at once, not after the busy study's queue: its waiting asks hold no thread.
        assert done.index("other") <= 2, done
    finally:
        server.stop()
