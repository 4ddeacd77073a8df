"""Registry task helpers: the champion that is this candidate, champions set aside, and the
tags that lead from an MLflow run back to its Prefect flow run."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from prefect import flow
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL, temporary_settings

from lib.core.registry import FLOW_RUN_ID_TAG, FLOW_RUN_URL_TAG
from lib.energy.spec import SPEC
from tasks.descriptors import Candidate, ChampionRef, Evaluation, TrainedModel
from tasks.registry import flow_run_tags, score_champion, scored_if_same

pytestmark = pytest.mark.usefixtures("prefect_api")


def _candidate(tmp_path: Path) -> Candidate:
    from lib.core.refs import FileRef

    model = tmp_path / "model.keras"
    model.write_bytes(b"model")
    ref = FileRef.of(model)
    return Candidate(
        trained=TrainedModel(model=ref, history=ref, epochs_run=1, seconds=1.0),
        evaluation=Evaluation(metrics={"mean_rmse": 0.5}, test_rows=100, plots=()),
        parameters={"preset": "default", "seed": 0},
        recipe={},
        tags={},
        data={},
        test_data=(),
    )


def test_a_champion_that_is_this_candidate_takes_its_metrics(tmp_path: Path) -> None:
    candidate = _candidate(tmp_path)
    same = ChampionRef(name="m", version="3", candidate_id=candidate.candidate_id)
    other = ChampionRef(name="m", version="2", candidate_id="x" * 64)

    assert scored_if_same(same, candidate).metrics == {"mean_rmse": 0.5}
    assert scored_if_same(other, candidate).metrics is None
    assert scored_if_same(None, candidate) is None


def test_a_champion_that_cannot_be_scored_is_set_aside_with_the_reason(tmp_path: Path) -> None:
    # A scorer that fails as a broken model would: the champion is set aside, not fatal.
    spec = replace(SPEC, scorer="json:loads")
    champion = ChampionRef(name=SPEC.name, version="7", candidate_id="c" * 64)

    @flow
    def score() -> ChampionRef:
        return score_champion(spec, champion, ())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tasks.registry.load_version", lambda champion: "not json")
        scored = score()

    assert scored.metrics is not None and math.isnan(scored.metrics[SPEC.gate.score])
    assert scored.problem is not None and scored.problem.startswith(
        "champion v7 could not be scored"
    )


def test_flow_run_tags_name_the_flow_run_and_its_page_in_the_prefect_ui() -> None:
    @flow
    def tagged() -> tuple[dict[str, str], str]:
        return flow_run_tags(), str(flow_run.id)

    with temporary_settings(updates={PREFECT_UI_URL: "http://prefect.example:4200"}):
        tags, run_id = tagged()

    assert tags == {
        FLOW_RUN_ID_TAG: run_id,
        FLOW_RUN_URL_TAG: f"http://prefect.example:4200/runs/flow-run/{run_id}",
    }
    assert flow_run_tags() == {}  # outside a flow run there is nothing to link
