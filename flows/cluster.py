"""The Dask cluster a sweep's trials run on: a `LocalCluster` of processes, or a scheduler.

prefect-dask's `DaskTaskRunner` does the Prefect side (each submitted task runs through
Prefect's task engine on a worker, with the flow run's context). What it leaves to us:

- Workers must reach the flow's Prefect API. Under `trainflow`'s temporary API server the
  flow process has no `PREFECT_API_URL`, and a worker without one would start a temporary
  server of its own; the flow's settings, with the URL of the server it uses, travel with
  every submitted task (Prefect serialises the settings context), so every worker records
  its task runs where the flow does.
- Workers must see the same state: the store (`TRAINFLOW_STORE`, and the `AWS_*` variables
  boto3 signs in with), mirrors and tracking URI are set on each worker by a worker plugin.
  Each worker loads the `StoreRecords` block (`tasks.result_storage.RECORDS`) from the
  flow's API, and writes files and records to the store its `TRAINFLOW_STORE` names. With an
  S3 store a worker needs nothing else of the flow's machine: it keeps its own
  `TRAINFLOW_HOME` (working files, and copies fetched from the store by hash). A folder store
  lives on a disk, so then the workers get the flow's `TRAINFLOW_HOME` and store folder
  (absolute) and must share that disk.
- One trial per thread: TensorFlow's thread pools are sized to the worker's threads before a
  trial starts TensorFlow, so N one-thread workers do not fight over the cores with N full
  pools each. A worker that already runs TensorFlow keeps the pools it has.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin

from lib.core.settings import (
    HOME_VARIABLE,
    MIRROR_VARIABLE,
    STORE_VARIABLE,
    TRACKING_VARIABLE,
    load_settings,
)
from lib.core.store import S3_SCHEME

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner

THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
SHARED_VARIABLES = (MIRROR_VARIABLE, TRACKING_VARIABLE, "MLFLOW_LOGGING_LEVEL")
# boto3's own variables (keys, session token, region, endpoint, profile): how the workers
# reach an S3 store as the flow does.
SHARED_PREFIXES = ("AWS_",)
# Spawned worker processes read it when they import distributed: its INFO lines (worker
# start, plugins, closing comms) would bury the trials' own lines on the terminal.
PRELOADED = ("tasks.sweep", "keras")
QUIET_VARIABLE = "TRAINFLOW_QUIET_WORKERS"
"""Set to 1 (`trainflow sweep --quiet`): local workers print nothing on the terminal; the
Prefect API still gets their logs. Workers of a scheduler of yours keep their output."""
QUIET_DASK = {"DASK_LOGGING__DISTRIBUTED": "warning"}
LOCAL_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}
"""Dask config for the local cluster (the scheduler and nannies in the flow process; the
nannies hand it on to their workers). A trial is a Keras fit whose per-step Python (tracing,
callbacks, checkpoints) waits for the GIL whenever the worker's own event loop runs, and on
a machine whose cores all train, every cycle the cluster spends is taken from a fit. By
default Dask's statistical profiler walks every thread's stack 100 times a second for the
dashboard, the loop's health check ticks 50 times a second, the system monitor samples CPU,
memory and I/O twice a second and the memory monitor reads the worker's size ten times a
second; idle, that is about 1 % of a core per worker and 3 % in the flow process, a third
of that with these settings. Workers of your own scheduler keep your config: give them the
same settings (as `DASK_DISTRIBUTED__...` variables, README "Sweeps")."""


class TrainflowWorker(WorkerPlugin):
    """Give a worker the flow's store and settings and TensorFlow pools of its thread count."""

    name = "trainflow"

    def __init__(self, environ: dict[str, str], quiet: bool = False) -> None:
        self.environ = environ
        self.quiet = quiet

    def setup(self, worker: Any) -> None:
        from lib.core.malloc import cap_arenas
        from lib.core.quiet import quiet_tensorflow_import

        threads = str(worker.state.nthreads)
        for variable in THREAD_VARIABLES:
            os.environ.setdefault(variable, threads)  # a value the user set on the worker wins
        os.environ.update(self.environ)
        cap_arenas()  # before a trial starts TensorFlow's thread pools (lib.core.malloc)
        quiet_tensorflow_import()  # its native banner, on every worker's stderr otherwise
        # Prefect, the task modules and Keras (TensorFlow) take seconds to import: pay that
        # while the cluster starts, not in the first trial each worker runs.
        for module in PRELOADED:
            importlib.import_module(module)
        if self.quiet:  # what --quiet promises: the summary alone (errors reach the flow)
            with open(os.devnull, "w") as sink:
                os.dup2(sink.fileno(), 1)
                os.dup2(sink.fileno(), 2)


@dataclass
class Cluster:
    """The running task runner, what it is, and how long it took to start (seconds)."""

    runner: DaskTaskRunner
    description: str
    start_seconds: float


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in this process's environment meanwhile (so spawned workers inherit them)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def sweep_cluster(workers: int, address: str | None) -> Iterator[Cluster]:
    """A `DaskTaskRunner` on a new `LocalCluster` of `workers` one-thread processes, or on
    the scheduler at `address`; the cluster it made is closed on leaving.

    Call it inside a flow run: the API it hands the workers is that run's.
    """
    import dask
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_dask import DaskTaskRunner

    api_url = str(get_client(sync_client=True).api_url)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    # Closing the cluster, a nanny waits 4 s for its worker (TensorFlow's threads hold it)
    # and then ends it, with a WARNING per worker: what a closing cluster does, not news.
    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
    if address:
        runner = DaskTaskRunner(address=address)
        description = f"the Dask scheduler at {address}"
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={
                "n_workers": workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": ":0",  # any free port: two sweeps at once both start
            }
        )
        description = f"a local Dask cluster of {workers} worker processes"
    environ = worker_environment()
    with (
        temporary_settings({PREFECT_API_URL: api_url}),
        dask.config.set({} if address else LOCAL_WORKER_CONFIG),
        runner,
    ):
        started = time.perf_counter()
        with _environment({**QUIET_DASK, **environ}):
            quiet = not address and os.environ.get(QUIET_VARIABLE) == "1"
            runner.client.register_plugin(TrainflowWorker(environ, quiet))
        yield Cluster(runner, description, time.perf_counter() - started)


def worker_environment() -> dict[str, str]:
    """What the workers take from this process's environment (see the module).

    The store always, as this process resolved it; the home only with a folder store, whose
    workers share this disk (absolute: a worker resolves a relative path against its own
    working directory). With an S3 store each worker keeps its own `TRAINFLOW_HOME`.
    """
    settings = load_settings()
    environ = {
        key: value
        for key, value in os.environ.items()
        if key in SHARED_VARIABLES or key.startswith(SHARED_PREFIXES)
    }
    environ[STORE_VARIABLE] = settings.store
    if not settings.store.startswith(S3_SCHEME):
        environ[HOME_VARIABLE] = str(settings.home)
        environ[STORE_VARIABLE] = str(Path(settings.store).expanduser().resolve())
    return environ
