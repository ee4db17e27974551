"""What may run next: the event-driven scheduler.

The scheduler knows nodes (a key and the keys it waits for), not notebooks or kernels. It hands
ready nodes to an :class:`~ridelake.core.engine.Executor` as soon as every dependency has succeeded,
up to ``executor.slots`` at a time, and then **blocks** on a queue fed by the executor's
callbacks (and by retry timers): it never polls.

- A failed attempt is retried up to ``retries`` more times, ``retry_delay`` seconds later (a
  timer re-queues it; the slot is free meanwhile), unless its outcome says another attempt
  cannot help (``Outcome.retryable`` is False, e.g. a failed table check), or its receipts show
  it already wrote a table (a chart failing after the commit): the node fails, "written, then
  failed", and its table is not committed again.
- A node that still fails marks every node depending on it, directly or not, ``skipped``;
  independent nodes go on.
- All state changes happen on the thread that called :meth:`Scheduler.run`, so listeners need
  no locking.
- Optional ``should_run(key) -> bool`` hook: asked once per node **when it becomes ready** (every
  dependency succeeded or is up-to-date in this run), before it takes a slot. ``False`` marks the
  node ``up-to-date`` without submitting anything; it counts as a success for its dependents,
  which are then asked in turn. An exception from the hook means "run it". Retries are not asked.
  The scheduler does not know why a node is up-to-date (see :mod:`ridelake.core.uptodate`).
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ridelake.core.dag import layered
from ridelake.core.engine import Executor, Outcome, Task
from ridelake.core.protocol import OK_STATUSES, Status

__all__ = [
    "PENDING",
    "RUNNING",
    "RETRYING",
    "SUCCEEDED",
    "FAILED",
    "SKIPPED",
    "UP_TO_DATE",
    "DONE_OK",
    "Node",
    "AttemptRecord",
    "NodeState",
    "Listener",
    "MultiListener",
    "Scheduler",
]

# The statuses, by their short names (one definition: :class:`ridelake.core.protocol.Status`).
PENDING, RUNNING, RETRYING = Status.PENDING, Status.RUNNING, Status.RETRYING
SUCCEEDED, FAILED, SKIPPED, UP_TO_DATE = Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.UP_TO_DATE
#: The final statuses that let dependents run.
DONE_OK = OK_STATUSES

#: The queue the scheduler blocks on (a name of its own so tests can count the waits).
_EventQueue = queue.SimpleQueue


@dataclass(frozen=True)
class Node:
    """A unit of scheduling.

    Attributes:
        key: unique id (``silver/customer``; ``silver/booking@2024-03`` for a per-month run).
        deps: keys that must succeed first (keys not scheduled in this run are ignored).
    """

    key: str
    deps: frozenset[str] = frozenset()


@dataclass
class AttemptRecord:
    """One attempt: its number, when it ran, and how it ended."""

    attempt: int
    started_at: float
    finished_at: float
    ok: bool
    error: str | None = None


@dataclass
class NodeState:
    """Where a node is.

    Attributes:
        key: the node.
        status: pending, running, retrying, succeeded, failed, skipped or up-to-date.
        attempts: finished attempts, in order.
        outcome: the last attempt's outcome.
        error: why it failed or was skipped.
        started_at: epoch seconds the first attempt started.
        finished_at: epoch seconds the last attempt ended.
    """

    key: str
    status: str = PENDING
    attempts: list[AttemptRecord] = field(default_factory=list)
    outcome: Outcome | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    running_attempt: int = 0

    @property
    def duration_s(self) -> float | None:
        """Seconds from the first attempt's start to the last one's end (retry delays included)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


class Listener:
    """Hooks called by the scheduler on the scheduling thread. Override what you need."""

    def on_start(self, state: NodeState, attempt: int) -> None:
        """An attempt started."""

    def on_retry(self, state: NodeState, delay: float) -> None:
        """An attempt failed and another one will start ``delay`` seconds from now."""

    def on_finish(self, state: NodeState) -> None:
        """A node ended: ``succeeded`` or ``failed`` for good."""

    def on_skip(self, state: NodeState) -> None:
        """A node was skipped because something it depends on failed."""

    def on_up_to_date(self, state: NodeState) -> None:
        """A node was not run: the ``should_run`` hook found it up-to-date."""


