"""The docs' examples run as written: every YAML grid shown in README.md and docs/ loads and shadows no key, and
every `srt-scale` command line in their code blocks parses (its command and options exist)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from harness.cli import parser
from harness.plan import grid

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def _blocks(kinds: set[str]) -> list[tuple[str, str]]:
    """(file#index, text) of every fenced block whose language is in `kinds` ('' = none given)."""
    return [
        (f"{path.relative_to(ROOT)}#{i}", text)
        for path in DOCS
        for i, (kind, text) in enumerate(FENCE.findall(path.read_text()))
        if kind in kinds
    ]


def _command_lines() -> list[tuple[str, str]]:
    """Every `srt-scale ...` line of the docs' shell blocks, continuation lines joined and comments dropped."""
    out = []
    for where, text in _blocks({"", "bash", "sh", "console"}):
        for line in text.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip().removeprefix("$ ")
            if line.startswith("srt-scale "):
                out.append((where, line))
    return out


def test_the_docs_show_grids_and_command_lines():
    assert _blocks({"yaml"}) and len(_command_lines()) >= 10


@pytest.mark.parametrize("where,text", [pytest.param(w, t, id=w) for w, t in _blocks({"yaml"})])
def test_every_grid_in_the_docs_loads_and_shadows_nothing(tmp_path, where, text):
    shutil.copytree(ROOT / "configs", tmp_path, dirs_exist_ok=True)  # `base:` names a config beside the grid
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    assert grid.load(path), where
    assert grid.shadowed(path) == [], where


@pytest.mark.parametrize("where,line", [pytest.param(w, line, id=f"{w}:{line}") for w, line in _command_lines()])
def test_every_command_line_in_the_docs_parses(where, line, capsys):
    args = shlex.split(line)[1:]
    try:
        parser().parse_args(args)
    except SystemExit as e:
        pytest.fail(f"{where}: `{line}` does not parse: {capsys.readouterr().err.strip().splitlines()[-1]} ({e})")
