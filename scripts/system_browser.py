"""What a user sees in Airflow's UI, checked in headless Chromium: part of ``make system-test``.

Drives Debian's ``/usr/bin/chromium`` with Playwright (never a downloaded browser) through the
grid of the workflow run, the failing sweep's failed task log, the portal link of the job sensor and
the ``azbatch`` connection form, saving a screenshot of each in ``.system-test/screenshots/`` before
checking what it shows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from system_test import AirflowApi, Run

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 60_000
#: What the failed task's log must show: the Batch task that ended the job, its exit code, its stderr.
FAILURE_DETAILS = re.compile(r"point-0\d: exit code 2", re.I)


def browse(api: AirflowApi, base_url: str, runs: list[Run], failed_task: str, shots: Path) -> int:
    """Open the pages a user checks after a run; raise when something they need is missing."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
    from system_test import SystemTestFailure, quote

    workflow, slow_sweep, failing_sweep = runs[0], runs[1], runs[2]
    taken = 0
    notes: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})

        def shot(name: str) -> None:
            nonlocal taken
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            taken += 1

        def show(name: str, url: str, ready: str | re.Pattern[str]) -> str:
            """Open ``url``, wait until ``ready`` shows, screenshot it; the page's text."""
            page.goto(url)
            try:
                page.get_by_text(ready).first.wait_for(timeout=TIMEOUT_MS)
                page.wait_for_timeout(1500)  # let the rest of the page settle for the screenshot
            finally:
                shot(name)
            return str(page.locator("body").inner_text(timeout=TIMEOUT_MS))

        try:
            # 1. The grid of the workflow run: every task there, all green.
            run_url = f"{base_url}/dags/{workflow.dag_id}/runs/{quote(workflow.run_id)}"
            seen = show("1-workflow-grid", run_url, "wait_for_tasks")
            for task_id in ("create_pool", "add_tasks", "wait_for_tasks", "collect_logs", "delete_pool"):
                if task_id not in seen:
                    raise SystemTestFailure(f"the grid of {workflow.run_id} does not show {task_id}")
            if "Success" not in seen:
                raise SystemTestFailure(f"the page of {workflow.run_id} does not say Success")

            # 2. The failed task's log names the failed Batch task, its exit code and its stderr.
            match = re.fullmatch(r"(.+)\[(-?\d+)\]", failed_task)
            assert match is not None
            task_id, map_index = match.groups()
            mapped = f"/mapped/{map_index}" if map_index != "-1" else ""
            log_url = (
                f"{base_url}/dags/{failing_sweep.dag_id}/runs/{quote(failing_sweep.run_id)}"
                f"/tasks/{task_id}{mapped}"
            )
            seen = show("2-failed-task-log", log_url, FAILURE_DETAILS)
            if "--start" not in seen:
                raise SystemTestFailure(f"the log of {failed_task} shows no stderr of the failed point")

            # 3. The portal link of the slow sweep's sensor (the REST API's answer is checked already).
            sensor_url = (
                f"{base_url}/dags/{slow_sweep.dag_id}/runs/{quote(slow_sweep.run_id)}/tasks/wait_for_sweep"
            )
            show("3-sensor-page", sensor_url, "wait_for_sweep")
            link = page.locator("a", has_text="Azure Batch job")
            if not link.count():
                try:
                    page.get_by_text("Details", exact=True).first.click(timeout=10_000)
                    page.wait_for_timeout(3000)
                    shot("3-sensor-details")
                except PlaywrightError as err:
                    notes.append(f"could not open the sensor's Details tab: {str(err).splitlines()[0]}")
            if link.count():
                href = link.first.get_attribute("href") or ""
                if "portal.azure.com" not in href or "/jobs/" not in href:
                    raise SystemTestFailure(f"the sensor's 'Azure Batch job' link goes to {href!r}")
            else:
                notes.append("the task page shows no extra-link button (the REST API returns the link)")

            # 4. The azbatch connection form: no literal null, no field that is an error for Batch.
            try:
                _open_batch_connection_form(page, f"{base_url}/connections", shot)
            except PlaywrightError as err:
                # The UI's markup is Airflow's: say what could not be driven, check what it was given.
                shot("4-azbatch-connection-form")
                notes.append(f"could not fill the Add Connection form: {str(err).splitlines()[0]}")
            form = str(page.locator("body").inner_text(timeout=TIMEOUT_MS))
            try:
                choices = _auth_mode_choices(page)
                shot("5-azbatch-auth-mode-choices")
            except PlaywrightError as err:
                shot("5-azbatch-auth-mode-choices")
                notes.append(f"could not open the authentication mode dropdown: {str(err).splitlines()[0]}")
                choices = _auth_modes_from_api(api)
            problems = []
            if re.search(r"\bnull\b", form) or "null" in choices:
                problems.append(f"the literal 'null' shows (authentication modes: {choices})")
            for wrong in ("connection_string", "sas_token", "Connection string", "SAS token"):
                if wrong in form or wrong in choices:
                    problems.append(f"{wrong!r} is offered on the Batch form")
            if not {"shared_key", "service_principal"} <= set(choices):
                problems.append(f"the authentication modes offered are {choices}")
            if problems:
                raise SystemTestFailure("the azbatch connection form: " + "; ".join(problems))
        except PlaywrightError as err:
            raise SystemTestFailure(f"in the browser: {err} (screenshots so far in {shots})") from err
        finally:
            browser.close()
    for note in notes:
        print(f"system-test: note: {note}", flush=True)
    return taken


def _open_batch_connection_form(page: Any, connections_url: str, shot: Any) -> None:
    """Add Connection, type "Azure Batch (batch provider)", with every section of the form open."""
    page.goto(connections_url)
    page.get_by_role("button", name=re.compile("Add Connection", re.I)).first.click()
    page.get_by_text(re.compile("Connection Type", re.I)).first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(1000)
    shot("4-add-connection")
    page.get_by_role("combobox").first.click()
    page.keyboard.type("Azure Batch (batch")
    page.wait_for_timeout(1000)
    page.keyboard.press("Enter")
    page.get_by_text("Batch account URL").first.wait_for(timeout=TIMEOUT_MS)
    if not page.get_by_text("Authentication mode").first.is_visible():
        page.get_by_text("Extra Fields", exact=True).first.click()  # the accordion starts collapsed
    page.get_by_text("Authentication mode").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(1000)
    shot("4-azbatch-connection-form")


def _auth_mode_choices(page: Any) -> list[str]:
    """Open the "Authentication mode" dropdown and read its choices."""
    label = page.get_by_text("Authentication mode", exact=True).first
    field = label.locator("xpath=ancestor::*[.//select or .//*[@role='combobox']][1]")
    select = field.locator("select")
    if select.count():
        return [text.strip() for text in select.first.locator("option").all_inner_texts()]
    field.get_by_role("combobox").first.click()
    page.get_by_role("option").first.wait_for(timeout=TIMEOUT_MS)
    return [text.strip() for text in page.get_by_role("option").all_inner_texts()]


def _auth_modes_from_api(api: AirflowApi) -> list[str]:
    """The choices the UI is given for "Authentication mode" of an azbatch connection."""
    meta = api.request("GET", "/ui/connections/hook_meta")
    for hook in meta if isinstance(meta, list) else []:
        if hook.get("connection_type") == "azbatch":
            schema = ((hook.get("extra_fields") or {}).get("auth_type") or {}).get("schema") or {}
            return [str(choice) for choice in schema.get("enum") or []]
    return []
