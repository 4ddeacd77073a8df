"""Siamese Fashion-MNIST tasks: short adapters around the `lib.siamese` steps.

Each task names the lib module it calls (`*_STEP`); its cache key and output folder cover
that module's import closure (`lib.core.code_version`), so no list of modules can drift.
"""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from lib.core.refs import FileRef, named_as_given
from lib.siamese.recipes import SiameseRecipe
from lib.siamese.spec import SPEC
from tasks.caching import ContentCache
from tasks.descriptors import ChampionRef, DriftRef, Evaluation, PairsRef, TableRef, TrainedModel
from tasks.drift import store_drift
from tasks.fitting import fit_with_progress
from tasks.result_storage import RECORDS
from tasks.results import RESULT_SERIALIZER
from tasks.storage import local_path, output_dir, stored

TABLE_STEP = "lib.siamese.idx"
PAIRS_STEP = "lib.siamese.protocol"
TRAIN_STEP = "lib.siamese.train"
EVALUATE_STEP = "lib.siamese.evaluate"
DRIFT_STEP = "lib.siamese.drift"


@task(
    task_run_name="idx-to-parquet-{part}",
    cache_policy=ContentCache(entry=TABLE_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def idx_to_parquet(images: FileRef, labels: FileRef, part: str) -> TableRef:
    """Check the IDX files and store images + labels as one Parquet table."""
    from lib.core.code_version import code_version
    from lib.siamese.idx import idx_to_parquet as convert

    target = (
        output_dir("data/fashion", images.sha256, labels.sha256, entry=TABLE_STEP)
        / f"{part}.parquet"
    )
    image_path, label_path = local_path(images), local_path(labels)
    with named_as_given(
        images.model_copy(update={"path": str(image_path)}),
        labels.model_copy(update={"path": str(label_path)}),
    ):
        rows = convert(
            image_path,
            label_path,
            target,
            source_sha256={"images": images.sha256, "labels": labels.sha256},
            code_version=code_version([TABLE_STEP]),
        )
    get_run_logger().info("%s: %d images written to %s", part, rows, target)
    return TableRef(table=stored(target), source=images, rows=rows)


@task(
    task_run_name="make-pairs-seed{seed}",
    cache_policy=ContentCache(entry=PAIRS_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def make_pairs(train: TableRef, test: TableRef, seed: int) -> PairsRef:
    """Hold out training images for validation; build validation and test index pairs."""
    from lib.siamese.protocol import pair_files_for

    folder = output_dir(
        "pairs/fashion", train.table.sha256, test.table.sha256, str(seed), entry=PAIRS_STEP
    )
    provenance = {"seed": seed, "train_table": train.table.sha256, "test_table": test.table.sha256}
    plan, files = pair_files_for(
        local_path(train.table), local_path(test.table), seed, folder, provenance
    )
    get_run_logger().info(
        "%d training images kept, %d validation pairs, %d test pairs",
        len(plan.kept),
        len(plan.validation),
        len(plan.test),
    )
    return PairsRef(
        train_indices=stored(files.train_indices),
        validation=stored(files.validation),
        test=stored(files.test),
        seed=seed,
    )


@task(
    task_run_name="profile-siamese-seed{pairs.seed}",
    cache_policy=ContentCache(entry=DRIFT_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def profile(train_table: TableRef, pairs: PairsRef) -> FileRef:
    """Class and pixel statistics of the images training learns from: the version's reference."""
    from lib.siamese.drift import write_profile

    folder = output_dir(
        "profiles/fashion", train_table.table.sha256, pairs.train_indices.sha256, entry=DRIFT_STEP
    )
    target = folder / "training_profile.parquet"
    rows = write_profile(local_path(train_table.table), local_path(pairs.train_indices), target)
    get_run_logger().info("profile of %d training images written to %s", rows, target)
    return stored(target)


@task(
    task_run_name="train-siamese-{preset}-seed{seed}",
    cache_policy=ContentCache(entry=TRAIN_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def train(
    train_table: TableRef, pairs: PairsRef, recipe: SiameseRecipe, preset: str, seed: int
) -> TrainedModel:
    """Fit the siamese model; images are gathered by index batch by batch, never copied."""
    from lib.siamese.train import train_siamese

    folder = output_dir(
        "models/siamese",
        train_table.table.sha256,
        pairs.train_indices.sha256,
        pairs.validation.sha256,
        recipe.model_dump_json(),
        str(seed),
        entry=TRAIN_STEP,
    )
    return fit_with_progress(
        "siamese",
        f"siamese ({preset}, seed {seed})",
        lambda progress: train_siamese(
            local_path(train_table.table),
            local_path(pairs.train_indices),
            local_path(pairs.validation),
            recipe,
            seed,
            folder,
            on_epoch=progress,
        ),
    )


@task(
    task_run_name="evaluate-siamese-{trained.model.sha256:.8}",
    cache_policy=ContentCache(entry=EVALUATE_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def evaluate(
    trained: TrainedModel, train_table: TableRef, test_table: TableRef, pairs: PairsRef
) -> Evaluation:
    """Calibrate the threshold on validation pairs; measure and plot on the test pairs."""
    from lib.siamese.evaluate import evaluate_siamese

    folder = output_dir(
        "reports/siamese", trained.model.sha256, pairs.test.sha256, entry=EVALUATE_STEP
    )
    evaluated = evaluate_siamese(
        local_path(trained.model),
        local_path(trained.history),
        local_path(train_table.table),
        local_path(test_table.table),
        local_path(pairs.validation),
        local_path(pairs.test),
        folder,
    )
    metrics = evaluated.metrics
    get_run_logger().info(
        "test accuracy %.4f at calibrated threshold %.3f (%.4f at 0.5), ROC AUC %.4f",
        metrics["accuracy"],
        metrics["threshold"],
        metrics["accuracy_at_0.5"],
        metrics["roc_auc"],
    )
    return Evaluation(
        metrics=metrics,
        test_rows=evaluated.test_rows,
        plots=tuple(stored(p) for p in evaluated.plots),
    )


@task(
    task_run_name="evaluate-champion-siamese-v{champion.version}",
    cache_policy=ContentCache(entry=EVALUATE_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def evaluate_champion(champion: ChampionRef, test_table: TableRef, pairs: PairsRef) -> ChampionRef:
    """The champion, through its pyfunc and at its registered threshold, on the same pairs."""
    from tasks.registry import score_champion

    scored = score_champion(SPEC, champion, (test_table.table, pairs.test))
    if scored.metrics is not None and scored.problem is None:
        get_run_logger().info(
            "champion v%s on the same test pairs: accuracy %.4f",
            champion.version,
            scored.metrics["accuracy"],
        )
    return scored


@task(
    task_run_name="drift-siamese-v{champion_version}",
    cache_policy=ContentCache(entry=DRIFT_STEP),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def drift(train_table: TableRef, reference: FileRef, champion_version: str) -> DriftRef:
    """Incoming training images against the champion's profile; training goes on either way."""
    from lib.siamese.drift import table_drift

    folder = output_dir(
        "drift/siamese",
        train_table.table.sha256,
        reference.sha256,
        champion_version,
        entry=DRIFT_STEP,
    )
    report = table_drift(local_path(train_table.table), local_path(reference))
    return store_drift(report, folder, champion_version)
