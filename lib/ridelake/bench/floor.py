"""The engine floor: every notebook's code cells run one after another in ONE plain Python process.

What a run costs without kernels, papermill or parallelism: the notebooks of ``pipeline.yaml`` in
pipeline order, each with the parameters the runner would pass (the same planning code) injected
as papermill would inject them (papermill's own ``parameterize_notebook``), the environment the
runner gives a kernel, the notebook's folder as working directory, and the real catalog reads
and writes. Each notebook gets a fresh namespace; modules stay imported (paid once, as a warm
kernel does). IPython magics (``%matplotlib inline``) are skipped; figures are drawn with Agg and
rendered to PNG after each cell, as the inline backend does, then closed. ``display()`` outside a
kernel prints plain text.

Usage: ``python -m ridelake.bench.floor [-p key=value ...]`` in a project (``RIDELAKE_HOME``);
prints the seconds per notebook as JSON, and on stderr each notebook's peak resident memory
(``VmHWM``, reset before each notebook on Linux), which shows where a run's memory goes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from typing import Any, Callable, Mapping, Sequence
from ridelake.core.dag import load_pipeline
from ridelake.core.procmem import peak_mib, reset_peak
from ridelake.core.protocol import ENV
from ridelake.core.runner import Stage, params_hash, plan_stage, resolve_params
from ridelake.tables.adapter import RideBookings
from ridelake.cli import parse_assignments

__all__ = ["code_of", "run", "main"]


def code_of(nb: Any, parameters: Mapping[str, Any]) -> list[str]:
    """The code cells of a notebook, with papermill's injected-parameters cell, magics removed.

    Args:
        nb: the notebook as :func:`papermill.iorw.load_notebook_node` reads it.
        parameters: the values to inject (none: the notebook as it is).

    Returns:
        The sources to run, in order.
    """
    from papermill.parameterize import parameterize_notebook  # heavy; the floor only

    if parameters:
        nb = parameterize_notebook(nb, dict(parameters), kernel_name="python3", language="python")
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        out.append("\n".join(lines))
    return out


def _render_figures() -> None:
    """Draw every open figure to PNG (what the inline backend shows), then close them."""
    import matplotlib.pyplot as plt  # heavy (matplotlib): only for the chart

    for num in plt.get_fignums():
        plt.figure(num).savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close("all")


def run(overrides: Mapping[str, Any], log: Callable[[str], None] | None = None) -> dict[str, float]:
    """Run the whole pipeline of the current project in this process.

    Args:
        overrides: ``-p`` values, as for ``ridelake run``.
        log: called with a line per notebook (seconds and peak memory), if given.

    Returns:
        Notebook -> seconds.

    Raises:
        Exception: whatever a notebook's code raises (the floor stops there).
    """
    import matplotlib  # heavy (matplotlib): only for the chart

    matplotlib.use("Agg")
    from papermill.iorw import load_notebook_node  # reads a notebook as papermill.execute_notebook does


    project = RideBookings()
    pipe = load_pipeline(project.root)
    params = resolve_params(project, None, overrides)
    base_env = dict(os.environ)
    seconds: dict[str, float] = {}
    for node in plan_stage(pipe, Stage("floor"), params):
        t0 = time.perf_counter()
        reset_peak()
        spec = node.spec
        os.environ.clear()
        os.environ.update(base_env)
        os.environ.update({ENV.RUN_ID: "floor", ENV.NOTEBOOK: spec.name, ENV.KEY: node.key, ENV.HOME: str(project.root),
                           ENV.PARAMS_HASH: params_hash(node.params), ENV.ATTEMPT: "1",
                           ENV.READS: ",".join(spec.reads), ENV.WRITES: ",".join(spec.writes),
                           **project.kernel_env()})
        os.environ.pop(ENV.RECEIPT_FILE, None)
        os.chdir(spec.path.parent)
        namespace: dict[str, Any] = {"__name__": "__main__"}
        for source in code_of(load_notebook_node(str(spec.path)), node.params):
            exec(compile(source, f"{spec.name}.ipynb", "exec"), namespace)  # noqa: S102 - the notebooks' own code
            _render_figures()
        seconds[node.key] = round(time.perf_counter() - t0, 3)
        if log is not None:
            log(f"{node.key:<40} {seconds[node.key]:8.2f} s  peak {peak_mib() or 0:8.0f} MiB")
    os.environ.clear()
    os.environ.update(base_env)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see the module doc)."""

    parser = argparse.ArgumentParser(prog="python -m ridelake.bench.floor", description=__doc__.splitlines()[0])
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    print(json.dumps(run(parse_assignments(args.param), log=lambda line: print(line, file=sys.stderr, flush=True))))
    return 0


if __name__ == "__main__":
    from ridelake.core.startup import lean_imports

    lean_imports()  # the command line's start-up: the floor counts the notebooks' work, not nbformat's checkers
    raise SystemExit(main())
