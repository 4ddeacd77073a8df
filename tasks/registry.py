"""Registry steps: find the champion, load a version, register a candidate behind the gate.

Only `register_candidate` is a task. The champion lookup runs in the flow itself: it must
read the registry afresh every run, so as a task it would be the one step of a warm re-run
that is never Cached, for no benefit in the UI.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager, suppress
from importlib.metadata import version as installed_version
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.logging import get_run_logger
from prefect.settings import get_current_settings

from lib.core.gate import GateDecision, champion_gate
from lib.core.model_spec import ModelSpec
from lib.core.refs import FileRef
from lib.core.settings import load_settings
from tasks.descriptors import Candidate, ChampionRef
from tasks.storage import local_path

if TYPE_CHECKING:
    from lib.core.registry import Registration

# What a registered model needs beside trainflow's own code to load anywhere MLflow does.
SERVING_PACKAGES = ("tensorflow", "keras", "pandas", "numpy")
PROMOTION_LIMIT_PREFIX = "trainflow-promote-"
"""The Prefect server's global concurrency limit of one model is this prefix + its name."""
CONCURRENCY_LOGGER = "prefect._internal.concurrency"
ACQUISITION_FAILED = "Service %r failed to process item %r"
"""The record Prefect 3.9's concurrency services log when an item raises."""


def client_for(spec: ModelSpec) -> Any:
    """An MLflow client on the configured registry, with the experiment of `spec`."""
    from lib.core.registry import connect

    settings = load_settings()
    return connect(settings.tracking_uri, spec.pipeline, settings.artifact_root)


def check_registry(spec: ModelSpec) -> None:
    """Connect before training: a registry that is down fails the run in seconds, not after it.

    Call it from a flow run once its data is validated (so bad data never creates a registry).
    """
    client_for(spec)
    get_run_logger().info("registry reachable; %s versions will be registered there", spec.name)


def current_champion(spec: ModelSpec) -> ChampionRef | None:
    """The version holding the `champion` alias now; call it from a flow run.

    Raises:
        RegistryError: the registry did not answer; that is never "no champion".
    """
    from lib.core.registry import CANDIDATE_TAG, champion

    version = champion(client_for(spec), spec.name)
    if version is None:
        get_run_logger().info("%s has no champion yet", spec.name)
        return None
    get_run_logger().info("%s champion is version %s", spec.name, version.version)
    return ChampionRef(
        name=spec.name,
        version=str(version.version),
        candidate_id=version.tags.get(CANDIDATE_TAG, ""),
    )


def load_version(champion: ChampionRef) -> Any:
    """A registered version as the MLflow pyfunc every consumer loads (never from a pickle)."""
    from lib.core.registry import load_pyfunc

    # The tracking URI was set by `client_for` in this flow run.
    scratch = load_settings().scratch_dir
    return load_pyfunc(f"models:/{champion.name}/{champion.version}", scratch=scratch)


def _pip_requirements() -> list[str]:
    return [f"{name}=={installed_version(name)}" for name in SERVING_PACKAGES]


