"""A jupyter_server extension: each kernel's Spark UI, one click away for its owner and for nobody else.

The UI of a local-mode kernel answers only requests that carry a token signed with its JVM's key
(uiauth.py). This extension serves ``<base_url>pyspark-ui/<port>/...`` behind the Jupyter server's own
login (an authenticated JupyterHandler), and forwards each request to ``127.0.0.1:<port>`` with
``Authorization: Bearer <token>``, the token read from ``<runtime dir>/pyspark-ui-<port>.json``, which
only this user can read and only a running kernel of this user writes. So no port is exposed, and a
port with no such file is not proxied at all: this is not a general proxy to local ports.

Why not jupyter-server-proxy: its ``/proxy/<port>`` route forwards a request as it came and cannot add a
per-kernel header (its ``request_headers_override`` is fixed per named server in the server's config,
read at start, while keys are made per JVM later). The route is keyed by the UI's port, which is
fixed for the JVM's life (and in its ``spark.ui.proxyBase``), not by the kernel's id, which changes
when a pool hands a started kernel to a notebook.

Loading the extension puts the route's prefix in the server's environment (PYSPARK_KERNEL_UI_ROUTE),
which the kernels this server starts inherit: they then link their UI through it (settings.py).
Only GET is forwarded: the UI's forms are not sent through Jupyter's XSRF check, so they are refused.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import httpclient, web

from .uiauth import read_route

ROUTE = "pyspark-ui"
ROUTE_VAR = "PYSPARK_KERNEL_UI_ROUTE"  # settings.UI_ROUTE_VAR; not imported, to keep the kernel side out
FORWARDED_HEADERS = ("Content-Type", "Cache-Control", "Content-Disposition", "Location")
TIMEOUT_SECONDS = 60.0


class SparkUIHandler(JupyterHandler):
    """``<base_url>pyspark-ui/<port><path>`` -> ``http://127.0.0.1:<bound><path>`` with the kernel's token,
    where ``bound`` is the port that UI bound: ``port`` itself unless Spark had to take another."""

    @web.authenticated
    async def get(self, port: str, path: str | None) -> None:
        route = read_route(int(port))
        if route is None:
            raise web.HTTPError(404, f"No running pyspark-kernel Spark UI on port {port} for this user.")
        bound, token = route
        url = f"http://127.0.0.1:{bound}{path or '/'}"
        if self.request.query:
            url += f"?{self.request.query}"
        request = httpclient.HTTPRequest(
            url, headers={"Authorization": f"Bearer {token}"}, follow_redirects=False, request_timeout=TIMEOUT_SECONDS,
        )
        try:
            response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as error:  # the JVM is gone or has not bound its UI yet
            raise web.HTTPError(502, f"The Spark UI on port {bound} does not answer: {error}") from None
        self.set_status(response.code, response.reason)
        for name in FORWARDED_HEADERS:
            value = response.headers.get(name)
            if value is not None:
                self.set_header(name, local_location(value, bound) if name == "Location" else value)
        if response.body:
            self.finish(response.body)


def local_location(location: str, port: int) -> str:
    """A redirect of the UI, made relative to the browser's origin (the UI names itself by its own host)."""
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        if location.startswith(origin):
            return location[len(origin):] or "/"
    return location


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "pyspark_kernel.serverext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base_url = serverapp.web_app.settings["base_url"]
    prefix = url_path_join(base_url, ROUTE) + "/"
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base_url, ROUTE, r"(\d+)(/.*)?"), SparkUIHandler)])
    os.environ[ROUTE_VAR] = prefix
    serverapp.log.info("pyspark-kernel: Spark UIs of this user's kernels at %s<port>/", prefix)
