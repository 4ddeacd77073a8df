"""Fit a compiled Keras model with the callbacks every trainflow pipeline wants.

Resume: the state of the last finished epoch is kept under `checkpoint_dir` (weights,
optimizer, epoch count and the history so far), so a retried or killed run continues from
there instead of starting over, and its history still covers every epoch. `train_into` adds
what a content-addressed output folder needs: one process at a time, and no second fit once
the folder is complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import keras
import numpy as np

from lib.core.atomic import atomic_path
from lib.core.faults import fault_point
from lib.core.hashing import sha256_file

EpochHook = Callable[[int, int, dict[str, float]], None]

logger = logging.getLogger("trainflow.training")

MODEL_FILE, HISTORY_FILE, FIT_FILE = "model.keras", "history.json", "fit.json"


@dataclass(frozen=True)
class FitResult:
    """What a fit leaves behind: per-epoch history, epochs run and wall time in seconds.

    After a resume `history` and `epochs_run` cover every epoch, those finished before the
    interruption included; `resumed_from` counts those (None: trained from the start), and
    `seconds` is this call's wall time only.
    """

    history: dict[str, list[float]]
    epochs_run: int
    seconds: float
    resumed_from: int | None = None


class _EpochFaults(keras.callbacks.Callback):
    """Fault point ``epoch:<n>`` once epoch n and its checkpoint are done (`lib.core.faults`)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        fault_point(f"epoch:{epoch + 1}")


class _EpochReporter(keras.callbacks.Callback):
    """Calls `hook(epoch, total_epochs, logs)` after each epoch (1-based), for progress UIs."""

    def __init__(self, hook: EpochHook, total_epochs: int) -> None:
        super().__init__()
        self._hook = hook
        self._total = total_epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._hook(epoch + 1, self._total, {k: float(v) for k, v in (logs or {}).items()})


class _Snapshot:
    """The model's and the optimizer's variables, to undo a restore that failed half-way."""

    def __init__(self, model: keras.Model) -> None:
        optimizer = model.optimizer
        if optimizer is not None and not optimizer.built:
            # As Keras does before loading: the checkpoint holds the optimizer's variables.
            optimizer.build(model.trainable_variables)
        self._weights = model.get_weights()
        self._optimizer = [np.array(v.numpy()) for v in optimizer.variables] if optimizer else []

    def put_back(self, model: keras.Model) -> None:
        model.set_weights(self._weights)
        if model.optimizer is not None:
            for variable, value in zip(model.optimizer.variables, self._optimizer, strict=True):
                variable.assign(value)


