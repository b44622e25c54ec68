"""The review page as a planner uses it, in a real headless Chromium (Debian's, driven by its own
chromedriver; nothing is downloaded): log in, open a run, approve a held order, see its status
change and the order arrive at the downstream system; reject another with a reason.

Skips, saying why, only when no Chromium and chromedriver are installed (.ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from restock.api import create_app
from restock.config import load_org
from restock.cycle import run_org
from restock.demo import generate
from restock.store import OrderStatus, open_store
from tests.e2e.review_kit import TOKENS, write_access, write_org
from tests.support.dates import PINNED_END
from tests.support.loopback import serve_asgi
from tests.support.receivers import OrderReceiver

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver"
                                          if Path("/usr/bin/chromedriver").exists() else None)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240),
              pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                 reason="no Chromium with chromedriver installed "
                                        "(apt-get install chromium chromium-driver)")]


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")     # never let Selenium fetch a browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def site(tmp_path):
    """A real cycle in approval mode over a generated warehouse; the review app and the
    downstream order receiver on loopback."""
    receiver = OrderReceiver()
    generate(tmp_path / "warehouse", skus=30, end=PINNED_END)
    with serve_asgi(receiver.app()) as receiver_url:
        config = load_org(write_org(tmp_path, receiver_url, tmp_path / "warehouse"))
        write_access(tmp_path)
        with open_store(f"sqlite:///{tmp_path / 'state.sqlite'}") as store:
            summary = run_org(config, store=store)
            assert len(summary.held) >= 3, f"the cycle held too little: {summary.errors}"
            with serve_asgi(create_app(store=store, config_dir=tmp_path)) as url:
                yield url, store, summary, receiver


def test_planner_logs_in_approves_and_rejects_held_orders(browser, site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    url, store, summary, receiver = site
    first, second = summary.held[0], summary.held[1]
    browser.get(f"{url}/runs/{summary.run_id}")
    assert "/login" in browser.current_url               # nobody sees a run without logging in
    browser.find_element(By.ID, "token").send_keys(TOKENS["alice"])
    browser.find_element(By.ID, "login").click()
    WebDriverWait(browser, 10).until(ready.presence_of_element_located((By.ID, "glance")))
    assert browser.current_url.endswith(f"/runs/{summary.run_id}")
    held_lines = sum(len(o.lines) for o in summary.held)
    assert _metric(browser, "lines_held") == held_lines
    _screenshot(browser, "review-run.png")

    browser.find_element(By.CSS_SELECTOR, f'[data-approve="{first.order_id}"]').click()
    WebDriverWait(browser, 5).until(ready.alert_is_present()).accept()
    notice = WebDriverWait(browser, 30).until(ready.presence_of_element_located((By.ID, "notice")))
    assert f"Order {first.order_id}" in notice.text and "submitted" in notice.text
    assert _status(browser, first.order_id) == "submitted"
    assert _metric(browser, "lines_held") == held_lines - len(first.lines)
    entry = store.ledger.get(first.order_id)
    assert entry.status == OrderStatus.SUBMITTED
    assert list(receiver.orders) == [entry.key]            # arrived downstream, exactly once
    assert receiver.orders[entry.key]["id"] == entry.external_id
    assert entry.external_id in notice.text

    form = browser.find_element(By.CSS_SELECTOR, f'[data-actions="{second.order_id}"] form.reject')
    form.find_element(By.NAME, "reason").send_keys("supplier is closing for inventory")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait_for_status(browser, second.order_id, "rejected")
    assert store.ledger.get(second.order_id).status == OrderStatus.REJECTED
    assert len(receiver.orders) == 1                       # a rejected order never goes out
    events = store.ledger.events(second.order_id)
    assert events[-1].actor == "alice (review page)"
    assert events[-1].comment == "supplier is closing for inventory"

    third = summary.held[2]
    line = third.lines[0]
    actions = browser.find_element(By.CSS_SELECTOR, f'[data-actions="{third.order_id}"]')
    actions.find_element(By.TAG_NAME, "summary").click()          # "Edit quantities"
    field = actions.find_element(By.NAME, f"qty:{line.sku}")
    field.clear()
    field.send_keys(str(int(line.quantity) + 5))
    actions.find_element(By.NAME, "comment").send_keys("a few more for the open house")
    actions.find_element(By.CSS_SELECTOR, f'[data-approve="{third.order_id}"]').click()
    WebDriverWait(browser, 5).until(ready.alert_is_present()).accept()
    _wait_for_status(browser, third.order_id, "submitted")
    entry = store.ledger.get(third.order_id)
    sent = {ln.sku: ln.quantity for ln in entry.order.lines}
    assert sent[line.sku] == int(line.quantity) + 5
    downstream = {ln["sku"]: ln["quantity"] for ln in receiver.orders[entry.key]["body"]["lines"]}
    assert downstream == sent
    approved = next(e for e in store.ledger.events(third.order_id) if e.to_status == "approved")
    assert approved.changes == {line.sku: [line.quantity, float(int(line.quantity) + 5)]}

    browser.get(f"{url}/runs/{summary.run_id}/report")
    browser.find_element(By.ID, "glance")
    _screenshot(browser, "review-report.png")


def test_a_viewer_sees_the_run_but_gets_no_approve_buttons(browser, site):
    from selenium.webdriver.common.by import By

    url, _store, summary, receiver = site
    browser.get(f"{url}/login?next=/runs/{summary.run_id}")
    browser.find_element(By.ID, "token").send_keys(TOKENS["vic"])
    browser.find_element(By.ID, "login").click()
    browser.find_element(By.ID, "glance")
    browser.implicitly_wait(0)
    assert browser.find_elements(By.CSS_SELECTOR, "[data-approve]") == []
    assert _status(browser, summary.held[0].order_id) == "held"
    assert receiver.orders == {}


def _metric(browser, name: str) -> float:
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.CSS_SELECTOR, f'[data-metric="{name}"]')
    return float(element.get_attribute("data-value"))


def _status(browser, order_id: str) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'[data-order-status="{order_id}"]').text


def _wait_for_status(browser, order_id: str, status: str) -> None:
    """Until the page shows the order in ``status`` (the old page may still be there at first)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30, ignored_exceptions=(NoSuchElementException,
                                                          StaleElementReferenceException))
    wait.until(lambda b: _status(b, order_id) == status)


