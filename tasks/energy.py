"""Energy-efficiency tasks: thin adapters that resolve inputs, call lib and describe outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from prefect import task
from prefect.logging import get_run_logger

from lib.atomic import atomic_path
from lib.energy_model import FEATURES, OUTPUT_NAMES, TARGETS, EnergyRecipe
from lib.refs import FileRef
from tasks.caching import ContentCache
from tasks.descriptors import ChampionRef, Evaluation, SplitRef, TableRef, TrainedModel
from tasks.fitting import fit_and_save
from tasks.storage import output_dir

TABLE_MODULES = ("lib.tabular", "lib.atomic")
SPLIT_MODULES = ("lib.splits",)
TRAIN_MODULES = ("lib.energy_model", "lib.training", "lib.components", "lib.splits")
EVALUATE_MODULES = ("lib.evaluation", "lib.plots", "lib.energy_model")


@task(
    task_run_name="excel-to-parquet-{raw.sha256:.8}",
    cache_policy=ContentCache(modules=TABLE_MODULES),
    persist_result=True,
)
def excel_to_parquet(raw: FileRef) -> TableRef:
    """Validate the workbook and write it as typed Parquet with provenance metadata."""
    from lib.hashing import code_version
    from lib.tabular import excel_to_parquet as convert

    target = output_dir("data/energy", raw.sha256, modules=TABLE_MODULES) / "energy.parquet"
    rows = convert(
        Path(raw.path), target, source_sha256=raw.sha256, code_version=code_version(TABLE_MODULES)
    )
    get_run_logger().info("%d validated rows written to %s", rows, target)
    return TableRef(table=FileRef.of(target), source=raw, rows=rows)


@task(
    task_run_name="split-energy-seed{seed}",
    cache_policy=ContentCache(modules=SPLIT_MODULES),
    persist_result=True,
)
def split(table: TableRef, seed: int) -> SplitRef:
    """Deterministic train/validation/test rows from the seed and the table's hash."""
    from lib.splits import split_rows

    parts = split_rows(table.rows, seed=seed, data_sha256=table.table.sha256)
    target = output_dir("splits/energy", table.table.sha256, str(seed)) / "split.json"
    content = {name: getattr(parts, name).tolist() for name in ("train", "validation", "test")}
    with atomic_path(target) as temporary:
        temporary.write_text(json.dumps(content))
    sizes = {name: len(rows) for name, rows in content.items()}
    get_run_logger().info("split of %d rows with seed %d: %s", table.rows, seed, sizes)
    return SplitRef(split=FileRef.of(target), seed=seed, sizes=sizes)


