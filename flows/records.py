"""Let a local run's history reach Prefect's database before the process ends.

Without `PREFECT_API_URL`, Prefect serves its API from a subprocess that stops when this
process exits. That server records task runs from events, a moment after they happen, and
drops what is still queued when it stops ("Error flushing ... events"): `trainflow ui` would
later show a run's last tasks missing. Both flows end with their `register` task, and a
flow's task events are recorded in order, so once that task is recorded the run is complete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

LAST_TASK = "register"
RECORD_SECONDS = 30.0
POLL_SECONDS = 0.2


def wait_until_recorded(
    flow_run_ids: Collection[UUID], timeout: float = RECORD_SECONDS, last_task: str = LAST_TASK
) -> bool:
    """Wait (at most `timeout` s) until each flow run's `last_task` shows a final state.

    Returns whether they all did; a flow run that failed before its last task never will.
    """
    return asyncio.run(_wait(set(flow_run_ids), timeout, last_task))


async def _wait(flow_run_ids: set[UUID], timeout: float, last_task: str) -> bool:
    if not flow_run_ids:
        return True
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(flow_run_ids)))
            )
            finished = {
                run.flow_run_id
                for run in task_runs
                if run.name.startswith(last_task) and run.state is not None and run.state.is_final()
            }
            if finished >= flow_run_ids:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)
