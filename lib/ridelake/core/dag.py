"""The pipeline's dependency graph, read from ``notebooks/pipeline.yaml``.

``pipeline.yaml`` is the one declarative description of the DAG: for each notebook
(``<layer>/<table>``, the file ``notebooks/<layer>/<table>.ipynb``) the datasets it reads and
writes. Notebook B depends on notebook A when B reads a dataset A writes. Datasets are versioned
tables, except those listed under ``handoffs:`` (files one notebook hands to the next, versioned
by the run that wrote them). A notebook's inputs are declared here only: the runner gives each
kernel its declared reads and writes (:data:`~ridelake.core.protocol.Env.READS`), and a project's
read helper refuses anything else. The parameters a notebook accepts are those of its cell tagged
``parameters``, as :func:`papermill.inspect_notebook` finds them (no kernel needed).

Example:
    >>> pipe = load_pipeline()                       # doctest: +SKIP
    >>> pipe.waves()[0]                              # doctest: +SKIP
    ['bronze/prepare']
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from ridelake.core.files import write_atomic
from ridelake.core.project import project_root
from ridelake.errors import ConfigError

__all__ = [
    "parameters_cache",
    "NotebookSpec",
    "Pipeline",
    "load_pipeline",
    "notebook_parameters",
    "layered",
    "key_month",
    "execution_deps",
]


def parameters_cache() -> Path:
    """Where the names of parameters cells already read are kept, by the cell's sha256 (so one
    file serves every project): ``$XDG_CACHE_HOME/ridelake/parameters.json``, else ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ridelake" / "parameters.json"


@dataclass(frozen=True)
class NotebookSpec:
    """One notebook of the pipeline.

    Attributes:
        name: ``<layer>/<table>``, e.g. ``silver/customer``.
        path: absolute path of the ``.ipynb`` file.
        reads: datasets it reads, as listed in pipeline.yaml.
        writes: datasets it writes, as listed in pipeline.yaml.
        parameters: names assigned in its ``parameters`` cell (empty when it has none).
        handoffs: the pipeline's datasets that are not tables.
    """

    name: str
    path: Path
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    handoffs: frozenset[str] = frozenset()

    @property
    def layer(self) -> str:
        """The part of the name before the slash (``silver``)."""
        return self.name.split("/", 1)[0]

    @property
    def table(self) -> str | None:
        """The first table it writes (``bronze/prepare`` -> ``bronze.rejected_row``)."""
        return next((dataset for dataset in self.writes if dataset not in self.handoffs), None)


def notebook_parameters(path: str | Path, cache: dict[str, list[str]] | None = None) -> tuple[str, ...]:
    """The parameter names a notebook declares in its cell tagged ``parameters``.

    Args:
        path: the ``.ipynb`` file.
        cache: sha256 of a parameters cell's text -> its names; consulted and filled (papermill
            takes half a second to import, which a command that runs nothing should not pay).

    Returns:
        The names in the order they appear; empty when no cell is tagged ``parameters``.

    Raises:
        ConfigError: the file is not a notebook or the cell is not valid Python.
    """
    file = Path(path)
    try:
        nb = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{file}: cannot read the notebook: {exc}") from None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or "parameters" not in ((cell.get("metadata") or {}).get("tags") or []):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        try:  # papermill infers names line by line and never complains: fail loudly here
            compile("\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!"))),
                    str(file), "exec")
        except SyntaxError as exc:
            raise ConfigError(f"{file}: the parameters cell is not valid Python: {exc}") from None
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if cache is not None and digest in cache:
            return tuple(cache[digest])
        # heavy (~0.5 s), and needed only for a parameters cell not seen before
        from papermill.translators import PythonTranslator

        # the kernels are IPython, so papermill's Python translator reads the cell as papermill would
        names = tuple(dict.fromkeys(p.name for p in PythonTranslator.inspect({"source": text})))
        if cache is not None:
            cache[digest] = list(names)
        return names
    return ()


