"""The shared-host story, told the same way for each kernelspec: open, count, the Spark UI link, stop.

Each test module (test_hub_*.py) starts its own hub (conftest.py) and calls these steps from its
tests, in order; the last one stops each user's server through the hub.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psutil

from hub.harness import Hub, HubNotebook, HubUser, java_processes_of, start_server, stop_server, ui_link

NOTEBOOKS = ("first.ipynb", "second.ipynb")
COUNT = "spark.range(1000).count()"
JVM_EXIT_SECONDS = 90
Outputs = dict[str, dict[str, list[dict[str, Any]]]]  # user -> notebook path -> the count cell's outputs


def open_and_count(hub: Hub, users: list[HubUser], kernelspec: str) -> Iterator[Outputs]:
    """Each user's server started through the hub's API, both notebooks opened through its proxy (all
    sessions first, so the kernels start together, as notebooks opened at once), then a count in each;
    yields every count cell's outputs, and closes the websockets after."""
    for user in users:
        start_server(hub, user.name)
    for user in users:
        user.notebooks = [HubNotebook(hub, user.name, user.token, path) for path in NOTEBOOKS]
        for notebook in user.notebooks:
            notebook.open(kernelspec)
    outputs = {user.name: {notebook.path: notebook.run(COUNT) for notebook in user.notebooks} for user in users}
    yield outputs
    for user in users:
        for notebook in user.notebooks:
            notebook.close()


def result_of(outputs: list[dict[str, Any]]) -> str:
    errors = [output for output in outputs if output["type"] == "error"]
    assert not errors, "\n".join(errors[0]["traceback"])
    results = [output["data"]["text/plain"] for output in outputs if output["type"] == "execute_result"]
    assert results, f"no result: {outputs}"
    return str(results[-1])


def check_counts(opened: Outputs) -> None:
    for user, notebooks in opened.items():
        for path, outputs in notebooks.items():
            assert result_of(outputs) == "1000", f"{user}'s {path}: {outputs}"


def check_ui_links(hub: Hub, users: list[HubUser], opened: Outputs) -> None:
    """Each notebook's Spark UI link (its session line's) opens through the hub with its user's token, its
    page's links stay on that route, and it does not open with the other user's token nor with none (the
    hub's 403, or a redirect to its login)."""
    for user in users:
        other = next(someone for someone in users if someone is not user)
        for path, outputs in opened[user.name].items():
            link = ui_link(outputs)
            assert link and link.startswith(f"/user/{user.name}/pyspark-ui/"), f"{user.name}'s {path}: no Spark UI link in {outputs}"
            own = hub.get(link, user.token)
            assert own.status_code == 200 and "Spark Jobs" in own.text, f"{user.name} opening {link}: {own.status_code} {own.text[:300]}"
            route = link.removesuffix("jobs/")
            assert f'href="{route}' in own.text, f"the UI's own links leave {route} (behind the hub's /user/{user.name}/ prefix)"
            for who, token in ((other.name, other.token), ("a client with no token", None)):
                answer = hub.get(link, token)
                assert answer.status_code in (302, 401, 403, 404), f"{who} opening {user.name}'s {link}: {answer.status_code} {answer.text[:300]}"
                assert "Spark Jobs" not in answer.text


def check_stop_leaves_no_jvm(hub: Hub, users: list[HubUser]) -> None:
    """``DELETE /hub/api/users/<name>/server``, then no JVM of that user within JVM_EXIT_SECONDS."""
    for user in users:
        assert java_processes_of(user.name), f"{user.name} has no JVM before the stop: nothing to prove"
        for notebook in user.notebooks:
            notebook.close()
        stop_server(hub, user.name)
        _, alive = psutil.wait_procs(java_processes_of(user.name), timeout=JVM_EXIT_SECONDS)
        assert not alive, f"{user.name}'s JVMs still run {JVM_EXIT_SECONDS} s after the hub stopped their server: {[p.pid for p in alive]}\n{hub.log_tail()}"
        assert not java_processes_of(user.name), f"a JVM of {user.name} started after the hub stopped their server"
