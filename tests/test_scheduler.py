"""The scheduler on fake, fast notebooks (no kernels)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ridelake.core.engine import Outcome, Task, ThreadExecutor
from ridelake.errors import ConfigError
from ridelake.core.scheduler import FAILED, SKIPPED, SUCCEEDED, Listener, Node, Scheduler


class FakeEngine:
    """Records calls; sleeps, waits at barriers or fails as told."""

    def __init__(self, fail: dict[str, int] | None = None, barrier: dict[str, threading.Barrier] | None = None,
                 sleep: dict[str, float] | None = None) -> None:
        self.fail = fail or {}  # key -> failing attempts (-1: always)
        self.barrier = barrier or {}
        self.sleep = sleep or {}
        self.final: set[str] = set()  # keys whose failures are not worth retrying
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def execute(self, task: Task) -> Outcome:
        start = time.time()
        with self._lock:
            self.calls.append((task.key, task.attempt))
        if task.key in self.barrier:
            self.barrier[task.key].wait(timeout=10)
        time.sleep(self.sleep.get(task.key, 0.0))
        n = self.fail.get(task.key, 0)
        ok = not (n < 0 or task.attempt <= n)
        if not ok and task.key in self.final:
            return Outcome(False, start, time.time(), f"cell 5: CheckError: {task.key} checks failed",
                           retryable=False)
        return Outcome(ok, start, time.time(), None if ok else f"cell 2: ValueError: {task.key} broke")


def _task(key: str, attempt: int) -> Task:
    return Task(key=key, name=key, input_path=Path("in.ipynb"), output_path=Path("out.ipynb"), attempt=attempt)


def _run(nodes, engine, jobs=2, **kw):
    sched = Scheduler(nodes, ThreadExecutor(engine, jobs), _task, **kw)
    try:
        return sched, sched.run()
    finally:
        sched.executor.close()


DIAMOND = [
    Node("a"),
    Node("b", frozenset({"a"})),
    Node("c", frozenset({"a"})),
    Node("d", frozenset({"b", "c"})),
]


def test_dependency_order() -> None:
    engine = FakeEngine()
    sched, states = _run(DIAMOND, engine, jobs=4)
    assert {k: s.status for k, s in states.items()} == dict.fromkeys("abcd", SUCCEEDED)
    assert states["a"].finished_at <= min(states["b"].started_at, states["c"].started_at)
    assert states["d"].started_at >= max(states["b"].finished_at, states["c"].finished_at)
    assert sched.waves == [["a"], ["b", "c"], ["d"]]


def test_two_notebooks_overlap() -> None:
    barrier = threading.Barrier(2)  # each waits for the other: only passes if they run at once
    engine = FakeEngine(barrier={"b": barrier, "c": barrier}, sleep={"b": 0.05, "c": 0.05})
    sched, states = _run(DIAMOND, engine, jobs=2)
    b, c = states["b"], states["c"]
    assert b.status == c.status == SUCCEEDED
    assert max(b.started_at, c.started_at) < min(b.finished_at, c.finished_at)
    assert sched.peak_running == 2


def test_jobs_limit_is_respected() -> None:
    nodes = [Node(f"n{i}") for i in range(6)]
    engine = FakeEngine(sleep={f"n{i}": 0.02 for i in range(6)})
    sched, states = _run(nodes, engine, jobs=2)
    assert sched.peak_running == 2
    spans = sorted((s.started_at, s.finished_at) for s in states.values())
    for t, _ in spans:  # never more than two running at any start
        assert sum(1 for s, f in spans if s <= t < f) <= 2


def test_a_final_failure_is_not_retried() -> None:
    engine = FakeEngine(fail={"b": -1})
    engine.final = {"b"}
    _, states = _run(DIAMOND, engine, retries=3, retry_delay=0)
    assert states["b"].status == FAILED and len(states["b"].attempts) == 1
    assert [c for c in engine.calls if c[0] == "b"] == [("b", 1)]
    assert "CheckError" in states["b"].error


def test_a_failure_after_a_write_is_not_retried() -> None:
    class WritesThenFails(FakeEngine):
        def execute(self, task: Task) -> Outcome:
            out = super().execute(task)
            if task.key == "b":  # the chart after the commit failed
                out.receipts = [{"op": "read", "table": "x.a"}, {"op": "write", "table": "x.b", "snapshot_id": 7}]
            return out

    engine = WritesThenFails(fail={"b": -1, "c": 1})
    _, states = _run(DIAMOND, engine, retries=2, retry_delay=0)
    assert states["b"].status == FAILED and len(states["b"].attempts) == 1
    assert states["b"].error == "cell 2: ValueError: b broke (after writing x.b; not retried)"
    assert states["c"].status == SUCCEEDED and len(states["c"].attempts) == 2  # no write: retried
    assert states["d"].status == SKIPPED


def test_retry_then_success_records_attempts() -> None:
    events: list[str] = []

    class Rec(Listener):
        def on_retry(self, state, delay):
            events.append(f"retry {state.key} {len(state.attempts)}")

        def on_finish(self, state):
            events.append(f"{state.status} {state.key}")

    engine = FakeEngine(fail={"b": 2})
    _, states = _run(DIAMOND, engine, retries=2, retry_delay=0.01, listener=Rec())
    assert states["b"].status == SUCCEEDED
    assert [a.ok for a in states["b"].attempts] == [False, False, True]
    assert states["b"].attempts[0].error == "cell 2: ValueError: b broke"
    assert states["d"].status == SUCCEEDED
    assert "retry b 1" in events and "retry b 2" in events and "succeeded b" in events
    assert [c for c in engine.calls if c[0] == "b"] == [("b", 1), ("b", 2), ("b", 3)]


def test_failure_skips_only_downstream() -> None:
    nodes = [
        Node("root"),
        Node("bad", frozenset({"root"})),
        Node("bad_child", frozenset({"bad"})),
        Node("bad_grandchild", frozenset({"bad_child"})),
        Node("sibling", frozenset({"root"})),
        Node("sibling_child", frozenset({"sibling"})),
    ]
    engine = FakeEngine(fail={"bad": -1}, sleep={"sibling": 0.05})
    _, states = _run(nodes, engine, retries=1, retry_delay=0)
    got = {k: s.status for k, s in states.items()}
    assert got == {"root": SUCCEEDED, "bad": FAILED, "bad_child": SKIPPED, "bad_grandchild": SKIPPED,
                   "sibling": SUCCEEDED, "sibling_child": SUCCEEDED}
    assert len(states["bad"].attempts) == 2
    assert states["bad_grandchild"].error == "upstream bad failed"
    assert ("bad_child", 1) not in engine.calls


def test_engine_exception_is_a_failure_not_a_hang() -> None:
    class Broken:
        def execute(self, task):
            raise RuntimeError("Kernel didn't respond in 60 seconds")

    _, states = _run([Node("x"), Node("y", frozenset({"x"}))], Broken(), retries=1, retry_delay=0)
    assert states["x"].status == FAILED and len(states["x"].attempts) == 2
    assert "Kernel didn't respond" in states["x"].error
    assert states["y"].status == SKIPPED


def test_failed_kernel_start_is_retried() -> None:
    class FlakyKernel(FakeEngine):
        def execute(self, task):
            if task.attempt == 1:
                raise RuntimeError("Kernel didn't respond in 60 seconds")
            return super().execute(task)

    _, states = _run([Node("x")], FlakyKernel(), retries=2, retry_delay=0.01)
    assert states["x"].status == SUCCEEDED and [a.ok for a in states["x"].attempts] == [False, True]
    assert "Kernel didn't respond" in states["x"].attempts[0].error


def test_task_factory_error_is_a_failed_attempt() -> None:
    def bad_task(key: str, attempt: int) -> Task:
        if key == "x":
            raise OSError("disk full")
        return _task(key, attempt)

    sched = Scheduler([Node("x"), Node("z")], ThreadExecutor(FakeEngine(), 2), bad_task, retries=0)
    states = sched.run()
    sched.executor.close()
    assert states["x"].status == FAILED and "disk full" in states["x"].error
    assert states["z"].status == SUCCEEDED


def test_cycle_and_unknown_deps() -> None:
    with pytest.raises(ConfigError, match="cycle"):
        Scheduler([Node("a", frozenset({"b"})), Node("b", frozenset({"a"}))], ThreadExecutor(FakeEngine(), 1), _task)
    # dependencies outside the run are ignored (they ran earlier or are not selected)
    _, states = _run([Node("a", frozenset({"elsewhere"}))], FakeEngine())
    assert states["a"].status == SUCCEEDED


def test_scheduler_blocks_instead_of_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """While a notebook runs the scheduling thread is parked on its queue, not spinning."""
    import queue

    import ridelake.core.scheduler as mod

    gets = []

    class CountingQueue(queue.SimpleQueue):  # type: ignore[type-arg]
        def get(self, *a, **kw):
            gets.append(kw.get("timeout", a[1] if len(a) > 1 else None))
            return super().get(*a, **kw)

    monkeypatch.setattr(mod, "_EventQueue", CountingQueue)
    _run([Node("slow")], FakeEngine(sleep={"slow": 0.3}))
    assert len(gets) == 2  # one start event, one done event: no polling loop
    assert all(t is None for t in gets)  # and no timeouts


def test_fake_engine_overhead_is_small() -> None:
    """Informative: a 50-node chain on a fake engine (no assertion on wall time)."""
    nodes = [Node(f"n{i}", frozenset({f"n{i-1}"}) if i else frozenset()) for i in range(50)]
    _, states = _run(nodes, FakeEngine(), jobs=2)
    assert all(s.status == SUCCEEDED for s in states.values())


def _start_order(nodes, jobs=1, **kw):
    engine = FakeEngine()
    _run(nodes, engine, jobs=jobs, **kw)
    return [k for k, _ in engine.calls]


def test_the_critical_path_starts_first() -> None:
    # x comes first in the given order, but a has a chain behind it (a -> b -> c)
    nodes = [Node("x"), Node("a"), Node("b", frozenset({"a"})), Node("c", frozenset({"b"}))]
    assert _start_order(nodes)[0] == "a"
    sched = Scheduler(nodes, ThreadExecutor(FakeEngine(), 1), _task)
    try:
        assert sorted(sched.priority(), key=sched.priority().get) == ["a", "b", "x", "c"]
    finally:
        sched.executor.close()


def test_expected_costs_weigh_the_critical_path() -> None:
    # one long notebook outweighs a chain of two short ones once its cost is known
    nodes = [Node("s1"), Node("s2", frozenset({"s1"})), Node("long")]
    assert _start_order(nodes)[0] == "s1"
    assert _start_order(nodes, costs={"s1": 1.0, "s2": 1.0, "long": 5.0})[0] == "long"
    # ties in cost: the node more others wait for first, then the given order
    fan = [Node("p"), Node("q"), Node("q1", frozenset({"q"})), Node("q2", frozenset({"q"})),
           Node("p1", frozenset({"p"}))]
    assert _start_order(fan)[:2] == ["q", "p"]
