"""fit(): history, progress hook, early stopping, resume after a crash; atomic saves."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from lib.core.training import (
    FitResult,
    checkpoint_dir,
    fit,
    read_trained,
    save_model,
    train_into,
    write_history,
)
from tests.fixtures import fit_child
from tests.fixtures.fresh_process import CHILD_TIMEOUT_SECONDS, REPO_ROOT

SEED = 3
N_TRAIN, N_VALIDATION, N_FEATURES = 32, 16, 4
TOLERANCE = 1e-6
LEARNING_RATE = 0.05


class Killed(RuntimeError):
    """Stands in for the process dying (OOM, pre-emption) in the middle of training."""


def _linear_problem() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(N_TRAIN + N_VALIDATION, N_FEATURES)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0]) + 1.0).astype("float32")[:, None]
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


def _noise_problem() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Targets unrelated to the inputs: validation loss only worsens once the mean is learnt."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(N_TRAIN + N_VALIDATION, N_FEATURES)).astype("float32")
    y = rng.normal(size=(N_TRAIN + N_VALIDATION, 1)).astype("float32")
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


def _model(hidden: int = 0, learning_rate: float = LEARNING_RATE) -> keras.Model:
    keras.utils.set_random_seed(SEED)  # equal initial weights for every model built here
    layers: list[keras.layers.Layer] = [keras.Input(shape=(N_FEATURES,))]
    if hidden:
        layers.append(keras.layers.Dense(hidden, activation="relu"))
    layers.append(keras.layers.Dense(1))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


class Recorder:
    """An `on_epoch` hook that remembers its calls and can crash the run after a given epoch."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.calls: list[tuple[int, int, dict[str, float]]] = []
        self._crash_after = crash_after

    def __call__(self, epoch: int, total: int, logs: dict[str, float]) -> None:
        self.calls.append((epoch, total, logs))
        if epoch == self._crash_after:
            raise Killed(f"killed after epoch {epoch}")

    @property
    def epochs(self) -> list[int]:
        return [epoch for epoch, _, _ in self.calls]


def test_fit_returns_history_epochs_and_time(tmp_path: Path) -> None:
    train, validation = _linear_problem()
    result = fit(
        _model(), train, validation, epochs=3, batch_size=N_TRAIN, checkpoint_dir=tmp_path / "ckpt"
    )
    assert {"loss", "val_loss"} <= set(result.history)
    assert all(len(values) == 3 for values in result.history.values())
    assert all(isinstance(value, float) for value in result.history["loss"])
    assert result.epochs_run == 3
    assert result.seconds > 0
    assert not (tmp_path / "ckpt").exists()  # a finished run deletes its backup


def test_on_epoch_hook_is_called_once_per_epoch_counting_from_one(tmp_path: Path) -> None:
    train, validation = _linear_problem()
    hook = Recorder()
    fit(_model(), train, validation, epochs=3, batch_size=8, checkpoint_dir=tmp_path, on_epoch=hook)
    assert hook.epochs == [1, 2, 3]
    assert {total for _, total, _ in hook.calls} == {3}
    for _, _, logs in hook.calls:
        assert {"loss", "val_loss"} <= set(logs)
        assert all(isinstance(value, float) for value in logs.values())


def test_fit_accepts_tf_data_datasets(tmp_path: Path) -> None:
    (x, y), (x_val, y_val) = _linear_problem()
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    validation = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(8)
    result = fit(_model(), train, validation, epochs=2, batch_size=999, checkpoint_dir=tmp_path)
    assert result.epochs_run == 2
    assert len(result.history["val_loss"]) == 2


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path: Path) -> None:
    train, validation = _noise_problem()
    model = _model(hidden=64)
    epochs = 200
    result = fit(
        model,
        train,
        validation,
        epochs=epochs,
        batch_size=N_TRAIN,
        checkpoint_dir=tmp_path,
        early_stopping_patience=3,
    )
    assert result.epochs_run < epochs
    best = int(np.argmin(result.history["val_loss"]))
    assert best == result.epochs_run - 1 - 3  # stopped `patience` epochs after the best
    restored = model.evaluate(*validation, verbose=0)
    assert restored == pytest.approx(min(result.history["val_loss"]), rel=1e-5)
    assert restored < result.history["val_loss"][-1]


