"""A jupyter_server extension: each kernel's Spark UI, one click away for its owner and for nobody else.

The UI of a local-mode kernel answers only requests that carry a token signed with its JVM's key
(kernel/uiprotect.py). This extension serves ``<base_url>pyspark-ui/<key>/...`` behind the Jupyter server's own
login (an authenticated JupyterHandler), and forwards each request to ``127.0.0.1:<port>`` with
``Authorization: Bearer <token>``, the port and token read from the kernel's route file (uiroute.py),
which only this user can read and only a running kernel of this user writes. So no port is exposed,
and a key with no such file is not proxied at all: this is not a general proxy to local ports. A key
of digits is a port (older links; kernels started outside this server): the route of the live kernel
whose UI bound it.

Before each forward it checks that the socket listening on that port is still the recorded JVM's: a JVM
can die alone (the OOM killer picks the biggest process) and another local account then bind the freed
port, whose pages this server would otherwise show under its own origin, with the owner's cookies.

The pages it serves run Spark's scripts under Jupyter's origin, so they carry a Content-Security-Policy
that lets them reach their own route and nothing else of Jupyter's: no fetch, XHR or websocket outside
the route (Jupyter's REST API and kernels), no frames, workers or plugins, forms only to the route, and
``Cross-Origin-Opener-Policy: same-origin``, which cuts a window they open onto Jupyter's pages off from
them. (A ``sandbox`` policy would give them an opaque origin instead, but Spark's own scripts then stop:
every page reads ``localStorage`` at load, and the executors and environment pages fetch their data
from the UI's REST API, which an opaque origin reaches without the login cookie.)

Why not jupyter-server-proxy: its ``/proxy/<port>`` route forwards a request as it came and cannot add a
per-kernel header (its ``request_headers_override`` is fixed per named server in the server's config,
read at start, while keys are made per JVM later). The route is keyed by a key of the kernel process,
chosen before its JVM starts (its ``spark.ui.proxyBase``), neither by the UI's port, which another
program can take before Spark binds it, nor by the kernel's id, which changes when a pool hands a
started kernel to a notebook.

Loading the extension puts the route's prefix in the server's environment (PYSPARK_KERNEL_UI_ROUTE),
which the kernels this server starts inherit: they then link their UI through it (settings.py).
Only GET is forwarded: the UI's forms are not sent through Jupyter's XSRF check, so they are refused.
"""

from __future__ import annotations

import asyncio
import atexit
import os
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import httpclient, web

from pyspark_kernel import localserver
from pyspark_kernel.uiroute import listener, read_route

ROUTE = "pyspark-ui"
ROUTE_VAR = "PYSPARK_KERNEL_UI_ROUTE"  # settings.UI_ROUTE_VAR; not imported, to keep the kernel side out
# Set-Cookie is never among them: the UI's cookies would be Jupyter's origin's.
FORWARDED_HEADERS = ("Content-Type", "Cache-Control", "Content-Disposition", "Location")
TIMEOUT_SECONDS = 60.0


class SparkUIHandler(JupyterHandler):
    """``<base_url>pyspark-ui/<key><path>`` -> ``http://127.0.0.1:<port><path>`` with the kernel's token,
    where ``port`` is the one its UI bound, while the recorded JVM is the one listening there."""

    @web.authenticated
    async def get(self, key: str, path: str | None) -> None:
        route = read_route(key)
        if route is None:
            raise web.HTTPError(404, "No running pyspark-kernel Spark UI at %s for this user (its kernel has exited?).", key)
        if route.port is None:
            raise web.HTTPError(503, "The Spark UI of this kernel is not up yet (its session is starting, or it has no UI). Reload in a moment.")
        await self.check_listener(route)
        url = f"http://127.0.0.1:{route.port}{path or '/'}"
        if self.request.query:
            url += f"?{self.request.query}"
        request = httpclient.HTTPRequest(
            url,
            # A shared local server's UI serves many kernels' routes, so it has no spark.ui.proxyBase; Spark
            # then takes its links' prefix from this header (UIUtils.uiRoot). A kernel's own UI has one, which wins.
            headers={"Authorization": f"Bearer {route.token}", "X-Forwarded-Context": url_path_join(self.base_url, ROUTE, key)},
            follow_redirects=False,
            request_timeout=TIMEOUT_SECONDS,
        )
        try:
            response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as error:  # the JVM is gone or has not bound its UI yet
            raise web.HTTPError(502, "The Spark UI on port %s does not answer: %s", route.port, error) from None
        await self.check_listener(route)  # and still is: nothing else answered in between
        self.set_status(response.code, response.reason)
        for name in FORWARDED_HEADERS:
            value = response.headers.get(name)
            if value is not None:
                self.set_header(name, local_location(value, route.port) if name == "Location" else value)
        for name, value in page_headers(f"{self.request.host}{url_path_join(self.base_url, ROUTE, key)}/").items():
            self.set_header(name, value)
        if response.body:
            self.finish(response.body)

    async def check_listener(self, route: Any) -> None:
        """502, with what happened and what to do, unless the route's JVM listens on its port."""
        problem = await asyncio.to_thread(listener, route)  # a few /proc reads: off the server's loop
        if problem is not None:
            raise web.HTTPError(502, "%s", problem)


def page_headers(route: str) -> dict[str, str]:
    """The headers of every forwarded answer: ``route`` (host and path, no scheme: the page's own) is
    the only place of Jupyter's origin its scripts may fetch from or post forms to."""
    policy = [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",  # Spark's pages run inline scripts (setUIRoot, timelines)
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        f"connect-src {route}",  # the UI's own REST API, not Jupyter's
        f"form-action {route}",
        "frame-src 'none'",
        "worker-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'self'",
    ]
    return {
        "Content-Security-Policy": "; ".join(policy),
        "Cross-Origin-Opener-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def local_location(location: str, port: int) -> str:
    """A redirect of the UI, made relative to the browser's origin (the UI names itself by its own host)."""
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        if location.startswith(origin):
            return location[len(origin) :] or "/"
    return location


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "pyspark_kernel.server.uiproxy"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base_url = serverapp.web_app.settings["base_url"]
    prefix = url_path_join(base_url, ROUTE) + "/"
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base_url, ROUTE, r"([0-9a-z]+)(/.*)?"), SparkUIHandler)])
    os.environ[ROUTE_VAR] = prefix
    serverapp.log.info("pyspark-kernel: Spark UIs of this user's kernels at %s<key>/", prefix)
    # The shared local Connect servers (localserver.py) outlive their last kernel by an idle time, for the
    # next notebook; a Jupyter server that stops (JupyterHub stopping a user's server) takes along those
    # its kernels left unused, so it leaves no JVM behind. One a kernel of another Jupyter server uses stays.
    atexit.register(stop_unused_servers, serverapp.log)


def stop_unused_servers(log: Any) -> None:
    stopped = localserver.stop_unused()
    if stopped:
        log.info("pyspark-kernel: stopped the shared local Spark Connect server(s) no kernel uses: pid %s", ", ".join(map(str, stopped)))
