"""The shared-host story under a real JupyterHub with classic kernels (one driver JVM per notebook).

One hub for the module (conftest.py); two local accounts, each with two notebooks opened through the
hub's proxy (story.py): Spark counts in each, the JVMs run as their user, each Spark UI link answers
through the hub for its user only, and stopping a user's server from the hub leaves no JVM behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub import story
from hub.harness import Hub, HubUser, java_processes_of

pytestmark = [pytest.mark.slow, pytest.mark.hub, pytest.mark.extended]  # make test-hub; make test runs the shared mode's


@pytest.fixture(scope="module")
def opened(hub: Hub, hub_users: list[HubUser], classic_kernelspec: str) -> Iterator[story.Outputs]:
    yield from story.open_and_count(hub, hub_users, classic_kernelspec)


def test_each_user_counts_in_two_notebooks_through_the_hub(opened: story.Outputs) -> None:
    story.check_counts(opened)


def test_each_notebook_has_a_driver_jvm_of_its_users(hub_users: list[HubUser], opened: story.Outputs) -> None:
    for user in hub_users:
        drivers = java_processes_of(user.name, "org.apache.spark.deploy.SparkSubmit")
        assert len(drivers) == len(story.NOTEBOOKS), f"{user.name}'s JVMs: {[jvm.cmdline()[-3:] for jvm in drivers]}"


def test_each_spark_ui_link_answers_through_the_hub_for_its_user_only(hub: Hub, hub_users: list[HubUser], opened: story.Outputs) -> None:
    story.check_ui_links(hub, hub_users, opened)


def test_stopping_a_users_server_from_the_hub_leaves_no_jvm(hub: Hub, hub_users: list[HubUser], opened: story.Outputs) -> None:
    story.check_stop_leaves_no_jvm(hub, hub_users)
