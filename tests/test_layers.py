"""The stage layers of pyproject.toml ([tool.importlinter]) hold, and a breach of them fails with the import named.

lint-imports runs on a copy of the packages (with pyproject.toml) so that an import against the layers can be
added without touching the tree."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": str(BIN)},
    )


@pytest.fixture
def tree(tmp_path):
    for name in ("harness", "analysis"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _add(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_keeps_every_contract(tree):
    proc = _lint_imports(tree)
    assert proc.returncode == 0, proc.stdout
    assert "0 broken" in proc.stdout


def test_a_lower_stage_importing_a_higher_one_fails_naming_the_import(tree):
    _add(tree / "harness" / "data" / "clean.py", "from harness.model import accounting  # noqa: E402")
    proc = _lint_imports(tree)
    assert proc.returncode == 1
    assert "harness.data is not allowed to import harness.model" in proc.stdout
    assert "harness.data.clean -> harness.model.accounting" in proc.stdout


def test_an_import_inside_a_function_counts(tree):
    """Hiding an import in a function does not dodge the layers (or a cycle)."""
    _add(tree / "harness" / "plan" / "grid.py", "def _late():\n    from harness.sweep import sweep\n\n    return sweep")
    proc = _lint_imports(tree)
    assert proc.returncode == 1
    assert "harness.plan.grid -> harness.sweep.sweep" in proc.stdout


def test_analysis_importing_the_run_machinery_fails(tree):
    _add(tree / "analysis" / "cost.py", "from harness.run import loop  # noqa: E402")
    proc = _lint_imports(tree)
    assert proc.returncode == 1
    assert "analysis is not allowed to import harness.run" in proc.stdout
    assert "analysis.cost -> harness.run.loop" in proc.stdout


def test_a_cycle_between_analysis_modules_fails(tree):
    """optimum used to import laws inside a function while laws imported optimum: that is a cycle again."""
    _add(tree / "analysis" / "optimum.py", "from analysis import laws  # noqa: E402")
    proc = _lint_imports(tree)
    assert proc.returncode == 1
    assert "No cycles are allowed in analysis" in proc.stdout