@contextmanager
def promotion_lock(spec: ModelSpec, timeout: float | None = None) -> Iterator[None]:
    """One promotion of `spec` at a time: per home by a file lock, per server by Prefect.

    With a Prefect server (`PREFECT_API_URL`), runs on other machines share no file system,
    so a global concurrency limit of 1 named after the model serialises them too. Its slot
    is leased: a holder killed without releasing it frees it when the lease (Prefect's
    default, 300 s) runs out. On the ephemeral API every process has its own, so the file
    lock is what holds there.

    Args:
        timeout: longest wait for each of the two, in seconds (default
            `lib.core.registry.PROMOTION_LOCK_SECONDS`).

    Raises:
        RegistryError: another run held the lock or the slot for `timeout` seconds.
    """
    from lib.core.registry import PROMOTION_LOCK_SECONDS, RegistryError
    from lib.core.registry import promotion_lock as file_lock

    timeout = PROMOTION_LOCK_SECONDS if timeout is None else timeout
    with file_lock(load_settings().home, spec.name, timeout=timeout), ExitStack() as held:
        api_url = get_current_settings().api.url
        if api_url is not None:
            limit = f"{PROMOTION_LIMIT_PREFIX}{spec.name}"
            _ensure_limit(limit)
            _quiet_acquisition_timeouts()
            try:  # the body's own errors pass untouched: it runs outside this `try`
                held.enter_context(
                    concurrency(limit, occupy=1, strict=True, timeout_seconds=timeout)
                )
            except TimeoutError as error:
                raise RegistryError(
                    f"Could not promote '{spec.name}': another run held the concurrency limit "
                    f"'{limit}' of the Prefect server at {api_url} for {timeout:g} s"
                ) from error
        yield


class _AcquisitionTimeouts(logging.Filter):
    """Drops Prefect's ERROR record of a slot acquisition that timed out.

    The caller receives that timeout as `TimeoutError` anyway (here: one `RegistryError`
    line); Prefect's service also logs the item it failed on, a line of internals that would
    sit beside the one line on a user's screen. Every other record passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        item = record.args[-1] if isinstance(record.args, tuple) and record.args else None
        future = item[-1] if isinstance(item, tuple) and item else None
        return not (
            record.msg == ACQUISITION_FAILED
            and isinstance(future, Future)
            and future.done()
            and isinstance(future.exception(), TimeoutError)
        )


def _quiet_acquisition_timeouts() -> None:
    """Install `_AcquisitionTimeouts` on Prefect's concurrency logger, once per process."""
    found = logging.getLogger(CONCURRENCY_LOGGER)
    if not any(isinstance(present, _AcquisitionTimeouts) for present in found.filters):
        found.addFilter(_AcquisitionTimeouts())


def _ensure_limit(name: str) -> None:
    """Create the global concurrency limit `name` with one slot, unless it exists."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )


def score_champion(
    spec: ModelSpec, champion: ChampionRef, test_data: tuple[FileRef, ...]
) -> ChampionRef:
    """The champion's metrics on the candidate's test data, or the champion set aside.

    A champion that cannot be loaded or scored (say a Keras upgrade broke its file, or it
    is a version with a pickled wrapper, registered before models from code, which is never
    loaded) would block every run: it is set aside with the reason, scoring NaN, and the
    candidate is judged on the floors. That is also the one way out of an old registry.
    A registry that does not answer is not a broken champion: that error propagates.
    """
    from mlflow.exceptions import MlflowException

    from lib.core.registry import RegistryError

    module, _, function = spec.scorer.partition(":")
    scorer = getattr(importlib.import_module(module), function)
    try:
        metrics = scorer(load_version(champion), *map(local_path, test_data))
    except (MlflowException, RegistryError):
        raise
    except Exception as error:  # anything the model itself raises: set it aside
        problem = f"champion v{champion.version} could not be scored: {error}".splitlines()[0]
        get_run_logger().warning("%s; it is set aside", problem)
        return champion.model_copy(
            update={"metrics": {spec.gate.score: math.nan}, "problem": problem}
        )
    return champion.model_copy(update={"metrics": metrics})


@task(task_run_name="register-{spec.name}", cache_policy=NO_CACHE)
def register_candidate(
    spec: ModelSpec, candidate: Candidate, champion: ChampionRef | None
) -> Registration:
    """Judge the candidate against the champion, register it, move `champion` if it won.

    Under the promotion lock the champion is read again; if another run changed it since
    `champion` was scored, the new one is scored on this candidate's test data first, so
    the decision is always made against the champion that is there when the alias moves.
    A champion that is this very candidate means nothing changed: no new version.
    """
    from lib.core.registry import end_orphaned_runs

    client = client_for(spec)
    with promotion_lock(spec):
        end_orphaned_runs(client, spec.pipeline, load_settings().home)
        rival = _current_rival(spec, candidate, champion)
        outcome = _register(spec, client, candidate, rival)
    get_run_logger().info("%s version %s: %s", spec.name, outcome.version, outcome.reason)
    return outcome


def scored_if_same(champion: ChampionRef | None, candidate: Candidate) -> ChampionRef | None:
    """`champion`, with the candidate's own metrics when it is this very candidate."""
    if champion is not None and champion.candidate_id == candidate.candidate_id:
        return champion.model_copy(update={"metrics": candidate.evaluation.metrics})
    return champion