def test_reduce_lr_on_plateau_lowers_the_learning_rate(tmp_path: Path) -> None:
    train, validation = _noise_problem()
    model = _model(hidden=64, learning_rate=LEARNING_RATE)
    # On this problem validation loss is worse at epoch 3 than at 2: patience 1 halves the rate.
    fit(
        model,
        train,
        validation,
        epochs=5,
        batch_size=N_TRAIN,
        checkpoint_dir=tmp_path,
        reduce_lr_patience=1,
    )
    assert float(model.optimizer.learning_rate.numpy()) <= LEARNING_RATE / 2


def test_a_killed_run_resumes_from_its_last_finished_epoch(tmp_path: Path) -> None:
    train, validation = _linear_problem()
    checkpoint_dir = tmp_path / "ckpt"
    common: dict[str, Any] = {"epochs": 6, "batch_size": N_TRAIN, "checkpoint_dir": checkpoint_dir}

    first = Recorder(crash_after=3)
    with pytest.raises(Killed, match="after epoch 3"):
        fit(_model(), train, validation, on_epoch=first, **common)
    assert first.epochs == [1, 2, 3]
    assert any(checkpoint_dir.iterdir())  # the backup survives the crash

    # A new process: a freshly built model, the same checkpoint directory.
    resumed_model = _model()
    second = Recorder()
    result = fit(resumed_model, train, validation, on_epoch=second, **common)
    assert second.epochs == [4, 5, 6]
    assert {total for _, total, _ in second.calls} == {6}
    assert result.resumed_from == 3
    assert result.epochs_run == 6  # the history covers the epochs before the crash too
    assert result.history["loss"][:3] == [logs["loss"] for _, _, logs in first.calls]
    assert result.history["loss"][3:] == [logs["loss"] for _, _, logs in second.calls]
    assert not checkpoint_dir.exists()

    # Full-batch steps are deterministic: crash + resume lands where an unbroken run does,
    # which needs the weights and the optimizer's moments restored, not just the epoch count.
    unbroken = _model()
    fit(unbroken, train, validation, **{**common, "checkpoint_dir": tmp_path / "other"})
    for resumed, reference in zip(resumed_model.get_weights(), unbroken.get_weights(), strict=True):
        np.testing.assert_allclose(resumed, reference, rtol=0, atol=TOLERANCE)


def test_an_uninterrupted_fit_says_it_did_not_resume(tmp_path: Path) -> None:
    train, validation = _linear_problem()
    result = fit(_model(), train, validation, epochs=2, batch_size=N_TRAIN, checkpoint_dir=tmp_path)
    assert result.resumed_from is None


def _crash_after_three_of_six(checkpoint_dir: Path) -> tuple[Recorder, dict[str, Any]]:
    """A run killed after epoch 3: its backup holds epoch 3 (latest) and epoch 2 (previous)."""
    train, validation = _linear_problem()
    common: dict[str, Any] = {"epochs": 6, "batch_size": N_TRAIN, "checkpoint_dir": checkpoint_dir}
    first = Recorder(crash_after=3)
    with pytest.raises(Killed):
        fit(_model(), train, validation, on_epoch=first, **common)
    return first, common


def _unbroken_weights(tmp_path: Path, common: dict[str, Any]) -> list[np.ndarray]:
    train, validation = _linear_problem()
    model = _model()
    fit(model, train, validation, **{**common, "checkpoint_dir": tmp_path / "unbroken"})
    return list(model.get_weights())


