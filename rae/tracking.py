"""Runs logged to MLflow: parameters, metrics and the report as artifacts, under ``mlruns/`` by default.

MLflow 3 no longer writes its plain file store without an opt-in, so the default is its SQLite backend in
``mlruns/mlflow.db`` with the artifacts in ``mlruns/artifacts/``: still one local directory, nothing to start.
Only settings that are safe to show are logged; a key never is (rae's settings hold no key).
"""

import logging
import re
from pathlib import Path
from typing import Any

EXPERIMENTS = {"evaluate": "rae-evaluate", "optimize": "rae-optimize", "ablate": "rae-ablate"}


def metric_key(name: str) -> str:
    """MLflow allows letters, digits, ``_ - . / `` and spaces in a metric name; ``ndcg@10`` becomes ``ndcg_at_10``."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name.replace("@", "_at_"))


def log_run(
    tracking_uri: str,
    kind: str,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float | None],
    artifacts: Path | None = None,
) -> str:
    """Log one run; returns MLflow's run id."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    name = EXPERIMENTS[kind]
    if mlflow.get_experiment_by_name(name) is None:
        artifact_root = None
        if tracking_uri.startswith("sqlite:///"):
            artifact_root = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
        mlflow.create_experiment(name, artifact_location=artifact_root)
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({metric_key(k): float(v) for k, v in metrics.items() if v is not None})
        if artifacts is not None:
            mlflow.log_artifacts(str(artifacts))
    return run.info.run_id
