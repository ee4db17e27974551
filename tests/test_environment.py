"""The project's set-up files stay in step: one source of truth for dependency versions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_requirements_are_pinned():
    for req in _requirements():
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z0-9\-,]+\])?==[0-9][0-9A-Za-z.]*", req), req


def test_environment_yml_lists_the_same_versions():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip, key=str.lower) == sorted(_requirements(), key=str.lower)
    assert "python=3.11" in env["dependencies"]


def test_required_packages_are_there():
    names = {re.split(r"[\[=]", r)[0].lower() for r in _requirements()}
    assert {"jupyterlab", "papermill", "pandas", "pyiceberg", "pyarrow", "matplotlib", "nbval", "pytest"} <= names


def test_gitignore_keeps_lib_and_ignores_generated_things():
    import subprocess

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0

    assert not ignored("lib/ridelake/catalog.py")
    assert not ignored("notebooks/bronze/prepare.ipynb")
    assert ignored("outputs/runs/x/run.json") and ignored("warehouse/catalog.db") and ignored("data/x.csv")
    assert not ignored("data/.gitkeep") and not ignored("warehouse/.gitkeep") and not ignored("outputs/.gitkeep")


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    notebooks = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in code), f"{path} has outputs"
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path} needs exactly one cell tagged parameters"
        assert not any(re.search(r"^\s*def\s", "".join(c["source"]), re.M) for c in code), f"{path} defines a function"
        assert nb["metadata"]["kernelspec"]["name"] == "ridelake"


def test_make_help_lists_targets():
    import subprocess

    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for target in ("pipeline", "test", "data", "run", "lab", "bench", "help"):
        assert re.search(rf"^\s+(\x1b\[36m)?{target}\b", out, re.M), target