@pytest.mark.parametrize(
    ("damaged", "content"),
    [
        ("latest.weights.h5", None),  # truncated to half: a kill while HDF5 was written
        ("latest.weights.h5", b"not an HDF5 file"),
        ("training_metadata.json", b'{"epo'),  # a kill while the epoch count was written
    ],
)
def test_a_damaged_latest_checkpoint_resumes_from_the_previous_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damaged: str, content: bytes | None
) -> None:
    checkpoint_dir = tmp_path / "ckpt"
    first, common = _crash_after_three_of_six(checkpoint_dir)
    target = checkpoint_dir / damaged
    target.write_bytes(
        content if content is not None else target.read_bytes()[: target.stat().st_size // 2]
    )

    caplog.set_level(logging.INFO, logger="trainflow.training")
    train, validation = _linear_problem()
    model, second = _model(), Recorder()
    result = fit(model, train, validation, on_epoch=second, **common)
    assert result.resumed_from == 2
    assert second.epochs == [3, 4, 5, 6]
    assert result.epochs_run == 6
    assert result.history["loss"][:2] == [logs["loss"] for _, _, logs in first.calls[:2]]
    assert "cannot resume from" in caplog.text
    assert "resuming training from epoch 2 of 6" in caplog.text
    # The previous checkpoint is a whole state: the run lands where an unbroken one does.
    for resumed, reference in zip(
        model.get_weights(), _unbroken_weights(tmp_path, common), strict=True
    ):
        np.testing.assert_allclose(resumed, reference, rtol=0, atol=TOLERANCE)


def test_a_backup_that_cannot_be_read_at_all_trains_from_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint_dir = tmp_path / "ckpt"
    _, common = _crash_after_three_of_six(checkpoint_dir)
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        (checkpoint_dir / name).write_bytes(b"garbage")

    caplog.set_level(logging.INFO, logger="trainflow.training")
    train, validation = _linear_problem()
    model, second = _model(), Recorder()
    result = fit(model, train, validation, on_epoch=second, **common)
    assert result.resumed_from is None
    assert second.epochs == [1, 2, 3, 4, 5, 6]
    assert result.epochs_run == 6
    assert "no usable checkpoint" in caplog.text
    assert not checkpoint_dir.exists()
    # Nothing of the failed restore is left in the model or the optimizer.
    for trained, reference in zip(
        model.get_weights(), _unbroken_weights(tmp_path, common), strict=True
    ):
        np.testing.assert_allclose(trained, reference, rtol=0, atol=TOLERANCE)


def test_train_into_saves_once_and_reuses_a_complete_folder(tmp_path: Path) -> None:
    train, validation = _linear_problem()
    folder = tmp_path / "out"
    calls: list[Path] = []

    def fit_model(backup: Path) -> tuple[keras.Model, FitResult]:
        calls.append(backup)
        model = _model()
        return model, fit(
            model, train, validation, epochs=2, batch_size=N_TRAIN, checkpoint_dir=backup
        )

    assert read_trained(folder) is None
    first = train_into(folder, fit_model)
    assert calls == [checkpoint_dir(folder)]
    assert not first.reused
    assert (first.model, first.history) == (folder / "model.keras", folder / "history.json")
    assert sorted(path.name for path in folder.iterdir()) == [
        "fit.json",
        "history.json",
        "model.keras",
    ]

    again = train_into(folder, fit_model)
    assert calls == [checkpoint_dir(folder)]  # nothing trained the second time
    assert again.reused
    assert (again.model, again.epochs_run, again.seconds) == (first.model, 2, first.seconds)


def test_train_into_trains_again_when_the_folder_is_incomplete(tmp_path: Path) -> None:
    train, validation = _linear_problem()
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"a model whose history was never written")

    def fit_model(backup: Path) -> tuple[keras.Model, FitResult]:
        model = _model()
        return model, fit(
            model, train, validation, epochs=1, batch_size=N_TRAIN, checkpoint_dir=backup
        )

    assert read_trained(folder) is None
    trained = train_into(folder, fit_model)
    assert not trained.reused
    keras.saving.load_model(trained.model, safe_mode=True)


# Real processes: a training child (tests/fixtures/fit_child.py) killed with SIGKILL, then the
# same command again, as a retried task or a re-run flow would do.

POLL_SECONDS = 0.05


def _start(folder: Path, epochs_log: Path, **env: str) -> subprocess.Popen[str]:
    """Start `fit_child` training into `folder`; its output goes to files beside `epochs_log`."""
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **env,
    }
    out, err = epochs_log.with_suffix(".out"), epochs_log.with_suffix(".err")
    with out.open("w") as stdout, err.open("w") as stderr:  # the child keeps its own copies
        return subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.fit_child", str(folder), str(epochs_log)],
            stdout=stdout,
            stderr=stderr,
            text=True,
            env=child_env,
            cwd=REPO_ROOT,
        )


def _finish(child: subprocess.Popen[str], epochs_log: Path) -> dict[str, Any]:
    """Wait for a child that must succeed; return the summary it printed last."""
    child.wait(timeout=CHILD_TIMEOUT_SECONDS)
    assert child.returncode == 0, epochs_log.with_suffix(".err").read_text()[-3000:]
    return dict(json.loads(epochs_log.with_suffix(".out").read_text().splitlines()[-1]))


def _epochs_seen(epochs_log: Path) -> list[dict[str, Any]]:
    """The epochs a child's hook reported, in order (none if it never trained)."""
    if not epochs_log.exists():
        return []
    return [json.loads(line) for line in epochs_log.read_text().splitlines()]


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_SECONDS)