class _Checkpoint(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that a kill at any moment cannot wedge, and that keeps the history.

    `double_checkpoint=True` keeps the previous epoch's files beside the latest, so a kill
    while the latest is written leaves the previous one to resume from. Restoring tries the
    latest, then the previous, and any failure to read one (a truncated HDF5 file, half a
    JSON file, ...) moves on; when neither can be read it warns and trains from the start
    rather than fail on every later attempt. The history of the finished epochs is written
    (temp-then-rename) before the checkpoint that counts them, so it always covers the
    epoch a checkpoint restores.
    """

    def __init__(self, backup_dir: Path) -> None:
        super().__init__(str(backup_dir), double_checkpoint=True, delete_checkpoint=True)
        self._history_path = backup_dir / HISTORY_FILE
        self._history: dict[str, list[float]] = {}
        self.restored: dict[str, list[float]] = {}
        self.resumed_from: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        latest = (Path(self._weights_path), Path(self._training_metadata_path))
        previous = (Path(self._prev_weights_path), Path(self._prev_training_metadata_path))
        candidates = [pair for pair in (latest, previous) if pair[0].exists()]
        if not candidates:
            return
        snapshot = _Snapshot(self.model)
        for weights, metadata in candidates:
            try:
                if weights != latest[0]:
                    # Keras loads only files named `*.weights.h5`: the previous state goes back
                    # in place of the damaged latest, as Keras' own fallback does.
                    shutil.copyfile(weights, latest[0])
                    shutil.copyfile(metadata, latest[1])
                epoch = self._restore(*latest)
            except Exception as error:  # whatever a damaged file raises: h5py, JSON, shapes
                logger.warning("cannot resume from %s: %s", weights, error)
                snapshot.put_back(self.model)
                continue
            self.resumed_from = epoch
            logger.info(
                "resuming training from epoch %d of %d (%s)",
                epoch,
                self.params.get("epochs", 0),
                self.backup_dir,
            )
            return
        logger.warning("no usable checkpoint in %s; training from the start", self.backup_dir)
        shutil.rmtree(self.backup_dir)

    def _restore(self, weights: Path, metadata: Path) -> int:
        """Load one checkpoint into the model; return the number of epochs it had finished."""
        epoch = int(json.loads(metadata.read_text())["epoch"])
        history = json.loads(self._history_path.read_text()) if epoch else {}
        if epoch and (not history or min(len(values) for values in history.values()) < epoch):
            raise ValueError(f"{self._history_path} covers fewer than {epoch} epochs")
        self.model.load_weights(weights)
        self.model._initial_epoch = epoch
        self.restored = {key: [float(v) for v in values[:epoch]] for key, values in history.items()}
        self._history = {key: list(values) for key, values in self.restored.items()}
        return epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for key, value in (logs or {}).items():
            self._history.setdefault(key, []).append(float(value))
        write_history(self._history, self._history_path)  # before the checkpoint counts it
        super().on_epoch_end(epoch, logs)


def fit(
    model: keras.Model,
    train: Any,
    validation: Any,
    *,
    epochs: int,
    checkpoint_dir: Path,
    batch_size: int | None = None,
    early_stopping_patience: int | None = None,
    reduce_lr_patience: int | None = None,
    on_epoch: EpochHook | None = None,
    verbose: int | str = "auto",
) -> FitResult:
    """Train `model`; `train`/`validation` are `(x, y)` tuples or `tf.data` datasets.

    Early stopping restores the best validation weights, so the model returned is the best
    seen, not the last. Only one fit at a time may use a `checkpoint_dir` (`train_into`
    makes sure of it for an output folder).
    """
    callbacks: list[keras.callbacks.Callback] = []
    if early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True
            )
        )
    if reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=reduce_lr_patience, min_lr=1e-5
            )
        )
    # After the rate schedule: an epoch's checkpoint holds the rate it set, and its history
    # the `learning_rate` it logged.
    checkpoint = _Checkpoint(checkpoint_dir)
    callbacks.append(checkpoint)
    if on_epoch is not None:
        callbacks.append(_EpochReporter(on_epoch, epochs))
    callbacks.append(_EpochFaults())
    x, y = train if isinstance(train, tuple) else (train, None)
    started = time.perf_counter()
    history = model.fit(
        x,
        y,
        validation_data=validation,
        epochs=epochs,
        batch_size=batch_size if isinstance(train, tuple) else None,
        shuffle=isinstance(train, tuple),  # a tf.data pipeline shuffles (or not) itself
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    # The epochs finished before an interruption, then this call's (none if it was killed
    # after its last epoch's checkpoint).
    logs = {key: list(values) for key, values in checkpoint.restored.items()}
    for key, values in history.history.items():
        logs[key] = logs.get(key, []) + [float(v) for v in values]
    epochs_run = len(next(iter(logs.values()), []))
    return FitResult(logs, epochs_run, seconds, resumed_from=checkpoint.resumed_from)


def save_model(model: keras.Model, target: Path) -> str:
    """Save as `.keras` temp-then-rename and return the file's sha256."""
    with atomic_path(target) as temporary:
        model.save(temporary)
    return sha256_file(target)


def write_history(history: dict[str, list[float]], target: Path) -> None:
    """Write the per-epoch history as JSON, temp-then-rename."""
    with atomic_path(target) as temporary:
        temporary.write_text(json.dumps(history, indent=1))


@dataclass(frozen=True)
class TrainedFiles:
    """A trained model as files: the `.keras` model, its history JSON, and how the fit went.

    `reused`: the folder was already complete (another process trained it) and nothing was
    trained by this call; the numbers are those of the fit that made it.
    """

    model: Path
    history: Path
    epochs_run: int
    seconds: float
    resumed_from: int | None = None
    reused: bool = False


def save_trained(model: keras.Model, result: FitResult, folder: Path) -> TrainedFiles:
    """Save `model` and its history under `folder` as ``model.keras`` and ``history.json``.

    ``fit.json`` (epochs run, seconds, resumed from) is written last: it marks the folder
    complete.
    """
    model_path, history_path = folder / MODEL_FILE, folder / HISTORY_FILE
    save_model(model, model_path)
    write_history(result.history, history_path)
    trained = TrainedFiles(
        model_path, history_path, result.epochs_run, result.seconds, result.resumed_from
    )
    fields = ("epochs_run", "seconds", "resumed_from")
    with atomic_path(folder / FIT_FILE) as temporary:
        temporary.write_text(json.dumps({name: getattr(trained, name) for name in fields}))
    return trained


def read_trained(folder: Path) -> TrainedFiles | None:
    """The finished fit saved in `folder` by `save_trained`, or None if it is not complete."""
    model_path, history_path = folder / MODEL_FILE, folder / HISTORY_FILE
    try:
        summary = json.loads((folder / FIT_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (model_path.is_file() and history_path.is_file()):
        return None
    return TrainedFiles(
        model_path,
        history_path,
        epochs_run=int(summary["epochs_run"]),
        seconds=float(summary["seconds"]),
        resumed_from=summary.get("resumed_from"),
        reused=True,
    )


def checkpoint_dir(folder: Path) -> Path:
    """Where `fit` keeps the resumable state of the fit that will save into `folder`."""
    return folder.with_name(folder.name + ".backup")


def lock_path(folder: Path) -> Path:
    """The lock that lets one process at a time train into `folder`."""
    return folder.with_name(folder.name + ".lock")


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Hold `folder`'s lock; wait as long as another process holds it.

    The wait is not bounded: the holder is doing this very work, and once it has finished
    its output is ours. The lock is an `flock`, which the kernel drops when its process
    dies, so a killed fit never leaves it held. The lock file stays behind (empty):
    deleting it would race with the next waiter.
    """
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        logger.info("another process is training into %s; waiting for it to finish", folder)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def train_into(
    folder: Path, train: Callable[[Path], tuple[keras.Model, FitResult]]
) -> TrainedFiles:
    """Fit with `train(checkpoint_dir)` and save into `folder`, once for all processes.

    Under `folder`'s lock a finished folder is returned as it is (`reused`), so two
    identical runs started together train once and share one model file; a fit killed
    before it finished resumes from `checkpoint_dir(folder)` when called again.
    """
    with _exclusive(folder):
        finished = read_trained(folder)
        if finished is not None:
            logger.info("%s is already trained; reusing it", folder)
            return finished
        model, result = train(checkpoint_dir(folder))
        return save_trained(model, result, folder)
