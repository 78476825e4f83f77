"""JupyterLab in headless Chromium, as a person uses it: launcher -> PySpark_Python3 -> run Spark.

JupyterLab and the browser come from conftest.py (the ``lab`` fixture). Screenshots go to
test-artifacts/e2e/.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from e2e.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, TOKEN

pytestmark = pytest.mark.e2e


def test_pyspark_kernel_in_jupyterlab(lab: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()  # a context: the UI opens in a second tab
        try:
            page.goto(f"{lab}/lab?token={TOKEN}")
            card = page.locator('.jp-LauncherCard[title*="PySpark_Python3"]').first
            card.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "1-launcher.png"))
            card.click()
            # A cell run before the kernel is connected is silently not sent: wait as a person would.
            expect(page.get_by_text("PySpark_Python3 | Idle").first).to_be_visible(timeout=60_000)

            def run_cell(code: str, index: int) -> None:
                editor = page.locator(".jp-Notebook .jp-Cell .cm-content").nth(index)
                editor.wait_for(timeout=60_000)
                editor.click()
                page.keyboard.type(code)
                page.keyboard.press("Shift+Enter")

            run_cell("spark.range(1000).count()", 0)
            expect(page.locator(".jp-OutputArea-output", has_text="1000").first).to_be_visible(timeout=120_000)
            link = page.locator('.jp-OutputArea-output a:has-text("Spark UI")').first
            expect(link).to_be_visible(timeout=30_000)
            href = link.get_attribute("href") or ""
            assert "/pyspark-ui/k" in href, f"the UI opens through the server's route, by the kernel's key: {href}"
            page.screenshot(path=str(ARTIFACTS / "2-count.png"))
            # One click away for its owner: the route adds the UI's token, behind JupyterLab's own login.
            # (page.request carries the page's login cookie, as the click's new tab would.)
            ui = page.request.get(href if href.startswith("http") else f"{lab}{href}")
            assert ui.status == 200 and "Spark Jobs" in ui.text(), (ui.status, ui.text()[:300])
            the_ui_works_and_cannot_script_jupyter(page.context, href if href.startswith("http") else f"{lab}{href}")

            run_cell(
                "from pyspark.sql import functions as F\n"
                "spark.range(0, 40_000_000, numPartitions=32).select((F.col('id') % 5).alias('k'), F.sqrt('id').alias('v'))"
                ".groupBy('k').agg(F.sum('v')).orderBy('k').count()",
                1,
            )
            progress = page.locator(".pyspark-kernel-progress").first
            expect(progress).to_be_visible(timeout=120_000)
            page.screenshot(path=str(ARTIFACTS / "3-progress-running.png"))
            # The display ends in the one-line summary (of the closed job view), every counted task done.
            summary = re.compile(r"^Spark: \d+ jobs?, \d+ stages?, (\d+)/\1 tasks in [\d.]+ s$")
            expect(page.locator(".pyspark-kernel-progress details.pyspark-kernel-summary > summary", has_text=summary).first).to_be_visible(timeout=180_000)
            expect(page.locator(".jp-OutputArea-output").filter(has_text=re.compile(r"^5$")).first).to_be_visible(timeout=60_000)
            assert "$" not in progress.inner_text() or "&#36;" not in progress.inner_html()
            page.screenshot(path=str(ARTIFACTS / "4-progress-done.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"))
            raise
        finally:
            browser.close()


def the_ui_works_and_cannot_script_jupyter(context: Any, jobs_url: str) -> None:
    """The Spark UI through the route, in a tab of the notebook's browser: its pages render and their
    scripts run (the jobs timeline, a job's DAG, the executors and environment pages, which fetch the
    UI's REST API), with no Content-Security-Policy violation; and a script in its page cannot use
    Jupyter's origin: no fetch of Jupyter's API, no frame of it, no window of it it can reach, and no
    login cookie to read."""
    from playwright.sync_api import expect

    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    try:
        tab.goto(jobs_url)
        tab.locator("span.expand-application-timeline").click()
        expect(tab.locator("#application-timeline .vis-timeline")).to_be_visible(timeout=30_000)
        tab.screenshot(path=str(ARTIFACTS / "5-ui-timeline.png"))
        tab.goto(jobs_url + "job/?id=0")
        tab.locator("span.expand-dag-viz").first.click()
        expect(tab.locator("#dag-viz-graph svg g.node").first).to_be_attached(timeout=30_000)
        tab.goto(jobs_url.replace("/jobs/", "/executors/"))
        expect(tab.locator("#active-executors-table tbody tr").first).to_be_visible(timeout=30_000)  # from /api/v1
        tab.screenshot(path=str(ARTIFACTS / "6-ui-executors.png"))
        tab.goto(jobs_url.replace("/jobs/", "/environment/"))
        expect(tab.get_by_text("spark.app.id").first).to_be_attached(timeout=30_000)  # from /api/v1, in a tab not shown
        assert problems == [], problems
        reached = tab.evaluate(ESCAPES)
        assert reached == {"api": "blocked", "frame": "blocked", "window": "cut off", "login_cookie": False}, reached
    except Exception:
        tab.screenshot(path=str(ARTIFACTS / "ui-failure.png"))
        raise
    finally:
        tab.close()


# What a script in a Spark UI page can do with Jupyter's origin (run in that page).
ESCAPES = """async () => {
  const api = await fetch('/api/kernels').then(r => 'read ' + r.status).catch(() => 'blocked');
  const frame = await new Promise(done => {
    const element = document.createElement('iframe');
    element.src = '/api/status';
    element.onload = () => { let body = null; try { body = element.contentDocument && element.contentDocument.body.innerText; } catch (e) {} done(body && body.includes('started') ? 'read' : 'blocked'); };
    document.body.appendChild(element);
    setTimeout(() => done('blocked'), 5000);
  });
  const opened = window.open('/api/status');
  await new Promise(resolve => setTimeout(resolve, 3000));
  let window_ = 'cut off';
  try { if (opened && !opened.closed && opened.document.body.innerText.includes('started')) window_ = 'read'; } catch (e) {}
  if (opened) { try { opened.close(); } catch (e) {} }
  return {api, frame, window: window_, login_cookie: document.cookie.includes('username-')};
}"""
