"""The lookup page in a real browser: Debian's chromium, driven through its chromedriver.

A shopper's path on `certcheck serve --demo`: open /lookup, type a number as printed on a
label, submit, read the status. Nothing is downloaded: the browser and its driver are the
Debian packages (.ci/run installs them), named by path so Selenium Manager never runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from certcheck.snapshots.showcase import showcase_certificates
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Certificate, Status
from tests.conftest import IN_CI
from tests.e2e.servers import running_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
_WAIT = 30  # seconds for a page to load on a busy machine


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        reason = f"{' and '.join(missing)} absent: apt-get install chromium chromium-driver"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: the browser test must run)")
        pytest.skip(reason)
    options = Options()
    options.binary_location = str(CHROMIUM)
    # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(_WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("lookup-browser")
    # --demo: its own SQLite file in `workdir`, 10,000 certificates led by the showcase ones.
    with running_server({}, workdir, "--demo", wait=180) as process:
        yield process.base


def showcase(status: Status) -> Certificate:
    today = today_in_shanghai(datetime.now(UTC))
    return next(c for c in showcase_certificates(today) if c.status is status)


def look_up(browser: WebDriver, server: str, typed: str) -> str:
    """Type `typed` into the form, submit it, and return the status block's text."""
    browser.get(f"{server}/lookup")
    field = browser.find_element(By.ID, "cert_no")
    field.clear()
    field.send_keys(typed)
    browser.find_element(By.ID, "submit").click()
    # The form page has no status block: one appears when the answer's page has loaded.
    (status,) = WebDriverWait(browser, _WAIT).until(lambda b: b.find_elements(By.ID, "status"))
    return str(status.text)


def test_a_shopper_checks_a_valid_certificate(browser: WebDriver, server: str) -> None:
    valid = showcase(Status.VALID)
    no = valid.cert_no
    status = look_up(browser, server, f"CCC: {no[:4]}-{no[4:6]}{no[6:10]}-{no[10:]}")
    assert browser.current_url == f"{server}/lookup/{no}"
    assert "该证书有效" in status
    assert "This certificate is in force." in status
    assert browser.find_element(By.ID, "holder").text == valid.holder
    assert "Registry data as of" in browser.find_element(By.ID, "freshness").text
    # The inline stylesheet ran under the page's Content-Security-Policy: its hash is right.
    colour = browser.find_element(By.ID, "status").value_of_css_property("background-color")
    assert colour in ("rgba(227, 244, 227, 1)", "rgb(227, 244, 227)")


def test_a_shopper_sees_a_revoked_certificate_is_not_in_force(
    browser: WebDriver, server: str
) -> None:
    revoked = showcase(Status.REVOKED)
    status = look_up(browser, server, revoked.cert_no)
    assert "该证书无效" in status
    assert "This certificate is not in force." in status
    assert "The certificate has been revoked." in status


def test_a_mistyped_number_says_why(browser: WebDriver, server: str) -> None:
    status = look_up(browser, server, "2024-0109-0123")
    assert "这不是 CCC 证书编号" in status
    assert "This is not a CCC certificate number." in status
    assert browser.find_element(By.ID, "cert_no").get_attribute("value") == "2024-0109-0123"
