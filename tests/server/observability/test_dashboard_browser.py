"""A real browser (Debian's headless Chromium, driven by selenium) opens the dashboard of a
running server: the study list, one study's optimization history, and with auth, a login
per team that shows each team only its own studies. Screenshots are saved under the test's
tmp dir (and the study page's to /tmp/dashboard.png)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hposerve.client import Client, ClientConfig

from .conftest import Running

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)
TIMEOUT = 60  # a cold Chromium on two busy cores

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "no browser: install Debian's chromium and chromium-driver "
        "(apt-get install -y chromium chromium-driver), as .ci/run does",
        allow_module_level=True,
    )
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


def _wait_text(driver: Any, text: str) -> None:
    try:
        WebDriverWait(driver, TIMEOUT).until(
            ec.text_to_be_present_in_element((By.TAG_NAME, "body"), text)
        )
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        pytest.fail(f"{text!r} not on {driver.current_url} after {TIMEOUT} s; it shows:\n{body}")


def _shot(driver: object, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(path)), f"no screenshot {path}"  # type: ignore[attr-defined]
    assert path.stat().st_size > 10_000  # a real page, not a blank one
    return path


def _fill(running: Running, *, namespace: str = "default", token: str | None = None,
          name: str, trials: int) -> None:  # fmt: skip
    config = ClientConfig(namespace=namespace)
    with Client(running.target, token=token, config=config) as client:
        study = client.create_study(
            name=name, direction="minimize", sampler={"type": "random", "seed": 0}
        )
        for _ in range(trials):
            trial = study.ask()
            x, layers = trial.suggest_float("x", -3, 3), trial.suggest_int("layers", 1, 8)
            study.tell(trial, x * x + layers)


def test_the_study_list_and_a_study_history(observed: Running, browser, tmp_path: Path) -> None:
    _fill(observed, name="mlp-digits", trials=20)
    _fill(observed, namespace="vision", name="resnet", trials=3)
    browser.get(observed.dashboard_url + "/dashboard")
    _wait_text(browser, "mlp-digits")
    _wait_text(browser, "vision/resnet")
    _shot(browser, tmp_path, "study-list")

    browser.find_element(By.PARTIAL_LINK_TEXT, "mlp-digits").click()
    _wait_text(browser, "History")
    # plotly draws one marker per complete trial into the history plot.
    WebDriverWait(browser, TIMEOUT).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#plot-history .scatterlayer .point")) >= 20
    )
    assert "mlp-digits" in browser.find_element(By.TAG_NAME, "header").text
    _wait_text(browser, "Best Trial")
    time.sleep(1)  # let plotly finish its transitions for the picture
    shot = _shot(browser, tmp_path, "study-history")
    shutil.copy(shot, "/tmp/dashboard.png")


def _login(browser, running: Running, token: str) -> None:
    browser.delete_all_cookies()
    browser.get(running.dashboard_url + "/dashboard")
    WebDriverWait(browser, TIMEOUT).until(ec.url_contains("/login"))
    browser.find_element(By.NAME, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, TIMEOUT).until(ec.url_contains("/dashboard"))


def test_with_auth_each_team_sees_only_its_studies(
    observed_auth: Running, browser, tmp_path: Path
) -> None:
    tokens = observed_auth.tokens
    _fill(observed_auth, namespace="a", token=tokens["a_editor"], name="a-secret", trials=5)
    _fill(observed_auth, namespace="b", token=tokens["b_editor"], name="b-public", trials=5)

    _login(browser, observed_auth, tokens["a_viewer"])
    _wait_text(browser, "a/a-secret")
    assert "b/b-public" not in browser.find_element(By.TAG_NAME, "body").text
    _shot(browser, tmp_path, "team-a")

    _login(browser, observed_auth, tokens["b_editor"])
    _wait_text(browser, "b/b-public")
    time.sleep(1)  # the list is complete once rendered; give a late study every chance
    assert "a-secret" not in browser.find_element(By.TAG_NAME, "body").text
    _shot(browser, tmp_path, "team-b")
    # Going to team a's study by its address shows nothing of it.
    browser.get(observed_auth.dashboard_url + "/dashboard/studies/0")
    time.sleep(2)
    assert "a-secret" not in browser.find_element(By.TAG_NAME, "body").text
    _shot(browser, tmp_path, "team-b-on-team-a-study")