def load_part(table: TableRef, split_ref: SplitRef, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets (float32) of one part of the split."""
    frame = pq.read_table(table.table.path).to_pandas()
    rows = json.loads(Path(split_ref.split.path).read_text())[part]
    selected = frame.iloc[rows]
    return (
        selected[list(FEATURES)].to_numpy(dtype="float32"),
        selected[list(TARGETS)].to_numpy(dtype="float32"),
    )


def _targets(y: np.ndarray) -> dict[str, np.ndarray]:
    return {name: y[:, i] for i, name in enumerate(OUTPUT_NAMES)}


@task(
    task_run_name="train-energy-{preset}-seed{seed}",
    cache_policy=ContentCache(modules=TRAIN_MODULES),
    persist_result=True,
)
def train(
    table: TableRef, split_ref: SplitRef, recipe: EnergyRecipe, preset: str, seed: int
) -> TrainedModel:
    """Fit the energy model; a killed or retried run resumes from its last finished epoch."""
    import keras

    from lib.energy_model import build_energy_model

    folder = output_dir(
        "models/energy",
        split_ref.split.sha256,
        table.table.sha256,
        recipe.model_dump_json(),
        str(seed),
        modules=TRAIN_MODULES,
    )
    x_train, y_train = load_part(table, split_ref, "train")
    x_val, y_val = load_part(table, split_ref, "validation")
    keras.utils.set_random_seed(seed)
    model = build_energy_model(recipe, x_train, y_train)
    return fit_and_save(
        model,
        (x_train, _targets(y_train)),
        (x_val, _targets(y_val)),
        recipe,
        folder=folder,
        pipeline="energy",
        description=f"energy ({preset}, seed {seed})",
        batch_size=recipe.batch_size,
    )


def predict_frame(model_path: str, features: np.ndarray) -> np.ndarray:
    """Predictions of a saved model as an (n, 2) array of Y1, Y2."""
    import keras

    import lib.components  # noqa: F401  registers custom objects

    model = keras.saving.load_model(model_path, safe_mode=True)
    y1, y2 = model.predict(features, verbose=0)
    return np.column_stack([np.ravel(y1), np.ravel(y2)])


def flat_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """`{"Y1_rmse": ..., "Y2_r2": ..., "mean_rmse": ...}` for the two outputs."""
    from lib.evaluation import regression_metrics

    metrics: dict[str, float] = {}
    for i, name in enumerate(TARGETS):
        for metric, value in regression_metrics(y_true[:, i], y_pred[:, i]).items():
            metrics[f"{name}_{metric}"] = value
    metrics["mean_rmse"] = float(np.mean([metrics[f"{name}_rmse"] for name in TARGETS]))
    return metrics


@task(
    task_run_name="evaluate-energy-{trained.model.sha256:.8}",
    cache_policy=ContentCache(modules=EVALUATE_MODULES),
    persist_result=True,
)
def evaluate(trained: TrainedModel, table: TableRef, split_ref: SplitRef) -> Evaluation:
    """Test metrics per output and the plots: predicted vs actual, learning curves."""
    from lib.plots import learning_curves, predicted_vs_actual

    x_test, y_test = load_part(table, split_ref, "test")
    predicted = predict_frame(trained.model.path, x_test)
    metrics = flat_metrics(y_test, predicted)
    folder = output_dir("reports/energy", trained.model.sha256, split_ref.split.sha256)
    history = json.loads(Path(trained.history.path).read_text())
    plots = (
        predicted_vs_actual(
            {name: y_test[:, i] for i, name in enumerate(TARGETS)},
            {name: predicted[:, i] for i, name in enumerate(TARGETS)},
            folder / "predicted-vs-actual.png",
        ),
        learning_curves(history, folder / "learning-curves.png"),
    )
    get_run_logger().info("test RMSE Y1 %.3f, Y2 %.3f", metrics["Y1_rmse"], metrics["Y2_rmse"])
    return Evaluation(metrics=metrics, plots=tuple(FileRef.of(p) for p in plots))


def features_frame(x: np.ndarray) -> pd.DataFrame:
    """Raw features as the DataFrame the registered model takes."""
    return pd.DataFrame(x, columns=list(FEATURES))


@task(
    task_run_name="evaluate-champion-energy-v{champion.version}",
    cache_policy=ContentCache(modules=EVALUATE_MODULES),
    persist_result=True,
)
def evaluate_champion(champion: ChampionRef, table: TableRef, split_ref: SplitRef) -> ChampionRef:
    """The champion's metrics on the candidate's test rows, so the gate compares like with like."""
    import mlflow.pyfunc

    from tasks.registry import client_for

    client_for(champion.name)
    model = mlflow.pyfunc.load_model(f"models:/{champion.name}/{champion.version}")
    x_test, y_test = load_part(table, split_ref, "test")
    predicted = model.predict(features_frame(x_test))[list(TARGETS)].to_numpy()
    metrics = flat_metrics(y_test, predicted)
    get_run_logger().info(
        "champion v%s on the same test rows: RMSE Y1 %.3f, Y2 %.3f",
        champion.version,
        metrics["Y1_rmse"],
        metrics["Y2_rmse"],
    )
    return champion.model_copy(update={"metrics": metrics})
