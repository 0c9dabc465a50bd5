"""Many trainers on one study: unique trial numbers, every tell stored, none lost."""

from __future__ import annotations

import threading

from hposerve.client import Client, FloatDistribution, IntDistribution

TRAINERS = 16
TRIALS_EACH = 12


def test_sixteen_concurrent_trainers(target, study_name):
    with Client(target) as setup:
        setup.create_study(name=study_name, sampler={"type": "random", "seed": 0})
    told: dict[int, float] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(TRAINERS)

    def trainer(worker: int) -> None:
        try:
            with Client(target) as client:
                study = client.get_study(study_name)
                start.wait()
                for i in range(TRIALS_EACH):
                    if i % 2:  # half define-by-run, half fixed space
                        trial = study.ask()
                        x = trial.suggest_float("x", 0.0, 1.0)
                        n = trial.suggest_int("n", 1, 4)
                    else:
                        trial = study.ask(
                            {"x": FloatDistribution(0.0, 1.0), "n": IntDistribution(1, 4)}
                        )
                        x, n = trial.params["x"], trial.params["n"]
                    trial.report(x, 0)
                    value = x * n + worker
                    study.tell(trial, value)
                    with lock:
                        assert trial.number not in told, f"trial {trial.number} handed out twice"
                        told[trial.number] = value
        except BaseException as e:  # surfaced below: a thread's assertion must fail the test
            errors.append(e)

    threads = [threading.Thread(target=trainer, args=(w,)) for w in range(TRAINERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

    with Client(target) as check:
        trials = check.get_study(study_name).trials
    assert sorted(told) == list(range(TRAINERS * TRIALS_EACH))
    assert len(trials) == TRAINERS * TRIALS_EACH
    assert all(t.state == "complete" for t in trials)
    assert {t.number: t.value for t in trials} == told
