"""Keep the command line's start-up lean (imported first by ``python -m ridelake``).

papermill imports nbformat, which imports jsonschema, whose format checkers import
``rfc3987_syntax`` when it is installed (JupyterLab's ``jupyter-events`` brings it): that builds
about forty Lark grammars at import, 0.8-0.9 s of every command's start. The runner's process
validates only notebooks, and the notebook schemas use no ``format`` at all, so it does without
that one checker, nor the other optional format checkers' packages (``isoduration``,
``webcolors``, ``uri_template``, ``fqdn``). papermill's S3 handler imports ``boto3`` (0.05 s):
the runner reads and writes notebooks on local disk only (an S3 warehouse goes through
``pyarrow.fs`` and pyiceberg, never boto3), so it does without that handler too. Kernels and
JupyterLab are other processes and keep all of them.
"""

from __future__ import annotations

import sys

__all__ = ["SKIPPED_MODULES", "lean_imports"]

#: Optional modules the command line's process does without (see the module doc).
SKIPPED_MODULES = ("rfc3987_syntax", "isoduration", "webcolors", "uri_template", "fqdn", "boto3")


def lean_imports() -> None:
    """Make the optional imports in :data:`SKIPPED_MODULES` fail fast in this process (an
    ``import`` of a name mapped to None in ``sys.modules`` raises ImportError); a module
    already imported is left alone."""
    for name in SKIPPED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