def layered(order: Sequence[str], deps: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Group nodes into waves: a node's wave is one past the latest wave of its dependencies.

    Args:
        order: every node, in the order to keep inside a wave.
        deps: node -> the nodes it waits for (nodes outside ``order`` are ignored).

    Returns:
        The waves, first to last.

    Raises:
        ConfigError: the dependencies form a cycle (the message names one).
    """
    known = set(order)
    graph = {n: {d for d in deps.get(n, ()) if d in known and d != n} for n in order}
    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError as exc:
        raise ConfigError(f"the pipeline has a cycle: {' -> '.join(reversed(exc.args[1]))}") from None
    level: dict[str, int] = {}
    while sorter.is_active():
        ready = sorter.get_ready()
        for n in ready:
            level[n] = 1 + max((level[d] for d in graph[n]), default=-1)
        sorter.done(*ready)
    waves: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for n in order:
        waves[level[n]].append(n)
    return waves


def key_month(key: str) -> str | None:
    """The month of a per-month execution key (``silver/booking@2024-03`` -> ``2024-03``), else None."""
    return key.split("@", 1)[1] if "@" in key else None


def execution_deps(pipeline: Pipeline, executions: Sequence[tuple[str, str, str | None]]) -> dict[str, set[str]]:
    """What each planned execution waits for, as the runner links them for the scheduler.

    B waits for every earlier A whose notebook is upstream of B's (the same month, when both are
    per-month executions: every month of an upstream notebook, so that the tables a month reads
    are final and their snapshots can be recorded for freshness) and for earlier executions of
    the same notebook (they write the same table).

    Args:
        pipeline: the DAG.
        executions: ``(key, notebook name, month or None)`` in planned order.

    Returns:
        Key -> the keys it waits for.
    """
    ups = {name: pipeline.upstream(name) for _, name, _ in executions}
    deps: dict[str, set[str]] = {key: set() for key, _, _ in executions}
    for j, (b, b_name, b_month) in enumerate(executions):
        for a, a_name, a_month in executions[:j]:
            if a_name == b_name or a_name in ups[b_name]:
                deps[b].add(a)
    return deps


@dataclass
class Pipeline:
    """The notebooks and their dependencies.

    Attributes:
        root: the project root (``notebooks/`` and ``outputs/`` live here).
        notebooks: name -> spec, in pipeline.yaml order.
        source: the pipeline.yaml file this was read from.
        handoffs: datasets that are files handed between notebooks, not tables.
    """

    root: Path
    notebooks: dict[str, NotebookSpec]
    source: Path | None = None
    handoffs: frozenset[str] = frozenset()
    _deps: dict[str, set[str]] = field(init=False, repr=False)
    _order: list[str] = field(init=False, repr=False)
    _writers: dict[str, list[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._writers = {}
        for spec in self.notebooks.values():
            for dataset in spec.writes:
                self._writers.setdefault(dataset, []).append(spec.name)
        self._deps = {
            spec.name: {w for ds in spec.reads for w in self._writers.get(ds, ()) if w != spec.name}
            for spec in self.notebooks.values()
        }
        self._order = [n for wave in layered(list(self.notebooks), self._deps) for n in wave]

    def writers(self, dataset: str) -> list[str]:
        """The notebooks that write a dataset, in pipeline.yaml order."""
        return list(self._writers.get(dataset, ()))

    def is_table(self, dataset: str) -> bool:
        """Whether a dataset is a versioned table (not a hand-off)."""
        return dataset not in self.handoffs

    @property
    def names(self) -> list[str]:
        """Every notebook name, in a dependency-respecting order."""
        return list(self._order)

    @property
    def layers(self) -> list[str]:
        """The layers (first part of the names), in order of first appearance."""
        return list(dict.fromkeys(self.notebooks[n].layer for n in self._order))

    def spec(self, name: str) -> NotebookSpec:
        """Return one notebook's spec (KeyError for an unknown name)."""
        return self.notebooks[name]

    def dependencies(self, name: str) -> set[str]:
        """The notebooks ``name`` reads from directly."""
        return set(self._deps[name])

    def upstream(self, name: str) -> set[str]:
        """Every notebook ``name`` depends on, directly or not."""
        return self._closure(name, self._deps)

    def downstream(self, name: str) -> set[str]:
        """Every notebook that depends on ``name``, directly or not."""
        rev: dict[str, set[str]] = {n: set() for n in self.notebooks}
        for n, ds in self._deps.items():
            for d in ds:
                rev[d].add(n)
        return self._closure(name, rev)

    @staticmethod
    def _closure(name: str, edges: Mapping[str, set[str]]) -> set[str]:
        seen: set[str] = set()
        stack = list(edges[name])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(edges[n])
        return seen

    def ordered(self, names: Iterable[str]) -> list[str]:
        """Sort notebook names in dependency order."""
        wanted = set(names)
        return [n for n in self._order if n in wanted]

    def waves(self, names: Iterable[str] | None = None) -> list[list[str]]:
        """Group notebooks into waves that can run in parallel.

        Args:
            names: restrict to these notebooks (default all). A selected notebook waits for every
                selected notebook upstream of it, even through unselected ones.

        Returns:
            Lists of names; every notebook comes after all it depends on.
        """
        chosen = self.ordered(self._order if names is None else names)
        chosen_set = set(chosen)
        deps = {n: self.upstream(n) & chosen_set for n in chosen}
        return layered(chosen, deps)


