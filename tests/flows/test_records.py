"""wait_until_recorded: done once each flow run's last task is on record, bounded otherwise."""

from __future__ import annotations

import pytest
from prefect import flow, task

from flows.records import wait_until_recorded

pytestmark = pytest.mark.usefixtures("prefect_api")


@task(task_run_name="register-thing")
def register_thing() -> int:
    return 1


@task(task_run_name="prepare-thing")
def prepare_thing() -> int:
    return 1


@flow
def ends_with_register() -> int:
    return prepare_thing() + register_thing()


@flow
def never_registers() -> int:
    return prepare_thing()


def test_true_once_every_run_recorded_its_last_task() -> None:
    first = ends_with_register(return_state=True).state_details.flow_run_id
    second = ends_with_register(return_state=True).state_details.flow_run_id
    assert wait_until_recorded([first, second])


def test_false_after_the_timeout_when_a_run_never_reached_it() -> None:
    done = ends_with_register(return_state=True).state_details.flow_run_id
    stopped = never_registers(return_state=True).state_details.flow_run_id
    assert not wait_until_recorded([done, stopped], timeout=1.0)


def test_nothing_to_wait_for() -> None:
    assert wait_until_recorded([], timeout=0.0)
