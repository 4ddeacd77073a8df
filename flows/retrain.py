"""Both pipelines as subflows: what the monthly schedule and the data-updated trigger run."""

from __future__ import annotations

from prefect import flow
from prefect.states import Failed, State

from flows.energy import EnergyParameters, energy_pipeline
from flows.siamese import SiameseParameters, siamese_pipeline
from tasks.descriptors import RunSummary


@flow(name="retrain-all", flow_run_name="retrain-all", log_prints=True)
def retrain_all(
    energy: EnergyParameters | None = None, siamese: SiameseParameters | None = None
) -> dict[str, RunSummary] | State:
    """Retrain both models; one failing does not stop the other.

    Returns:
        The two pipeline summaries by pipeline name, or a Failed state whose message names
        every pipeline that failed and why (the run then ends Failed in the UI).
    """
    states = {
        "energy": energy_pipeline(energy, return_state=True),
        "siamese": siamese_pipeline(siamese, return_state=True),
    }
    failed = {name: state for name, state in states.items() if not state.is_completed()}
    if failed:
        completed = [name for name in states if name not in failed]
        headline = f"{' and '.join(failed)} failed" + (
            f" ({' and '.join(completed)} completed)" if completed else ""
        )
        reasons = "\n".join(f"{name}: {state.message}" for name, state in failed.items())
        return Failed(message=f"{headline}.\n{reasons}")
    return {name: state.result() for name, state in states.items()}