def load_pipeline(root: str | Path | None = None, *, strict: bool = True) -> Pipeline:
    """Read ``<root>/notebooks/pipeline.yaml`` and the notebooks' parameters cells.

    Args:
        root: the project root (default :func:`ridelake.core.project.project_root`).
        strict: require that every described notebook exists and every
            ``notebooks/**/*.ipynb`` is described.

    Returns:
        The :class:`Pipeline`.

    Raises:
        ConfigError: malformed pipeline.yaml, a cycle, or (strict) missing/undescribed notebooks.
    """

    base = Path(root).resolve() if root is not None else project_root()
    nb_dir = base / "notebooks"
    file = nb_dir / "pipeline.yaml"
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    entries = data.get("notebooks") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{file}: expected a non-empty mapping under 'notebooks:'")
    unknown_top = set(data) - {"notebooks", "handoffs"}
    if unknown_top:
        raise ConfigError(f"{file}: unknown key(s) {', '.join(sorted(unknown_top))}")
    handoffs = frozenset(_dataset_list(file, "handoffs", data, "handoffs"))
    cache_file = parameters_cache()
    cache = _read_cache(cache_file)
    seen = dict(cache)
    specs: dict[str, NotebookSpec] = {}
    missing: list[str] = []
    for name, entry in entries.items():
        name = str(name)
        if name.count("/") != 1 or not all(name.split("/")):
            raise ConfigError(f"{file}: notebook name {name!r} is not '<layer>/<table>'")
        entry = entry or {}
        if not isinstance(entry, dict):
            raise ConfigError(f"{file}: {name}: expected a mapping with reads/writes")
        unknown = set(entry) - {"reads", "writes"}
        if unknown:
            raise ConfigError(f"{file}: {name}: unknown key(s) {', '.join(sorted(unknown))}")
        reads, writes = (_dataset_list(file, name, entry, key) for key in ("reads", "writes"))
        path = nb_dir / f"{name}.ipynb"
        params: tuple[str, ...] = ()
        if path.is_file():
            params = notebook_parameters(path, cache)
        else:
            missing.append(name)
        specs[name] = NotebookSpec(name, path, reads, writes, params, handoffs)
    if strict:
        described = {spec.path for spec in specs.values()}
        extra = sorted(
            str(p.relative_to(nb_dir))
            for p in nb_dir.rglob("*.ipynb")
            if ".ipynb_checkpoints" not in p.parts and p not in described
        )
        problems = []
        if missing:
            problems.append("described in pipeline.yaml but missing: "
                            + ", ".join(f"notebooks/{m}.ipynb" for m in missing))
        if extra:
            problems.append("present but not described in pipeline.yaml: "
                            + ", ".join(f"notebooks/{e}" for e in extra))
        if problems:
            raise ConfigError(f"{file}: " + "; ".join(problems))
    if cache != seen:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache_file, json.dumps(cache, indent=0, sort_keys=True))
        except OSError:
            pass  # a cache only: the next command parses again
    return Pipeline(root=base, notebooks=specs, source=file, handoffs=handoffs)


def _read_cache(file: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): [str(n) for n in v] for k, v in data.items() if isinstance(v, list)}


def _dataset_list(file: Path, name: str, entry: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = entry.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{file}: {name}: '{key}' must be a list of dataset names")
    return tuple(value)
