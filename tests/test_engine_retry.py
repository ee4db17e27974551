"""Which failures an engine calls retryable: deterministic Python errors from notebook code and
ridelake's final errors are not; a kernel that died, a cell that timed out, a commit conflict and
other errors are.

The first tests build papermill's own exceptions (no kernel); the last ones run real notebooks on
both engines through the scheduler with retries left, and count the attempts (``slow``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from papermill.exceptions import PapermillExecutionError

from fake_project import write_notebook
from ridelake.core.engine import PapermillEngine, Task, ThreadExecutor, WarmEngine
from ridelake.core.engines.base import FINAL_ERRORS, PYTHON_ERRORS, papermill_failure
from ridelake.core.scheduler import FAILED, SUCCEEDED, Node, Scheduler


def _cell_error(ename: str, evalue: str = "boom") -> PapermillExecutionError:
    return PapermillExecutionError(3, 3, "x = 1", ename, evalue, [])


@pytest.mark.parametrize("ename", sorted(PYTHON_ERRORS))
def test_deterministic_python_errors_are_final(ename: str) -> None:
    error, cell, retryable = papermill_failure(_cell_error(ename))
    assert (error, cell, retryable) == (f"cell 3: {ename}: boom", 3, False)


def test_the_deterministic_set_is_the_documented_one() -> None:
    assert PYTHON_ERRORS == {"ValueError", "TypeError", "KeyError", "NameError", "AttributeError",
                             "ZeroDivisionError", "IndexError"}


@pytest.mark.parametrize("ename", ["CheckError", "SourceError", "ParameterError"])
def test_ridelakes_final_errors_stay_final(ename: str) -> None:
    assert ename in FINAL_ERRORS and papermill_failure(_cell_error(ename))[2] is False


@pytest.mark.parametrize("ename", ["RuntimeError", "OSError", "MemoryError", "CommitFailedException",
                                   "ArrowInvalid", "ConnectionError"])
def test_other_cell_errors_stay_retryable(ename: str) -> None:
    assert papermill_failure(_cell_error(ename))[2] is True


def test_dead_kernels_and_timeouts_stay_retryable() -> None:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    for exc in (DeadKernelError("Kernel died"), CellTimeoutError("Cell execution timed out"), OSError("disk")):
        error, cell, retryable = papermill_failure(exc)
        assert cell is None and retryable is True and error.startswith(type(exc).__name__)


# -- real kernels ---------------------------------------------------------------------------------

def _attempts(tmp_path: Path, engine, body: str, retries: int = 2):
    write_notebook(tmp_path / "nb.ipynb", None, body=body)
    pool = ThreadExecutor(engine, 1)

    def task(key: str, attempt: int) -> Task:
        out = tmp_path / "out"
        return Task(key=key, name=key, input_path=tmp_path / "nb.ipynb", output_path=out / f"{key}.{attempt}.ipynb",
                    attempt=attempt, cwd=tmp_path, receipt_path=out / f"{key}.{attempt}.jsonl",
                    log_path=out / f"{key}.{attempt}.log")

    try:
        return Scheduler([Node("nb")], pool, task, retries=retries, retry_delay=0).run()["nb"]
    finally:
        pool.close()


@pytest.mark.slow
@pytest.mark.parametrize("fresh", [False, True], ids=["warm", "fresh"])
def test_a_value_error_in_a_notebook_fails_once(tmp_path: Path, fresh: bool) -> None:
    engine = PapermillEngine() if fresh else WarmEngine(1)
    state = _attempts(tmp_path, engine, "x = {'a': 1}\nraise ValueError('bad value ' + str(x['a']))")
    assert state.status == FAILED and len(state.attempts) == 1
    assert state.error == "cell 0: ValueError: bad value 1"  # the only cell


@pytest.mark.slow
def test_a_runtime_error_and_a_dead_kernel_are_still_retried(tmp_path: Path) -> None:
    state = _attempts(tmp_path / "a", WarmEngine(1), "raise RuntimeError('maybe next time')")
    assert state.status == FAILED and len(state.attempts) == 3
    marker = tmp_path / "killed-once"
    body = (f"import os, pathlib, signal\nm = pathlib.Path({str(marker)!r})\n"
            f"if not m.exists():\n    m.touch()\n    os.kill(os.getpid(), {int(signal.SIGKILL)})\nprint('ok')")
    state = _attempts(tmp_path / "b", WarmEngine(1), body)
    assert state.status == SUCCEEDED and len(state.attempts) == 2
    assert "DeadKernelError" in (state.attempts[0].error or "") and os.path.exists(marker)
