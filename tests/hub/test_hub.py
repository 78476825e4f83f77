"""The shared-host story under a real JupyterHub: two local accounts, each with two notebooks.

One hub (tests/hub/conftest.py) serves the module; each user's server is started, used and stopped
through the hub's REST API and proxy, as JupyterLab and an admin would. What is checked, per user:
Spark runs in both notebooks; the Spark UI link of each notebook's session line answers through the
hub for its user and for nobody else; the JVMs run as that user; stopping the user's server from the
hub leaves no JVM of theirs behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest
from hub.harness import Hub, HubNotebook, HubUser, java_processes_of, stop_server, ui_link

pytestmark = [pytest.mark.slow, pytest.mark.hub]

NOTEBOOKS = ("first.ipynb", "second.ipynb")
COUNT = "spark.range(1000).count()"
JVM_EXIT_SECONDS = 90


@pytest.fixture(scope="module")
def opened(hub: Hub, hub_users: list[HubUser], classic_kernelspec: str) -> Iterator[dict[str, dict[str, list[dict]]]]:
    """Both notebooks of each user opened through the hub, and a count run in each: every cell's outputs
    by user and notebook. The kernels start together (all sessions first), as notebooks opened at once."""
    for user in hub_users:
        user.notebooks = [HubNotebook(hub, user.name, user.token, path) for path in NOTEBOOKS]
        for notebook in user.notebooks:
            notebook.open(classic_kernelspec)
    outputs = {user.name: {notebook.path: notebook.run(COUNT) for notebook in user.notebooks} for user in hub_users}
    yield outputs
    for user in hub_users:
        for notebook in user.notebooks:
            notebook.close()


def result_of(outputs: list[dict]) -> str:
    errors = [output for output in outputs if output["type"] == "error"]
    assert not errors, "\n".join(errors[0]["traceback"])
    return [output["data"]["text/plain"] for output in outputs if output["type"] == "execute_result"][-1]


def test_each_user_counts_in_two_notebooks_through_the_hub(opened: dict[str, dict[str, list[dict]]]) -> None:
    for user, notebooks in opened.items():
        for path, outputs in notebooks.items():
            assert result_of(outputs) == "1000", f"{user}'s {path}: {outputs}"


def test_each_kernels_jvm_runs_as_its_user(hub_users: list[HubUser], opened: dict[str, dict[str, list[dict]]]) -> None:
    """A classic kernel has a driver JVM of its own: two per user, each run by that user's uid."""
    for user in hub_users:
        jvms = java_processes_of(user.name, "org.apache.spark.deploy.SparkSubmit")
        assert len(jvms) == len(NOTEBOOKS), f"{user.name}'s JVMs: {[jvm.cmdline()[-3:] for jvm in jvms]}"


def test_each_spark_ui_link_answers_through_the_hub_for_its_user_only(hub: Hub, hub_users: list[HubUser], opened: dict[str, dict[str, list[dict]]]) -> None:
    for user in hub_users:
        other = next(someone for someone in hub_users if someone is not user)
        for path, outputs in opened[user.name].items():
            link = ui_link(outputs)
            assert link and link.startswith(f"/user/{user.name}/pyspark-ui/"), f"{user.name}'s {path}: session line {outputs}"
            own = hub.get(link, user.token)
            assert own.status_code == 200 and "Spark Jobs" in own.text, f"{user.name} opening {link}: {own.status_code} {own.text[:300]}"
            for who, token in ((other.name, other.token), ("no one", None)):
                answer = hub.get(link, token)
                assert answer.status_code in (302, 401, 403, 404), f"{who} opening {user.name}'s {link}: {answer.status_code} {answer.text[:300]}"
                assert "Spark Jobs" not in answer.text


def test_stopping_a_users_server_from_the_hub_leaves_no_jvm(hub: Hub, hub_users: list[HubUser], opened: dict[str, dict[str, list[dict]]]) -> None:
    for user in hub_users:
        assert java_processes_of(user.name), f"{user.name} has no JVM before the stop: nothing to prove"
        for notebook in user.notebooks:
            notebook.close()
        stop_server(hub, user.name)
        jvms = java_processes_of(user.name)
        _, alive = psutil.wait_procs(jvms, timeout=JVM_EXIT_SECONDS)
        assert not alive, f"{user.name}'s JVMs still run {JVM_EXIT_SECONDS} s after the hub stopped their server: {[p.pid for p in alive]}"
        assert not java_processes_of(user.name), f"a new JVM of {user.name} started after the stop"
