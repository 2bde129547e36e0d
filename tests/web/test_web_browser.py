"""The browser in a real browser: Debian's chromium, headless, driven by Selenium through the
system chromedriver. Each page loads and is screenshotted, the links between pages lead where
they say, the leaderboard sorts, and HTML from the archive stays text (no script runs).

Screenshots go under tmp_path; ``AUTOTUNER_SCREENSHOT_DIR=docs/screenshots`` writes them there
instead (how the README's are made). Skipped with a reason where chromium or chromedriver is
missing (``apt-get install chromium chromium-driver``; ``.ci/run`` installs them), except in
CI (``$CI`` set), where a skip would hide a gap.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the archive browser needs the web extra: pip install -e '.[web]'")

from web_support import HOSTILE_MODEL, HOSTILE_REASON, SCRIPT  # noqa: E402
from web_support import demo_archive, served  # noqa: E402, F401 - fixtures (demo_url: SQLite only, below)

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (it comes with the dev extra)"
    absent = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if absent:
        return f"no {' or '.join(absent)}: apt-get install chromium chromium-driver (.ci/run does)"
    return None


@pytest.fixture(scope="module", params=["sqlite"])
def demo_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The browser tests run on SQLite only: the pages' queries are the same on both backends
    (test_web_app covers PostgreSQL over HTTP)."""
    from archive_backends import open_backend

    yield from open_backend(request, tmp_path_factory.mktemp("web-browser"))


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,1000",
                "--hide-scrollbars", "--force-device-scale-factor=1", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("AUTOTUNER_SCREENSHOT_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(driver: Any, folder: Path, name: str) -> Path:
    """The whole page, not just the window: the window is grown to the page's height first."""
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
    driver.set_window_size(1440, max(height, 600))
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    driver.set_window_size(1440, 1000)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


def h1(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "h1").text


def test_each_page_loads_and_is_screenshotted(served, driver, shots) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    base, _, demo = served
    visits = {
        "leaderboard": ("/leaderboard", "Leaderboard"),
        "leaderboard-stale": ("/leaderboard?include_stale=1&sort=speedup_eager&dir=desc", "Leaderboard"),
        "tasks": ("/tasks", "Tasks"),
        "task": (f"/tasks/{demo.tasks['relu']}", "Task relu"),
        "kernel": (f"/kernels/{demo.kernels['relu/crossover']}", f"Kernel #{demo.kernels['relu/crossover']}"),
        "runs": ("/runs", "Runs"),
        "run": (f"/runs/{demo.run_id}", f"Run {demo.run_id}"),
    }
    for name, (path, title) in visits.items():
        driver.get(base + path)
        assert h1(driver).startswith(title), (path, h1(driver))
        # the stylesheet applied (a script-free page still gets its CSS under the CSP)
        header = driver.find_element(By.TAG_NAME, "header")
        assert header.value_of_css_property("background-color") == "rgba(16, 24, 40, 1)", path
        screenshot(driver, shots, name)
    assert {p.stem for p in shots.glob("*.png")} >= set(visits)


def test_pages_show_what_they_promise(served, driver) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    base, _, demo = served
    driver.get(base + "/leaderboard")
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "section.board th")]
    assert {"speedup vs eager", "speedup vs torch.compile", "% of roofline"} <= {h.rstrip(" ▲▼") for h in heads}
    assert len(driver.find_elements(By.CSS_SELECTOR, "section.board")) == 4  # H100 and L4, strict and hybrid
    driver.get(base + "/leaderboard?include_stale=1")
    assert driver.find_element(By.CSS_SELECTOR, "tr.stale .stale-badge").text == "stale"

    driver.get(base + f"/kernels/{demo.kernels['relu/crossover']}")
    assert driver.find_elements(By.CSS_SELECTOR, "#source .hl span.s2, #source .hl span.k")  # highlighted tokens
    assert "BLOCK" in driver.find_element(By.CSS_SELECTOR, "table.params").text
    provenance = driver.find_element(By.CSS_SELECTOR, "table.provenance").text
    assert "560.35.03" in provenance and "2.13.0" in provenance and "NVIDIA H100" in provenance
    assert len(driver.find_elements(By.CSS_SELECTOR, "section.diff")) == 2  # a crossover: a diff to each parent
    assert driver.find_elements(By.CSS_SELECTOR, "#lineage li.current")

    driver.get(base + f"/runs/{demo.run_id}")
    plot = driver.find_element(By.ID, "progress-plot")
    assert plot.size["width"] > 300 and len(plot.find_elements(By.CSS_SELECTOR, "polyline.series")) == 4
    assert plot.find_elements(By.CSS_SELECTOR, "line.eager-line") and plot.find_elements(By.CSS_SELECTOR, "line.compile-line")
    assert driver.find_element(By.ID, "llm-calls").text == "18"


