"""Training progress as a Prefect progress artifact that moves epoch by epoch."""

from __future__ import annotations

from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger

PERCENT = 100.0


class EpochProgress:
    """A `lib.core.training` epoch hook that updates one progress artifact and logs each epoch."""

    def __init__(self, key: str, description: str) -> None:
        self._artifact_id: UUID = create_progress_artifact(  # type: ignore[assignment]
            progress=0.0, key=key, description=description
        )
        self._logger = get_run_logger()

    def __call__(self, epoch: int, total: int, logs: dict[str, float]) -> None:
        update_progress_artifact(self._artifact_id, progress=PERCENT * epoch / total)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(logs.items()) if k.endswith("loss"))
        self._logger.info("epoch %d/%d: %s", epoch, total, shown)

    def finish(self) -> None:
        """Early stopping ends before the last epoch; the bar should still read 100 %."""
        update_progress_artifact(self._artifact_id, progress=PERCENT)
