"""What a notebook's results depend on in code: its code cells and the package modules it imports.

:func:`notebook_hash` digests the code cells (source and tags; markdown, outputs, execution
counts and metadata do not count). :class:`ModuleGraph` finds the modules of a package that a
notebook imports, transitively (``from ridelake.tables import gold`` pulls in ``gold``, what
``gold`` imports, and the ``__init__`` of every package on the way), and digests exactly those
files, so editing the report or a gold transform leaves the silver notebooks up-to-date.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path
from typing import Iterable

__all__ = ["code_cells", "notebook_hash", "ModuleGraph"]


def code_cells(nb: dict, passed: Iterable[str] = ()) -> list[tuple[str, list[str]]]:
    """The (source, sorted tags) of each code cell of a notebook document.

    Args:
        nb: the notebook.
        passed: parameters the run passes: their default assignments in the ``parameters`` cell
            do not count (a value saved there in JupyterLab, such as ``write = True``, is
            replaced by papermill's injected cell anyway).
    """
    names = set(passed)
    out = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        tags = sorted((cell.get("metadata") or {}).get("tags") or [])
        if names and "parameters" in tags:
            text = _without_defaults(text, names)
        out.append((text, tags))
    return out


def _without_defaults(text: str, names: set[str]) -> str:
    """A parameters cell without the lines of top-level assignments to ``names`` only."""
    tree = _python(text)
    if tree is None:
        return text
    drop: set[int] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if targets and all(isinstance(t, ast.Name) and t.id in names for t in targets):
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return "\n".join(ln for i, ln in enumerate(text.splitlines(), 1) if i not in drop)


def notebook_hash(path: str | Path, passed: Iterable[str] = ()) -> str:
    """sha256 of a notebook's code cells (source and tags; see :func:`code_cells` for ``passed``).

    Returns:
        The hex digest; for a file that is not a readable notebook, the digest of its raw bytes
        (or of the error), so it never matches a good one.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        return hashlib.sha256(f"unreadable: {exc}".encode()).hexdigest()
    try:
        cells = code_cells(json.loads(raw), passed)
    except (ValueError, AttributeError, TypeError):
        return hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode("utf-8")).hexdigest()


def _python(text: str) -> ast.Module | None:
    """Parse cell or file text, dropping IPython magics and shell escapes; None if it is not Python."""
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in text.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _imported(tree: ast.AST, current: str | None = None, is_package: bool = False) -> set[str]:
    """Dotted names a module imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and current:
                parts = current.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            if base:
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


class ModuleGraph:
    """The modules of one package and what each imports, read from source once.

    Args:
        package_dir: the package folder (``lib/ridelake``).
        package: its import name (default the folder's name).
    """

    def __init__(self, package_dir: str | Path, package: str | None = None) -> None:
        self.dir = Path(package_dir).resolve()
        self.package = package or self.dir.name
        self._files: dict[str, Path] = {}
        for file in self.dir.rglob("*.py"):
            if "__pycache__" in file.parts:
                continue
            rel = file.relative_to(self.dir).with_suffix("")
            parts = [self.package, *rel.parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            self._files[".".join(parts)] = file
        self._deps: dict[str, set[str]] = {}
        self._digests: dict[frozenset[str], str] = {}

    def _resolve(self, names: Iterable[str]) -> set[str]:
        """The package modules among dotted names, plus every parent package's ``__init__``."""
        out: set[str] = set()
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in self._files:
                    out.add(prefix)
        return out

    def deps(self, module: str) -> set[str]:
        """The package modules ``module`` imports directly (anywhere in the file)."""
        if module not in self._deps:
            file = self._files[module]
            tree = _python(file.read_text(encoding="utf-8", errors="replace"))
            found = _imported(tree, module, file.name == "__init__.py") if tree is not None else set()
            self._deps[module] = self._resolve(found) - {module}
        return self._deps[module]

    def closure(self, names: Iterable[str]) -> set[str]:
        """Every package module reached from these dotted import names."""
        seen: set[str] = set()
        stack = list(self._resolve(names))
        while stack:
            module = stack.pop()
            if module not in seen:
                seen.add(module)
                stack.extend(self.deps(module) - seen)
        return seen

    def notebook_modules(self, path: str | Path) -> set[str]:
        """The package modules a notebook's code cells import, transitively."""
        try:
            nb = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set(self._files)  # unreadable: depend on everything (it will fail anyway)
        names: set[str] = set()
        for text, _ in code_cells(nb):
            tree = _python(text)
            if tree is None:  # a cell that is not Python: assume the worst
                return set(self._files)
            names |= _imported(tree)
        return self.closure(names)

    def digest(self, modules: Iterable[str]) -> str:
        """sha256 of the modules' relative paths and contents (sorted), cached per set."""
        key = frozenset(modules)
        if key not in self._digests:
            digest = hashlib.sha256()
            for module in sorted(key):
                file = self._files[module]
                digest.update(file.relative_to(self.dir).as_posix().encode("utf-8") + b"\0")
                try:
                    digest.update(file.read_bytes())
                except OSError:
                    digest.update(b"<unreadable>")
                digest.update(b"\0")
            self._digests[key] = digest.hexdigest()
        return self._digests[key]
