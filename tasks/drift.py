"""Drift steps: fetch the champion's reference (in the flow), store a comparison with it.

The reference is fetched in the flow, like the champion lookup (`tasks.registry`): which
version is champion must be read afresh every run. It is stored by its content hash, so the
domain's drift task (`tasks.energy.drift`, `tasks.siamese.drift`) is cached on the content
of both sides and a warm re-run shows it Cached.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from prefect.logging import get_run_logger

from lib.core.atomic import atomic_path
from lib.core.drift import DriftReport, write_report
from lib.core.model_spec import ModelSpec
from lib.core.refs import FileRef
from lib.core.settings import load_settings
from tasks.descriptors import ChampionRef, DriftRef
from tasks.storage import stored


def drift_against_champion(
    spec: ModelSpec, champion: ChampionRef | None, check: Callable[[FileRef, str], DriftRef]
) -> DriftRef:
    """`check(reference, champion_version)` on the champion's reference, if it has one.

    Without a champion, or with one that carries no reference, nothing is compared and the
    `DriftRef` says why; that is no failure. Call it from a flow run after the registry was
    reached (`tasks.registry.check_registry`).
    """
    if champion is None:
        return _unchecked(f"{spec.name} has no champion yet: nothing to compare with")
    reference = _champion_reference(spec, champion)
    if reference is None:
        return _unchecked(
            f"champion v{champion.version} carries no reference data (registered before "
            "versions did): nothing to compare with"
        )
    return check(reference, champion.version)


def _champion_reference(spec: ModelSpec, champion: ChampionRef) -> FileRef | None:
    """The champion's reference, stored under the home by its content hash (cache keys)."""
    from lib.core.registry import download_reference

    settings = load_settings()
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.scratch_dir) as scratch:
        uri = f"models:/{champion.name}/{champion.version}"
        found = download_reference(uri, Path(scratch))
        if found is None:
            return None
        downloaded = FileRef.of(found)
        target = settings.home / "references" / spec.pipeline / downloaded.sha256 / found.name
        if not target.is_file():
            with atomic_path(target) as temporary:
                shutil.copyfile(found, temporary)
    return stored(target)


def store_drift(report: DriftReport, folder: Path, champion_version: str) -> DriftRef:
    """Write the report (JSON) and its plot into `folder`; log the verdict."""
    summary = (
        f"against champion v{champion_version}'s training data: {report.verdict()} "
        f"({report.sizes()})"
    )
    logger = get_run_logger()
    (logger.warning if report.drifted else logger.info)("%s", summary)
    kept, plot = write_report(report, folder)
    return DriftRef(drifted=report.drifted, summary=summary, report=stored(kept), plot=stored(plot))


def _unchecked(summary: str) -> DriftRef:
    get_run_logger().info("drift not checked: %s", summary)
    return DriftRef(drifted=False, summary=f"not checked: {summary}")
