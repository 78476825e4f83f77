"""The live line of a cell that waits for its session: "Waiting for Spark to start: 3.5 s", then how long it took.

The first cell of a notebook is the one its user waits on longest: Spark may still be starting, and its
first query is the slowest. Without this the cell showed nothing until its result. A cell that touches
``spark`` or ``sc`` (a stand-in, namespace.py) or pyspark's own entry points (pyspark_hooks.py) while a
start is in flight waits inside this line, updated twice a second from a thread of its own, and the
session's job view (cellprogress.py) follows in the same cell once the session is up.
"""

from __future__ import annotations

import html
import threading
import time
import uuid
from types import TracebackType

from pyspark_kernel.kernel.progress_display import MIN_UPDATE_SECONDS, Publisher

STYLE = "font-family:monospace;font-size:0.85em"


def render(text: str) -> dict[str, str]:
    return {"text/plain": text, "text/html": f'<div class="pyspark-kernel-wait" style="{STYLE}">{html.escape(text)}</div>'}


class WaitLine:
    """``with WaitLine(publish, since):`` shows the wait live while the block runs, and its end after it.

    ``since``: when the start began (time.monotonic()), so that the line counts the start's whole time,
    not only this cell's share of it."""

    def __init__(self, publish: Publisher, since: float | None) -> None:
        self.publish = publish
        self.began = time.monotonic()
        self.since = since if since is not None else self.began
        self.display_id = f"pyspark-wait-{uuid.uuid4().hex}"
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="pyspark-kernel-wait-line", daemon=True)

    def __enter__(self) -> WaitLine:
        self.publish(render(self._waiting()), self.display_id, False)
        self._thread.start()
        return self

    def _waiting(self) -> str:
        return f"Waiting for the Spark session to start: {time.monotonic() - self.since:.1f} s"

    def _tick(self) -> None:
        while not self._done.wait(MIN_UPDATE_SECONDS):
            try:
                self.publish(render(self._waiting()), self.display_id, True)
            except Exception:  # a display that cannot be sent must not end the wait
                return

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        self._done.set()
        self._thread.join(1.0)
        waited = time.monotonic() - self.began
        if kind is None:
            text = f"Spark session started in {time.monotonic() - self.since:.1f} s (this cell waited {waited:.1f} s)"
        elif issubclass(kind, KeyboardInterrupt):
            text = f"Stopped waiting for the Spark session after {waited:.1f} s (interrupted); it goes on starting"
        else:
            text = f"The Spark session did not start ({waited:.1f} s): the cell says why"
        try:
            self.publish(render(text), self.display_id, True)
        except Exception:
            pass