def _current_rival(
    spec: ModelSpec, candidate: Candidate, seen: ChampionRef | None
) -> ChampionRef | None:
    """The champion now, scored on the candidate's test data (re-scored if it changed)."""
    current = scored_if_same(current_champion(spec), candidate)
    if current is None or current.metrics is not None:
        return current
    if seen is not None and seen.version == current.version and seen.metrics is not None:
        return seen
    get_run_logger().info("the champion changed to v%s meanwhile: scoring it", current.version)
    return score_champion(spec, current, candidate.test_data)


def flow_run_tags() -> dict[str, str]:
    """The Prefect flow run this is part of, by id and UI link: MLflow's way back to Prefect.

    The link names the server of `PREFECT_API_URL` (or `PREFECT_UI_URL`); runs on Prefect's
    temporary API are shown by `trainflow ui`'s Prefect server, its default address.
    """
    from prefect.runtime import flow_run
    from prefect.utilities.urls import url_for

    from lib.core.registry import FLOW_RUN_ID_TAG, FLOW_RUN_URL_TAG

    if flow_run.id is None:
        return {}
    url = url_for("flow-run", obj_id=flow_run.id, default_base_url=load_settings().prefect_ui_url)
    return {FLOW_RUN_ID_TAG: flow_run.id, **({FLOW_RUN_URL_TAG: url} if url else {})}


def _register(
    spec: ModelSpec, client: Any, candidate: Candidate, rival: ChampionRef | None
) -> Registration:
    from lib.core.registry import Candidate as Logged
    from lib.core.registry import register

    metrics = candidate.evaluation.metrics
    if rival is not None and rival.candidate_id == candidate.candidate_id:
        # Only a crash between moving the alias and recording the decision leaves this; a
        # complete version is "nothing changed" in `register` before the decision is used.
        decision = GateDecision(True, "this model is already the champion")
    else:
        decision = champion_gate(
            metrics, rival.metrics if rival else None, spec.gate, candidate.evaluation.test_rows
        )
    reason = f"{decision.reason} ({rival.problem})" if rival and rival.problem else decision.reason
    parameters = candidate.parameters
    module, _, function = spec.serving_signature.partition(":")
    signature, input_example = getattr(importlib.import_module(module), function)()
    return register(
        client,
        spec.name,
        Logged(
            candidate_id=candidate.candidate_id,
            keras_path=local_path(candidate.trained.model),
            model_code=spec.model_code(),
            params={"preset": parameters["preset"], "seed": parameters["seed"], **candidate.recipe},
            metrics=metrics,
            history=json.loads(local_path(candidate.trained.history).read_text()),
            tags={
                **candidate.tags,
                **{tag: repr(metrics[key]) for tag, key in spec.version_tags.items()},
                **flow_run_tags(),
            },
            artifacts=[local_path(plot) for plot in candidate.evaluation.plots],
            model_config={key: metrics[name] for key, name in spec.model_config.items()} or None,
            reference=local_path(candidate.reference) if candidate.reference else None,
            started_at=candidate.started_at,
            description=spec.description,
            signature=signature,
            input_example=input_example,
        ),
        promote=decision.promote,
        reason=reason,
        pip_requirements=_pip_requirements(),
        home=load_settings().home,
    )
