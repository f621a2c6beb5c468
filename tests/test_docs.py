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


def test_the_own_data_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    """docs/own-data.md: its script writes the two files and `data prepare` reports the ten items it blanked;
    then the same commands on a tiny log in the same format (the page's grid at a few thousand targets)."""
    import subprocess
    import sys

    import pandas as pd
    import yaml

    from harness import cli

    page = (ROOT / "docs" / "own-data.md").read_text()
    script = page.split("python - <<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SRT_SCALE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "my-data").mkdir()
    subprocess.run([sys.executable, "-c", script], check=True)
    commands = [shlex.split(line)[1:] for where, line in _command_lines() if where.startswith("docs/own-data.md")]
    assert commands[0] == ["data", "prepare", "configs/own-data.yaml"]
    assert cli.main(commands[0]) == 0
    out = capsys.readouterr().out
    assert "dropped: " in out and "10 items without text" in out

    rng = __import__("numpy").random.default_rng(0)  # 40 users x 12 - 20 of 30 items; items 1 - 3 have no text
    rows = [(f"u{u}", int(i), 1000 * u + t) for u in range(40) for t, i in enumerate(rng.choice(30, 12 + u % 9))]
    pd.DataFrame(rows, columns=["user_id", "movie_id", "time"]).to_csv("my-data/interactions.csv", index=False)
    titles = ["" if i < 3 else f"film {i} part {i % 4}" for i in range(30)]
    genres = ["" if i < 3 else ["drama", "comedy", "action"][i % 3] for i in range(30)]
    pd.DataFrame({"movie_id": range(30), "title": titles, "genres": genres}).to_csv("my-data/items.csv", index=False)
    path = tmp_path / "configs" / "own-data-grid.yaml"
    tree = yaml.safe_load(path.read_text())
    tree["set"]["train.branches"] = [0.5, 1.0]
    tree["axes"]["tokens"] = [24000]  # the shortest branch's cooldown spans >= 3 steps
    path.write_text(yaml.safe_dump(tree))
    assert cli.main(commands[0]) == 0
    assert "dropped: " in capsys.readouterr().out
    for args in commands[1:]:
        if args[0] == "sweep":
            args = [*args[:-2], "--executor", "debug"]
        if args[0] == "report":
            continue  # the fits of 6 points: the report's own tests cover it
        assert cli.main(args) == 0, args
    table = pd.read_parquet(tmp_path / "sweeps" / "own-data-grid" / "results.parquet")
    assert len(table) == 6 and (table["status"] == "done").all() and table["test_ndcg@5"].between(0, 1).all()
