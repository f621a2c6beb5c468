"""MLflow tracking against a real SQLite store, read back through the MLflow client."""

import json

import pytest
from test_sweep import BASE, run

from harness.core import config
from harness.plan import grid, plan
from harness.run import identity
from harness.sweep import sweep

mlflow = pytest.importorskip("mlflow")  # the test extra installs it; CI always has it
from mlflow.tracking import MlflowClient  # noqa: E402


def _sweep(tmp_path, track: str, name: str):
    (tmp_path / "base.yaml").write_text(BASE)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"base: base.yaml\nset: {{eval.points: [0.25, 0.5, 1.0], {track}}}\naxes:\n  negatives: [8, full]\n"
    )
    points = grid.load(path)
    s = sweep.Sweep(tmp_path / name)
    s.write_plan(plan.plan(points, threads=1), path)
    return s, points


def test_sweep_is_one_experiment_with_every_run_param_and_evaluation_row(tmp_path):
    s, points = _sweep(tmp_path, "track.mlflow: true", "tracked")
    assert all(p.run_id == identity.run_id({**p.cfg, "track.mlflow": False}) for p in points)  # ids unchanged
    run(s, points, "local")  # two jobs at once write to one SQLite store
    assert sweep.status(s)[0] == {"done": 2}
    client = MlflowClient(tracking_uri=f"sqlite:///{s.root.resolve()}/mlflow.db")
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["srt_run_id"] for r in runs) == sorted(p.run_id for p in points)
    for r in runs:
        run_dir = s.runs_dir / r.data.tags["srt_run_id"]
        cfg = config.load(run_dir / "config.yaml")
        assert r.info.status == "FINISHED" and r.data.tags["status"] == "done"
        assert set(r.data.params) == set(config.KEYS)
        assert r.data.params["loss.negatives"] == str(cfg["loss.negatives"])
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        history = client.get_metric_history(r.info.run_id, "valid_ndcg_at_5")
        assert [(m.step, m.value) for m in history] == [
            (row["tokens"], pytest.approx(row["valid_ndcg@5"])) for row in rows
        ]
        assert r.data.metrics["test_ppl"] == pytest.approx(rows[-1]["test_ppl"])


def test_bad_tracking_uri_warns_and_the_runs_finish(tmp_path, capsys):
    s, points = _sweep(tmp_path, "track.mlflow: true, track.uri: 'bogus-scheme://nowhere'", "untracked")
    run(s, points, "debug")
    assert sweep.status(s)[0] == {"done": 2}
    for p in points:
        log = (s.runs_dir / p.run_id / "train.log").read_text()
        assert "tracking disabled for this run: MLflow failed" in log
    assert "warning: tracking disabled" in capsys.readouterr().err
