"""Training progress, three ways: a Prefect progress artifact, a few log lines, a terminal bar.

The run's log gets a line at the first epoch, at each further tenth of the epochs and at the
last one (about 11 lines whatever the epoch count), so the lines that matter in a 300-epoch
run are not buried under 300 others; a resumed fit logs the first epoch it runs, and one
stopped early ends with its last epoch too. The progress artifact, which the Prefect UI
shows while the task runs, says which epoch and the last losses, not just a percentage.
The bar (`tasks.progress_bar`) moves every epoch.
"""

from __future__ import annotations

import time
from types import TracebackType
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger

from tasks.progress_bar import EpochBar, terminal_console

PERCENT = 100.0
LOG_PARTS = 10
"""The log gets a line per tenth of the epochs."""
ARTIFACT_SECONDS = 5.0
"""Between log lines, the artifact is updated at most this often. Each update is an API call
that costs the client and the server about 15 ms of CPU together, taken from the fits when
a sweep keeps every core training; the log lines still update it every tenth of the epochs."""
LOSSES = ("loss", "val_loss")


def is_milestone(epoch: int, total: int) -> bool:
    """Whether `epoch` (1-based) is the first, the last, or the first of a new tenth of `total`."""
    return epoch in (1, total) or epoch * LOG_PARTS // total != (epoch - 1) * LOG_PARTS // total


def _losses(logs: dict[str, float]) -> str:
    return ", ".join(f"{key} {logs[key]:.4g}" for key in LOSSES if key in logs)


class EpochProgress:
    """A `lib.core.training` epoch hook for a Prefect task; a context manager for the bar.

    Use as ``with EpochProgress(pipeline, description) as progress:``, pass `progress` as
    the fit's `on_epoch`, and call `finish` once the fit has returned. The artifact's key is
    ``train-<pipeline>-progress``.
    """

    def __init__(self, pipeline: str, description: str) -> None:
        self._description = description
        self._artifact_id: UUID = create_progress_artifact(  # type: ignore[assignment]
            progress=0.0, key=f"train-{pipeline}-progress", description=f"{description}: starting"
        )
        self._artifact_at = time.monotonic()
        self._logger = get_run_logger()
        self._logger.info("training %s", description)  # TensorFlow's start can take a while
        console = terminal_console()
        self._bar = EpochBar(console, pipeline) if console is not None else None
        self._last: tuple[int, int, dict[str, float]] | None = None
        self._logged = 0

    def __call__(self, epoch: int, total: int, logs: dict[str, float]) -> None:
        first = self._last is None
        self._last = (epoch, total, logs)
        milestone = first or is_milestone(epoch, total)
        if milestone:
            resumed = " (resumed)" if first and epoch > 1 else ""
            self._logger.info("epoch %d/%d%s: %s", epoch, total, resumed, _losses(logs))
            self._logged = epoch
        if milestone or time.monotonic() - self._artifact_at >= ARTIFACT_SECONDS:
            self._update_artifact(PERCENT * epoch / total, f"epoch {epoch}/{total}", logs)
        if self._bar is not None:
            self._bar.show(epoch, total, logs.get("loss"), logs.get("val_loss"))

    def finish(self) -> None:
        """The fit has returned: the artifact reads 100 % and the log has the last epoch.

        Early stopping ends before the last epoch, and its last epoch is seldom a milestone.
        """
        if self._last is None:  # no epoch ran here: reused, or resumed after the last one
            self._update_artifact(PERCENT, "no epoch left to train", {})
            return
        epoch, total, logs = self._last
        if self._logged != epoch:
            self._logger.info("epoch %d/%d (stopped early): %s", epoch, total, _losses(logs))
        stopped = "" if epoch == total else f" (stopped early, of {total})"
        self._update_artifact(PERCENT, f"{epoch} epochs{stopped}", logs)

    def _update_artifact(self, progress: float, status: str, logs: dict[str, float]) -> None:
        losses = _losses(logs)
        description = f"{self._description}: {status}{', ' if losses else ''}{losses}"
        update_progress_artifact(self._artifact_id, progress=progress, description=description)
        self._artifact_at = time.monotonic()

    def __enter__(self) -> EpochProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
