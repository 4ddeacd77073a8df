"""When the pipelines run on their own: the one source for `prefect.yaml` and `trainflow serve`.

`prefect.yaml` repeats these values (YAML cannot import Python); tests/flows/test_schedules.py
fails the moment the two disagree.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.energy import EnergyParameters
from flows.siamese import SiameseParameters
from flows.sweep import SweepParameters

TIMEZONE = "Europe/Berlin"
WORK_POOL = "trainflow-local"
# One run per deployment at a time: a slow run is never overtaken by the next one.
CONCURRENCY_LIMIT = 1

DATA_UPDATED_EVENT = "trainflow.data.updated"
DATA_RESOURCES = "trainflow.data.*"
# An upstream system announces new data with `DATA_UPDATED_EVENT` about a resource whose id
# starts with `trainflow.data.` (e.g. `trainflow.data.energy`); each such event starts one run.
DATA_UPDATED_TRIGGER: dict[str, Any] = {
    "type": "event",
    "enabled": True,
    "match": {"prefect.resource.id": DATA_RESOURCES},
    "expect": [DATA_UPDATED_EVENT],
    "posture": "Reactive",
    "threshold": 1,
    "within": 0,
}


def _defaults(
    model: type[EnergyParameters] | type[SiameseParameters] | type[SweepParameters],
) -> dict[str, Any]:
    return model().model_dump(mode="json")


@dataclass(frozen=True)
class Plan:
    """One deployment: what runs, when (`cron`; None: only when someone starts it), and with
    which parameters."""

    name: str
    entrypoint: str
    cron: str | None
    description: str
    tags: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    triggers: tuple[dict[str, Any], ...] = ()

    def load_flow(self) -> Flow[..., Any]:
        """The flow behind `entrypoint`, imported as a module so any working directory works."""
        if self.by_module:
            module, function = self.entrypoint.rsplit(".", 1)
        else:
            path, function = self.entrypoint.rsplit(":", 1)
            module = path.removesuffix(".py").replace("/", ".")
        return getattr(importlib.import_module(module), function)

    @property
    def by_module(self) -> bool:
        """Whether `entrypoint` is a module path (`flows.sweep.sweep_pipeline`), not a file."""
        return ":" not in self.entrypoint

    def to_deployment(self) -> RunnerDeployment:
        """The same deployment as in prefect.yaml, for `prefect.serve` (no work pool)."""
        deployment = self.load_flow().to_deployment(
            name=self.name,
            entrypoint_type=EntrypointType.MODULE_PATH
            if self.by_module
            else EntrypointType.FILE_PATH,
            description=self.description,
            tags=list(self.tags),
            schedules=[Cron(self.cron, timezone=TIMEZONE)] if self.cron else [],
            concurrency_limit=CONCURRENCY_LIMIT,
            parameters=self.parameters,
            triggers=[DeploymentEventTrigger(**spec) for spec in self.triggers],
        )
        assert isinstance(deployment, RunnerDeployment)  # called sync, not awaited
        return deployment


# Night hours in Berlin, an hour apart so the two trainings never share the 2 cores: energy
# takes minutes, siamese far longer. The monthly retrain-all runs first on the 1st; when the
# 1st is a Monday the weekly runs that follow find every step cached and register nothing new.
PLANS = (
    Plan(
        name="energy-retrain",
        entrypoint="flows/energy.py:energy_pipeline",
        cron="0 3 * * 1",
        description="Weekly energy retrain, Mondays 03:00 Europe/Berlin.",
        tags=("trainflow", "energy"),
        parameters={"params": _defaults(EnergyParameters)},
    ),
    Plan(
        name="siamese-retrain",
        entrypoint="flows/siamese.py:siamese_pipeline",
        cron="0 4 * * 1",
        description="Weekly siamese retrain, Mondays 04:00 Europe/Berlin.",
        tags=("trainflow", "siamese"),
        parameters={"params": _defaults(SiameseParameters)},
    ),
    Plan(
        name="retrain-all",
        entrypoint="flows/retrain.py:retrain_all",
        cron="0 2 1 * *",
        description=(
            "Both pipelines, 02:00 Europe/Berlin on the 1st of each month and whenever "
            f"'{DATA_UPDATED_EVENT}' arrives."
        ),
        tags=("trainflow",),
        parameters={
            "energy": _defaults(EnergyParameters),
            "siamese": _defaults(SiameseParameters),
        },
        triggers=(DATA_UPDATED_TRIGGER,),
    ),
    # No schedule: a sweep is started by someone with a question (which rate? which decay?),
    # with the seeds and values as parameters, e.g.
    #   prefect deployment run sweep/energy-sweep -p params='{"seeds": "0-7", ...}'
    Plan(
        name="energy-sweep",
        # A module path: the flow run's flow and parameters travel to the Dask scheduler and
        # workers, which import them by module name; a file entrypoint names the module `sweep`.
        entrypoint="flows.sweep.sweep_pipeline",
        cron=None,
        description=(
            "Energy sweep on Dask, started on demand: seeds x recipe values, the best on "
            "validation registered behind the champion gate."
        ),
        tags=("trainflow", "energy", "sweep"),
        parameters={"params": _defaults(SweepParameters)},
    ),
)
