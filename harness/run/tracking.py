"""Experiment tracking in MLflow (`track.*` keys; the optional extra `pip install .[mlflow]`).

A tracked run is one MLflow run, tagged `srt_run_id` = the run id, in the experiment `track.experiment`
(default: the sweep's directory name, so a sweep is one experiment; `srt-scale` for a lone `train`), in the
store `track.uri` (default: a SQLite file, `<sweep>/mlflow.db` or `<out>/mlflow.db`; a tracking server URI
works the same). It logs every config key as a param, every evaluation row's numbers as metrics at step =
`tokens` (`@` in a metric name becomes `_at_`: `valid_ndcg_at_5`), and its outcome as tags (`status`,
`error`) and the MLflow run status. A resumed run logs into the same MLflow run.

Tracking never fails a run: the first error is written to train.log and stderr, and tracking stops there.
`mlflow ui --backend-store-uri sqlite:///<sweep>/mlflow.db` shows a sweep in a browser.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

MAX_PARAM = 6000  # characters MLflow stores per param value
MAX_BATCH = 100  # params per log_batch call


def default_uri(directory: str | Path) -> str:
    return f"sqlite:///{Path(directory).resolve() / 'mlflow.db'}"


def _client(uri: str):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # nothing leaves the machine but what is asked for
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")  # a dead server costs seconds, not minutes
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(client, name: str) -> str:
    """The experiment `name`, created if missing (a concurrent creator wins: read it back)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}"


def prepare_stores(cfgs: list[dict], log: Callable[[str], None]) -> None:
    """Create each tracked config's store and experiment once, before a sweep's jobs log to them concurrently
    (SQLite schema creation must not race). A failure is a warning: the runs go on, each warning for itself."""
    for uri, name in sorted({(c["track.uri"], c["track.experiment"]) for c in cfgs if c["track.mlflow"]}):
        try:
            experiment_id(_client(uri), name)
        except Exception as e:  # noqa: BLE001
            log(f"warning: MLflow store {uri}: {_first_line(e)}")


class Tracker:
    """One run's MLflow logging. `log` writes a line to the run's train.log."""

    def __init__(self, cfg: dict, out: str | Path, run_id: str, log: Callable[[str], None]):
        self.log, self.client, self.mlflow_id = log, None, None
        if not cfg["track.mlflow"]:
            return
        uri = cfg["track.uri"] or default_uri(out)
        self._guard(lambda: self._start(cfg, uri, cfg["track.experiment"] or "srt-scale", run_id))

    def _start(self, cfg: dict, uri: str, experiment: str, run_id: str) -> None:
        from mlflow.entities import Param

        client = _client(uri)
        exp = experiment_id(client, experiment)
        found = client.search_runs([exp], filter_string=f"tags.srt_run_id = '{run_id}'", max_results=1)
        if found:
            self.mlflow_id = found[0].info.run_id
            client.update_run(self.mlflow_id, status="RUNNING")
        else:
            self.mlflow_id = client.create_run(exp, run_name=run_id, tags={"srt_run_id": run_id}).info.run_id
            params = [Param(k, str(v)[:MAX_PARAM]) for k, v in sorted(cfg.items())]
            for lo in range(0, len(params), MAX_BATCH):
                client.log_batch(self.mlflow_id, params=params[lo : lo + MAX_BATCH])
        self.client = client
        self.log(f"tracking: MLflow run {self.mlflow_id} in experiment {experiment!r} at {uri}")

    def _guard(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as e:  # noqa: BLE001  tracking must never fail a run
            message = f"tracking disabled for this run: MLflow failed ({_first_line(e)})"
            self.log(message)
            print(f"srt-scale: warning: {message}", file=sys.stderr, flush=True)
            self.client = None

    def row(self, row: dict) -> None:
        """Log an evaluation row's numbers at step = its tokens."""
        if self.client is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(k.replace("@", "_at_"), float(v), now, int(row["tokens"]))
            for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "tokens"
        ]
        self._guard(lambda: self.client.log_batch(self.mlflow_id, metrics=metrics))

    def finish(self, status: str, error: str | None = None) -> None:
        """Record the outcome: tag `status` (done, diverged, failed), `error`, and end the MLflow run."""
        if self.client is None:
            return
        tags = {"status": status, **({"error": error[:5000]} if error else {})}

        def end() -> None:
            for k, v in tags.items():
                self.client.set_tag(self.mlflow_id, k, v)
            self.client.set_terminated(self.mlflow_id, "FINISHED" if status == "done" else "FAILED")

        self._guard(end)

    def stopped(self) -> None:
        """The run stopped to be resumed (preemption): its MLflow run is left unfinished."""
        if self.client is not None:
            self._guard(lambda: self.client.set_terminated(self.mlflow_id, "KILLED"))
