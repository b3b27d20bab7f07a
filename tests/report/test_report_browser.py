"""report.html in a real headless Chromium (Debian's chromium and chromium-driver, through
selenium): the tables are there, an episode opens on a click, the filters work.

Chromium is required, not optional: without it this test fails and says how to install it.
Selenium is pointed at the Debian binaries explicitly, so selenium-manager never downloads a
driver (there may be no network).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_fixture import FLAKY_ROW

from pytest_alma.report import Rendered

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = (
    "install them with `apt-get install -y --no-install-recommends chromium chromium-driver` "
    "(Debian; .ci/run does this) and `pip install -e '.[dev]'` (selenium)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"the browser test needs {' and '.join(missing)}: {INSTALL}", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"the browser test needs selenium: {INSTALL}", pytrace=False)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",  # /dev/shm is small in containers
        "--disable-gpu",
        "--window-size=1300,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(browser: Any, rendered_run: tuple[Path, Rendered]) -> Any:
    run, _ = rendered_run
    browser.get((run / "report.html").as_uri())
    return browser


def test_tables_show_every_design(page: Any) -> None:
    from selenium.webdriver.common.by import By

    assert page.title.startswith("pytest-alma run ")
    rows = page.find_elements(By.CSS_SELECTOR, "#table-scores-babaisai tbody tr")
    assert [r.get_attribute("data-design") for r in rows] == [
        "no_memory",
        "example_rules",
        "flaky_goto",
        "g_memory",
        "trajectory_retrieval",
    ]
    flaky = page.find_element(
        By.CSS_SELECTOR, '#table-scores-babaisai tr[data-design="flaky_goto"]'
    )
    assert flaky.is_displayed()
    cells = [c.text for c in flaky.find_elements(By.TAG_NAME, "td")]
    assert cells[: len(FLAKY_ROW)] == FLAKY_ROW
    assert page.find_element(By.ID, "test-double-banner").is_displayed()
    chart = page.find_element(By.ID, "chart-success-vs-cost")
    # The inline PNG decoded: the browser knows its natural size.
    assert page.execute_script("return arguments[0].naturalWidth", chart) > 1000


def test_clicking_an_episode_shows_its_steps(page: Any) -> None:
    from selenium.webdriver.common.by import By

    episode = page.find_element(By.ID, "ep-0")
    steps = episode.find_elements(By.CSS_SELECTOR, "tr.step")
    assert steps, "the first episode should have its steps embedded"
    assert episode.get_attribute("open") is None
    assert not any(s.is_displayed() for s in steps)  # collapsed by default
    summary = episode.find_element(By.TAG_NAME, "summary")
    page.execute_script("arguments[0].scrollIntoView()", summary)
    summary.click()
    assert episode.get_attribute("open") is not None
    assert all(s.is_displayed() for s in steps)
    first = steps[0].find_elements(By.TAG_NAME, "td")
    assert first[0].text == "1" and first[1].text in {"idle", "up", "right", "down", "left"}
    assert "Active rules:" in first[2].text  # the Baba Is AI observation
    memory = episode.find_element(By.CSS_SELECTOR, "pre.memory")
    assert memory.is_displayed() and memory.text == "{}"  # No Memory retrieved nothing
    summary.click()
    assert not any(s.is_displayed() for s in steps)


def test_filters_hide_other_designs(page: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(page.find_element(By.ID, "filter-design")).select_by_value("flaky_goto")
    shown = [e for e in page.find_elements(By.CSS_SELECTOR, "details.episode") if e.is_displayed()]
    assert len(shown) == 32
    assert {e.get_attribute("data-design") for e in shown} == {"flaky_goto"}
    assert page.find_element(By.ID, "filter-count").text == "32 shown"
    errors = [e for e in shown if "error:" in e.find_element(By.TAG_NAME, "summary").text]
    assert len(errors) == 6
    assert "cannot parse a <go-to-win> level & gave up" in errors[0].text  # escaped, shown as text
    Select(page.find_element(By.ID, "filter-design")).select_by_value("")
    assert page.find_element(By.ID, "filter-count").text == "160 shown"