def _screenshot(browser, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / name))


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["laptop", "phone"])
def test_the_first_screen_says_what_was_ordered_what_needs_me_and_what_is_at_risk(
        browser, tmp_path, size):
    from selenium.webdriver.common.by import By

    from tests.e2e.review_kit import seed_run
    from tests.support.summaries import make_summary

    summary = make_summary(400, held_orders=2)
    with open_store(f"sqlite:///{tmp_path / 'state.sqlite'}") as store:
        seed_run(store, summary)
        write_access(tmp_path)
        with serve_asgi(create_app(store=store, config_dir=tmp_path)) as url:
            browser.set_window_size(*size)
            browser.get(f"{url}/login?next=/runs/{summary.run_id}")
            browser.find_element(By.ID, "token").send_keys(TOKENS["vic"])
            browser.find_element(By.ID, "login").click()
            browser.find_element(By.ID, "glance")
            height = browser.execute_script("return window.innerHeight")
            must_show = ['[data-metric="lines_ordered"]', '[data-metric="spend"]',
                         '[data-metric="lines_held"]', '[data-metric="at_risk"]']
            if size[0] > 700:      # side by side on a wide screen: the lists fit too
                must_show += [".first .panel:nth-child(1) li", ".first .panel:nth-child(2) li"]
            for selector in must_show:
                element = browser.find_element(By.CSS_SELECTOR, selector)
                rect = element.rect
                assert element.is_displayed() and rect["y"] + rect["height"] <= height, selector
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= browser.execute_script("return window.innerWidth")   # no side scroll
            _screenshot(browser, f"review-first-screen-{size[0]}.png")