def test_links_between_pages_lead_where_they_say(served, driver) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    base, _, demo = served
    driver.get(base + "/")
    assert driver.current_url.endswith("/leaderboard")
    driver.find_element(By.CSS_SELECTOR, "tr[data-task=softmax] a.task-link").click()
    assert h1(driver) == "Task softmax"
    kernel = driver.find_element(By.CSS_SELECTOR, "section.winner a.kernel-link")
    kernel_id = kernel.text.lstrip("#")
    kernel.click()
    assert h1(driver).startswith(f"Kernel #{kernel_id}")
    parent = driver.find_element(By.CSS_SELECTOR, "#lineage a.kernel-link")  # an ancestor
    parent_id = parent.text.lstrip("#")
    parent.click()
    assert h1(driver).startswith(f"Kernel #{parent_id}")
    driver.find_element(By.CSS_SELECTOR, "h1 a.task-link").click()
    assert h1(driver) == "Task softmax"
    driver.find_element(By.ID, "nav-runs").click()
    driver.find_element(By.CSS_SELECTOR, "a.run-link").click()
    assert h1(driver).startswith(f"Run {demo.run_id}")
    driver.find_element(By.CSS_SELECTOR, "a.json-link").click()
    data = json.loads(driver.find_element(By.TAG_NAME, "body").text)
    assert data["run"]["id"] == demo.run_id
    driver.get(base + "/leaderboard")
    driver.find_element(By.ID, "nav-tasks").click()
    assert h1(driver) == "Tasks" and len(driver.find_elements(By.CSS_SELECTOR, "a.task-link")) == 4


def test_the_leaderboard_sorts(served, driver) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    base, _, _ = served

    def speedups() -> list[float]:
        biggest = max(driver.find_elements(By.CSS_SELECTOR, "section.board"),
                      key=lambda s: len(s.find_elements(By.CSS_SELECTOR, "tbody tr")))  # fmt: skip
        return [float(td.text.rstrip("x")) for td in biggest.find_elements(By.CSS_SELECTOR, "td.speedup-eager")]

    driver.get(base + "/leaderboard")
    driver.find_element(By.CSS_SELECTOR, "a.sort[data-sort=speedup_eager]").click()
    first = speedups()
    assert "sort=speedup_eager" in driver.current_url and len(first) >= 2 and first == sorted(first, reverse=True)
    driver.find_element(By.CSS_SELECTOR, "a.sort[data-sort=speedup_eager]").click()  # again: the other way
    assert speedups() == sorted(first)
    driver.find_element(By.CSS_SELECTOR, "a.sort[data-sort=task]").click()
    tasks = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "section.board a.task-link")]
    assert tasks and "sort=task" in driver.current_url


def test_html_in_a_kernel_is_shown_as_text_and_never_runs(served, driver, shots) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    base, _, demo = served
    for path in (f"/kernels/{demo.hostile_kernel}", f"/tasks/{demo.tasks['relu']}"):
        driver.get(base + path)
        assert driver.execute_script("return window.__pwned === undefined")
        assert driver.title != "pwned"
        assert not driver.find_elements(By.CSS_SELECTOR, "main script, main img")
    driver.get(base + f"/kernels/{demo.hostile_kernel}")
    assert SCRIPT in driver.find_element(By.ID, "source").text  # the source, as text
    assert HOSTILE_REASON in driver.find_element(By.CSS_SELECTOR, "table.provenance td.reason").text
    assert HOSTILE_MODEL in driver.find_element(By.CSS_SELECTOR, "dl.summary").text
    screenshot(driver, shots, "kernel-hostile")