@pytest.mark.slow
def test_a_process_killed_at_epoch_five_resumes_in_a_new_process(tmp_path: Path) -> None:
    folder, first_log, second_log = (
        tmp_path / "out",
        tmp_path / "first.jsonl",
        tmp_path / "second.jsonl",
    )
    killed = _start(folder, first_log, TRAINFLOW_FAULT="epoch:5")
    killed.wait(timeout=CHILD_TIMEOUT_SECONDS)
    assert killed.returncode == -signal.SIGKILL
    before = _epochs_seen(first_log)
    assert [seen["epoch"] for seen in before] == [1, 2, 3, 4, 5]
    assert not folder.exists()  # nothing saved: only the backup holds the work
    assert (checkpoint_dir(folder) / "latest.weights.h5").is_file()

    summary = _finish(_start(folder, second_log), second_log)
    epochs = fit_child.EPOCHS
    assert summary["resumed_from"] == 5
    assert f"resuming training from epoch 5 of {epochs}" in " ".join(summary["messages"])
    after = _epochs_seen(second_log)
    assert [seen["epoch"] for seen in after] == list(range(6, epochs + 1))
    assert summary["epochs_run"] == epochs
    history = summary["history"]
    assert {len(values) for values in history.values()} == {epochs}
    for key, values in history.items():  # the dead process's epochs, then the new one's
        assert values == [seen["logs"][key] for seen in before + after]
    assert not checkpoint_dir(folder).exists()


@pytest.mark.slow
def test_a_process_killed_from_outside_resumes_in_a_new_process(tmp_path: Path) -> None:
    """SIGKILL from another process lands wherever the child is, a checkpoint write included."""
    folder, first_log, second_log = (
        tmp_path / "out",
        tmp_path / "first.jsonl",
        tmp_path / "second.jsonl",
    )
    victim = _start(folder, first_log)
    _wait_for(lambda: len(_epochs_seen(first_log)) >= 3, "three epochs")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=CHILD_TIMEOUT_SECONDS)
    before = _epochs_seen(first_log)

    summary = _finish(_start(folder, second_log), second_log)
    resumed_from = summary["resumed_from"]
    assert resumed_from is not None and resumed_from >= 3
    history = summary["history"]
    assert {len(values) for values in history.values()} == {fit_child.EPOCHS}
    kept = min(resumed_from, len(before))
    assert history["loss"][:kept] == [seen["logs"]["loss"] for seen in before[:kept]]


@pytest.mark.slow
def test_two_identical_fits_at_once_train_once_and_share_the_model(tmp_path: Path) -> None:
    folder, go = tmp_path / "out", tmp_path / "go"
    logs = [tmp_path / f"child{i}.jsonl" for i in range(2)]
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    children = [
        _start(folder, log, FIT_CHILD_READY=str(flag), FIT_CHILD_GO=str(go))
        for log, flag in zip(logs, ready, strict=True)
    ]
    _wait_for(lambda: all(flag.exists() for flag in ready), "both children to import TensorFlow")
    go.touch()  # both call train_into within milliseconds of each other
    summaries = [_finish(child, log) for child, log in zip(children, logs, strict=True)]

    assert summaries[0]["model"] == summaries[1]["model"] == str(folder / "model.keras")
    assert sorted(summary["reused"] for summary in summaries) == [False, True]
    trainer, waiter = sorted(summaries, key=lambda summary: summary["reused"])
    epochs_by_pid = {
        summary["pid"]: len(_epochs_seen(log)) for summary, log in zip(summaries, logs, strict=True)
    }
    assert epochs_by_pid == {trainer["pid"]: fit_child.EPOCHS, waiter["pid"]: 0}
    assert any("waiting for it to finish" in message for message in waiter["messages"])
    assert waiter["history"] == trainer["history"]
    assert trainer["resumed_from"] is None


def test_save_model_returns_the_sha256_of_the_written_file(tmp_path: Path) -> None:
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input(shape=(N_FEATURES,)), keras.layers.Dense(1)])
    target = tmp_path / "models" / "energy.keras"
    digest = save_model(model, target)
    assert digest == hashlib.sha256(target.read_bytes()).hexdigest()
    assert sorted(path.name for path in target.parent.iterdir()) == ["energy.keras"]
    reloaded = keras.saving.load_model(target, safe_mode=True)
    x = np.ones((2, N_FEATURES), dtype="float32")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_write_history_round_trips_through_json(tmp_path: Path) -> None:
    history = {"loss": [2.5, 1.25, 0.625], "val_loss": [3.0, 2.0, 1.5]}
    target = tmp_path / "runs" / "history.json"
    write_history(history, target)
    assert json.loads(target.read_text()) == history
    assert sorted(path.name for path in target.parent.iterdir()) == ["history.json"]
