"""Energy-efficiency tasks: short adapters around the `lib.energy` steps.

Each task names the lib module it calls (`*_STEP`); its cache key and output folder cover
that module's import closure (`lib.core.code_version`), so no list of modules can drift.
"""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from lib.core.refs import FileRef, named_as_given
from lib.energy.recipes import EnergyRecipe
from lib.energy.spec import SPEC
from tasks.caching import ContentCache
from tasks.descriptors import ChampionRef, DriftRef, Evaluation, SplitRef, TableRef, TrainedModel
from tasks.drift import store_drift
from tasks.fitting import fit_with_progress
from tasks.result_storage import RECORDS
from tasks.results import RESULT_SERIALIZER
from tasks.storage import local_path, output_dir, stored

TABLE_STEP = "lib.energy.table"
SPLIT_STEP = "lib.energy.splits"
TRAIN_STEP = "lib.energy.train"
EVALUATE_STEP = "lib.energy.evaluate"
DRIFT_STEP = "lib.energy.drift"


@task(
    task_run_name="excel-to-parquet-{raw.sha256:.8}",
    cache_policy=ContentCache(entry=TABLE_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def excel_to_parquet(raw: FileRef) -> TableRef:
    """Validate the workbook and write it as typed Parquet with provenance metadata."""
    from lib.core.code_version import code_version
    from lib.energy.table import excel_to_parquet as convert

    target = output_dir("data/energy", raw.sha256, entry=TABLE_STEP) / "energy.parquet"
    source = local_path(raw)
    with named_as_given(raw.model_copy(update={"path": str(source)})):
        rows = convert(
            source,
            target,
            source_sha256=raw.sha256,
            code_version=code_version([TABLE_STEP]),
        )
    get_run_logger().info("%d validated rows written to %s", rows, target)
    return TableRef(table=stored(target), source=raw, rows=rows)


@task(
    task_run_name="split-energy-seed{seed}",
    cache_policy=ContentCache(entry=SPLIT_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def split(table: TableRef, seed: int) -> SplitRef:
    """Test rows fixed by their content; the seed picks which other rows validate."""
    from lib.energy.splits import split_rows, table_rows, write_part_table, write_split

    parts = split_rows(table_rows(local_path(table.table)), seed=seed)
    folder = output_dir("splits/energy", table.table.sha256, str(seed), entry=SPLIT_STEP)
    target = folder / "split.json"
    sizes = write_split(parts, target)
    reference = folder / "training_rows.parquet"
    write_part_table(local_path(table.table), target, reference, "train", "validation")
    get_run_logger().info("split of %d rows with seed %d: %s", table.rows, seed, sizes)
    return SplitRef(split=stored(target), seed=seed, sizes=sizes, reference=stored(reference))


@task(
    task_run_name="train-energy-{preset}-seed{seed}",
    cache_policy=ContentCache(entry=TRAIN_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def train(
    table: TableRef, split_ref: SplitRef, recipe: EnergyRecipe, preset: str, seed: int
) -> TrainedModel:
    """Fit the energy model; a killed or retried run resumes from its last finished epoch."""
    from lib.energy.train import train_energy

    folder = output_dir(
        "models/energy",
        split_ref.split.sha256,
        table.table.sha256,
        recipe.model_dump_json(),
        str(seed),
        entry=TRAIN_STEP,
    )
    return fit_with_progress(
        "energy",
        f"energy ({preset}, seed {seed})",
        lambda progress: train_energy(
            local_path(table.table),
            local_path(split_ref.split),
            recipe,
            seed,
            folder,
            on_epoch=progress,
        ),
    )


@task(
    task_run_name="evaluate-energy-{trained.model.sha256:.8}",
    cache_policy=ContentCache(entry=EVALUATE_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def evaluate(trained: TrainedModel, table: TableRef, split_ref: SplitRef) -> Evaluation:
    """Test metrics per output and the plots: predicted vs actual, learning curves."""
    from lib.energy.evaluate import evaluate_energy

    folder = output_dir(
        "reports/energy", trained.model.sha256, split_ref.split.sha256, entry=EVALUATE_STEP
    )
    evaluated = evaluate_energy(
        local_path(trained.model),
        local_path(trained.history),
        local_path(table.table),
        local_path(split_ref.split),
        folder,
    )
    metrics = evaluated.metrics
    get_run_logger().info("test RMSE Y1 %.3f, Y2 %.3f", metrics["Y1_rmse"], metrics["Y2_rmse"])
    return Evaluation(
        metrics=metrics,
        test_rows=evaluated.test_rows,
        plots=tuple(stored(p) for p in evaluated.plots),
    )


@task(
    task_run_name="evaluate-champion-energy-v{champion.version}",
    cache_policy=ContentCache(entry=EVALUATE_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def evaluate_champion(champion: ChampionRef, table: TableRef, split_ref: SplitRef) -> ChampionRef:
    """The champion's metrics on the candidate's test rows, so the gate compares like with like."""
    from tasks.registry import score_champion

    scored = score_champion(SPEC, champion, (table.table, split_ref.split))
    if scored.metrics is not None and scored.problem is None:
        get_run_logger().info(
            "champion v%s on the same test rows: RMSE Y1 %.3f, Y2 %.3f",
            champion.version,
            scored.metrics["Y1_rmse"],
            scored.metrics["Y2_rmse"],
        )
    return scored


@task(
    task_run_name="drift-energy-v{champion_version}",
    cache_policy=ContentCache(entry=DRIFT_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def drift(table: TableRef, reference: FileRef, champion_version: str) -> DriftRef:
    """The incoming table against the champion's training rows; training goes on either way."""
    from lib.energy.drift import table_drift

    folder = output_dir(
        "drift/energy", table.table.sha256, reference.sha256, champion_version, entry=DRIFT_STEP
    )
    report = table_drift(local_path(table.table), local_path(reference))
    return store_drift(report, folder, champion_version)