class MultiListener(Listener):
    """Forward every hook to several listeners, in order."""

    def __init__(self, *listeners: Listener | None) -> None:
        self.listeners = [lst for lst in listeners if lst is not None]

    def on_start(self, state: NodeState, attempt: int) -> None:
        for lst in self.listeners:
            lst.on_start(state, attempt)

    def on_retry(self, state: NodeState, delay: float) -> None:
        for lst in self.listeners:
            lst.on_retry(state, delay)

    def on_finish(self, state: NodeState) -> None:
        for lst in self.listeners:
            lst.on_finish(state)

    def on_skip(self, state: NodeState) -> None:
        for lst in self.listeners:
            lst.on_skip(state)

    def on_up_to_date(self, state: NodeState) -> None:
        for lst in self.listeners:
            lst.on_up_to_date(state)


class Scheduler:
    """Run nodes in dependency order, in parallel, with retries.

    Args:
        nodes: the nodes, in a preferred order (ready nodes start critical path first, see
            :meth:`priority`; ties in this order).
        executor: dispatches tasks (its ``slots`` bounds the parallelism).
        make_task: builds the task for ``(key, attempt)``; called on the scheduling thread.
        retries: extra attempts after a failure.
        retry_delay: seconds between a failure and the next attempt.
        listener: hooks for progress and records.
        should_run: asked once per node when it becomes ready; ``False`` marks it ``up-to-date``
            instead of running it (default: every node runs).
        costs: expected seconds per node (e.g. the last run's durations), for :meth:`priority`.

    Raises:
        ConfigError: the dependencies form a cycle.
    """

    def __init__(
        self,
        nodes: Sequence[Node],
        executor: Executor,
        make_task: Callable[[str, int], Task],
        *,
        retries: int = 2,
        retry_delay: float = 1.0,
        listener: Listener | None = None,
        should_run: Callable[[str], bool] | None = None,
        costs: Mapping[str, float] | None = None,
    ) -> None:
        self.order = [n.key for n in nodes]
        if len(set(self.order)) != len(self.order):
            raise ValueError("duplicate node keys")
        keys = set(self.order)
        self.deps = {n.key: set(n.deps) & keys - {n.key} for n in nodes}
        self.waves = layered(self.order, self.deps)  # also rejects cycles
        self.executor = executor
        self.make_task = make_task
        self.retries = max(0, int(retries))
        self.retry_delay = max(0.0, float(retry_delay))
        self.listener = listener or Listener()
        self.should_run = should_run
        self.costs = dict(costs or {})
        self.states = {k: NodeState(k) for k in self.order}
        self.peak_running = 0
        self._dependents: dict[str, list[str]] = {k: [] for k in self.order}
        for k, ds in self.deps.items():
            for d in ds:
                self._dependents[d].append(k)

    def priority(self) -> dict[str, int]:
        """The order in which ready nodes start (lower first): the longest chain still to run
        from a node to the end of the DAG first (the critical path, in :attr:`costs`: expected
        seconds, 1 for a node without one), then the most nodes waiting on it, then the given
        order. With two workers this starts ``bronze/booking``, which every silver notebook
        reads, before a bronze table that only one fact reads."""
        known = [c for c in self.costs.values() if c > 0]
        default = sorted(known)[len(known) // 2] if known else 1.0
        chain: dict[str, float] = {}
        for key in reversed(self._topological()):
            cost = self.costs.get(key, default)
            chain[key] = (cost if cost > 0 else default) + max((chain[c] for c in self._dependents[key]), default=0.0)
        pos = {k: i for i, k in enumerate(self.order)}
        ranked = sorted(self.order, key=lambda k: (-chain[k], -len(self._descendants(k)), pos[k]))
        return {k: i for i, k in enumerate(ranked)}

    def _topological(self) -> list[str]:
        return [k for wave in self.waves for k in wave]

    def _descendants(self, key: str) -> list[str]:
        seen: set[str] = set()
        stack = list(self._dependents[key])
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.add(k)
                stack.extend(self._dependents[k])
        return [k for k in self.order if k in seen]

    def run(self) -> dict[str, NodeState]:
        """Run every node to a final state.

        Returns:
            key -> :class:`NodeState`, every one succeeded, failed, skipped or up-to-date.

        Raises:
            KeyboardInterrupt: re-raised after marking running nodes failed and the rest skipped.
        """
        events: queue.SimpleQueue[tuple[Any, ...]] = _EventQueue()
        index = self.priority()
        waiting = {k: len(ds) for k, ds in self.deps.items()}
        ready: list[tuple[int, str]] = []
        timers: dict[str, threading.Timer] = {}
        running = 0

        def submit(key: str) -> None:
            state = self.states[key]
            attempt = len(state.attempts) + 1
            state.status, state.running_attempt = RUNNING, attempt
            task = self.make_task(key, attempt)
            self.executor.submit(
                task,
                lambda t, k=key, a=attempt: events.put(("start", k, a, t)),
                lambda o, k=key, a=attempt: events.put(("done", k, a, o)),
            )

        try:
            self._make_ready([k for k in self.order if waiting[k] == 0], ready, index, waiting)
            while True:
                while ready and running < self.executor.slots:
                    _, key = heapq.heappop(ready)
                    running += 1
                    self.peak_running = max(self.peak_running, running)
                    try:
                        submit(key)
                    except Exception as exc:  # building the task failed: an attempt that failed
                        events.put(("done", key, self.states[key].running_attempt,
                                    _failed_now(f"cannot start: {type(exc).__name__}: {exc}")))
                if running == 0 and not timers:
                    break
                event = events.get()  # blocks: the only wait in the loop
                kind, key = event[0], event[1]
                state = self.states[key]
                if kind == "start":
                    if state.started_at is None:
                        state.started_at = event[3]
                    self.listener.on_start(state, event[2])
                elif kind == "retry":
                    timers.pop(key, None)
                    heapq.heappush(ready, (index[key], key))
                elif kind == "done":
                    running -= 1
                    self._finished(state, event[2], event[3], timers, events, ready, index, waiting)
        except BaseException:
            for timer in timers.values():
                timer.cancel()
            self.executor.close(cancel=True)
            for key in self.order:
                state = self.states[key]
                if state.status in (RUNNING, RETRYING):
                    state.status, state.error = FAILED, "interrupted"
                elif state.status == PENDING:
                    state.status, state.error = SKIPPED, "run interrupted"
            raise
        return self.states

    def _release(self, key: str, waiting: dict[str, int]) -> list[str]:
        """``key`` ended well: the dependents that now wait for nothing else."""
        out = []
        for child in self._dependents[key]:
            waiting[child] -= 1
            if waiting[child] == 0 and self.states[child].status == PENDING:
                out.append(child)
        return out

    def _make_ready(self, keys: list[str], ready: list[tuple[int, str]], index: dict[str, int],
                    waiting: dict[str, int]) -> None:
        """Queue nodes whose dependencies all ended well, or mark them up-to-date (and go on with
        their dependents) when the ``should_run`` hook says so."""
        pending = sorted(keys, key=index.__getitem__)
        while pending:
            key = pending.pop(0)
            if self._wants_to_run(key):
                heapq.heappush(ready, (index[key], key))
                continue
            state = self.states[key]
            state.status, state.error = UP_TO_DATE, None
            state.started_at = state.finished_at = time.time()
            self.listener.on_up_to_date(state)
            pending = sorted(pending + self._release(key, waiting), key=index.__getitem__)

    def _wants_to_run(self, key: str) -> bool:
        if self.should_run is None:
            return True
        try:
            return bool(self.should_run(key))
        except Exception:  # the hook is an optimisation: when in doubt, run
            return True

    def _finished(self, state: NodeState, attempt: int, outcome: Outcome,
                  timers: dict[str, threading.Timer], events: "queue.SimpleQueue[tuple[Any, ...]]",
                  ready: list[tuple[int, str]], index: dict[str, int], waiting: dict[str, int]) -> None:
        state.attempts.append(AttemptRecord(attempt, outcome.started_at, outcome.finished_at,
                                            outcome.ok, outcome.error))
        state.outcome = outcome
        if state.started_at is None:
            state.started_at = outcome.started_at
        state.finished_at = outcome.finished_at
        if outcome.ok:
            state.status, state.error = SUCCEEDED, None
            self.listener.on_finish(state)
            self._make_ready(self._release(state.key, waiting), ready, index, waiting)
            return
        state.error = outcome.error or "failed"
        wrote = sorted({str(r.get("table")) for r in outcome.receipts if r.get("op") == "write"})
        if wrote:  # its tables are committed: another attempt would only commit them again
            state.error = f"{state.error} (after writing {', '.join(wrote)}; not retried)"
        if outcome.retryable and not wrote and len(state.attempts) <= self.retries:
            state.status = RETRYING
            self.listener.on_retry(state, self.retry_delay)
            if self.retry_delay <= 0:
                heapq.heappush(ready, (index[state.key], state.key))
            else:
                timer = threading.Timer(self.retry_delay, events.put, args=(("retry", state.key),))
                timer.daemon = True
                timers[state.key] = timer
                timer.start()
            return
        state.status = FAILED
        self.listener.on_finish(state)
        for key in self._descendants(state.key):
            child = self.states[key]
            if child.status == PENDING:
                child.status, child.error = SKIPPED, f"upstream {state.key} failed"
                self.listener.on_skip(child)


def _failed_now(error: str) -> Outcome:
    now = time.time()
    return Outcome(False, now, now, error)

