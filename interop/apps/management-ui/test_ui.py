#!/usr/bin/env python3
"""The web UI in a real browser: headless Chromium, driven by Selenium through Debian's
chromedriver, against the broker's management port. It logs in as a person would, declares,
publishes to, reads, purges and deletes a queue through the page, waits for the live update
to show what changed, visits every page checking the browser console for JavaScript errors,
and saves screenshots to target/test-artifacts/management-ui/ (paths printed).

    test_ui.py      needs MANAGEMENT_PORT (and AMQP_PORT for the connections test);
                    last stdout line "summary: passed=N failed=M skipped=K"

Tests run in order and share one browser: later ones start where earlier ones left the page.
Every wait is explicit and bounded; the live update runs every 5 s, so waits for it allow 15.
"""
import base64
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException,
                                        StaleElementReferenceException,
                                        TimeoutException)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "target/test-artifacts/management-ui"
PORT = os.environ.get("MANAGEMENT_PORT", "15672")
AMQP_PORT = os.environ.get("AMQP_PORT")
BASE = f"http://127.0.0.1:{PORT}"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")

WINDOW = (1400, 1000)
QUICK = 5      # seconds: what the page does at once (a click, a form's answer)
LIVE = 15      # seconds: what only the live update (every 5 s) brings to the page

RUN = uuid.uuid4().hex[:8]
QUEUE = f"ui-queue-{RUN}"
FIRST_PAYLOAD = f"hello from the browser {RUN}"


class Skip(Exception):
    """A test that cannot run here (said why)."""


# ------------------------------------------------------------------ the broker ----

def api(method, path, body=None, user="guest", password="guest"):
    """One management API call outside the browser: (status, parsed body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read().decode()
            return answer.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, (json.loads(text) if text.startswith("{") else text)


def quoted(name):
    return urllib.request.quote(name, safe="")


# ----------------------------------------------------------------- the browser ----

def start_browser():
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER,
                      log_output=str(ARTIFACTS / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(10)
    return driver


class Page:
    """The browser on the UI, with the waits and lookups the tests share."""

    def __init__(self, driver):
        self.d = driver
        self.console = []   # every console entry seen so far

    def wait(self, condition, timeout=QUICK, what="condition"):
        waiter = WebDriverWait(self.d, timeout, poll_frequency=0.1,
                               ignored_exceptions=(NoSuchElementException,
                                                   StaleElementReferenceException))
        try:
            return waiter.until(lambda d: condition())
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    def find(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css, timeout=QUICK):
        return self.wait(lambda: self.find(css).is_displayed() and self.find(css),
                         timeout, f"{css} to show")

    def text(self, css):
        return self.stable(lambda: self.find(css).text.strip())

    @staticmethod
    def stable(read, tries=5):
        """`read()`, again if the live update replaced the element it was reading."""
        for attempt in range(tries):
            try:
                return read()
            except StaleElementReferenceException:
                if attempt == tries - 1:
                    raise
        return None

    def wait_text(self, css, wanted, timeout=QUICK):
        """Waits until the element's text contains `wanted`."""
        self.wait(lambda: wanted in self.text(css), timeout,
                  f"{css} to say {wanted!r} (it says {self._text_or_none(css)!r})")

    def _text_or_none(self, css):
        try:
            return self.text(css)
        except (NoSuchElementException, StaleElementReferenceException):
            return None

    def type(self, css, text):
        field = self.visible(css)
        field.clear()
        field.send_keys(text)

    def click(self, css, timeout=QUICK):
        """Clicks `css`, looking it up again if the live update replaced it meanwhile."""
        self.wait(lambda: self._click(css), timeout, f"{css} to be clickable")

    def _click(self, css):
        element = self.find(css)
        if not (element.is_displayed() and element.is_enabled()):
            return False
        element.click()
        return True

    def go(self, hash_):
        """Opens a page by its hash and waits for its first refresh to have finished."""
        before = self.refreshes()
        self.d.execute_script("location.hash = arguments[0]", hash_)
        self.wait(lambda: self.refreshes() > before, LIVE, f"the first refresh of {hash_}")

    def refreshes(self):
        value = self.find("#refresh-status").get_attribute("data-refreshes")
        return int(value or 0)

    def row(self, table_css, **data):
        """The row of a table whose data-* attributes are `data`, or None."""
        for tr in self.all(f"{table_css} tbody tr"):
            if all(tr.get_attribute(f"data-{k}") == v for k, v in data.items()):
                return tr
        return None

    def screenshot(self, name):
        """The whole page (the window grown to its height for the shot), as NAME.png."""
        path = ARTIFACTS / f"{name}.png"
        width, height = WINDOW
        full = self.d.execute_script("return document.documentElement.scrollHeight")
        self.d.set_window_size(width, min(max(height, full + 100), 4000))
        try:
            self.d.save_screenshot(str(path))
        finally:
            self.d.set_window_size(width, height)
        print(f"  screenshot: {path}")
        return path

    def javascript_errors(self):
        """Console entries since the last call that are errors of the page itself: not the
        network's (a 401 for a wrong password, a 404 the page looks for and a
        503 health check are answers the page expects)."""
        entries = self.d.get_log("browser")
        self.console.extend(entries)
        return [e for e in entries if e.get("level") == "SEVERE" and e.get("source") != "network"]


def queue_ready(page):
    return page.text('#queue-counts [data-field="messages_ready"]')


# ----------------------------------------------------------------------- tests ----

def test_the_login_form_refuses_a_wrong_password(page):
    page.d.get(BASE + "/")
    page.visible("#login-form")
    assert page.find("#page").is_displayed() is False
    page.type("#login-username", "guest")
    page.type("#login-password", "not-the-password")
    page.click("#login-submit")
    page.wait_text("#login-error", "Login failed")
    assert not page.find("#nav").is_displayed(), "the app opened without a login"
    stored = page.d.execute_script("return sessionStorage.getItem('warren.session')")
    assert stored is None, f"refused credentials were kept: {stored}"


def test_guest_logs_in_and_sees_the_overview(page):
    page.type("#login-username", "guest")
    page.type("#login-password", "guest")
    page.click("#login-submit")
    page.wait_text("#user-name", "guest")
    page.wait(lambda: page.refreshes() >= 1, LIVE, "the overview's first refresh")
    assert page.find("#page").get_attribute("data-page") == "overview"
    for key in ("connections", "channels", "exchanges", "queues", "consumers",
                "messages", "messages_ready", "messages_unacknowledged"):
        figure = page.text(f'[data-total="{key}"] .figure')
        assert figure.replace(",", "").isdigit(), f"total {key} shows {figure!r}"
    # Rates the broker does not report yet show as 0.0/s rather than breaking the page.
    for key in ("publish", "deliver_get", "ack", "confirm"):
        assert page.text(f'[data-rate="{key}"]').endswith("/s"), f"rate {key}"
    assert page.find("#alarms").get_attribute("data-status") == "ok"
    page.wait_text('#node-facts [data-field="name"]', "rabbit@")
    page.screenshot("overview")


def test_a_queue_is_declared_through_the_page(page):
    page.go("#/queues")
    page.type("#add-queue-name", QUEUE)
    page.type("#add-queue-arguments-key-0", "x-max-length")
    page.type("#add-queue-arguments-value-0", "10")
    Select(page.find("#add-queue-arguments-type-0")).select_by_value("number")
    page.click("#add-queue-submit")
    page.wait_text("#add-queue-result", f"Queue '{QUEUE}' declared.")
    page.wait(lambda: page.row("#queues-table", name=QUEUE, vhost="/"), QUICK,
              "the new queue's row")
    features = page.stable(lambda: page.row("#queues-table", name=QUEUE)
                           .find_element(By.CSS_SELECTOR, ".features").get_attribute("innerHTML"))
    assert "x-max-length" in features, f"no argument among the features: {features}"
    status, queue = api("GET", f"/api/queues/%2F/{QUEUE}")
    assert status == 200, (status, queue)
    assert (queue["durable"], queue["auto_delete"]) == (True, False), queue
    assert queue["arguments"] == {"x-max-length": 10}, queue["arguments"]


def test_a_message_published_through_the_page_shows_as_ready(page):
    page.wait(lambda: page.row("#queues-table", name=QUEUE).find_element(By.CSS_SELECTOR, "a")
              .click() or True, QUICK, "the queue's link")
    page.wait_text("#queue-name", QUEUE)
    assert page.d.current_url.endswith(f"#/queues/%2F/{QUEUE}"), page.d.current_url
    page.wait(lambda: queue_ready(page) == "0", LIVE, "the queue's ready count 0")
    page.type("#queue-publish-payload", FIRST_PAYLOAD)
    page.click("#queue-publish-submit")
    page.wait_text("#queue-publish-result", "Message published.")
    page.wait(lambda: queue_ready(page) == "1", LIVE, "the ready count to become 1")
    page.screenshot("queue-with-one-message")


def test_the_live_update_shows_a_message_published_elsewhere_and_keeps_typed_input(page):
    draft = "a draft the live update must not erase"
    page.type("#queue-publish-payload", draft)
    before = page.refreshes()
    status, answer = api("POST", "/api/exchanges/%2F/amq.default/publish",
                         {"routing_key": QUEUE, "payload": "second", "payload_encoding": "string",
                          "properties": {}})
    assert (status, answer) == (200, {"routed": True}), (status, answer)
    page.wait(lambda: queue_ready(page) == "2", LIVE, "the live update to show 2 ready")
    assert page.refreshes() > before
    assert page.find("#queue-publish-payload").get_attribute("value") == draft


def test_a_message_got_through_the_page_shows_its_payload(page):
    Select(page.find("#queue-get-ackmode")).select_by_value("ack_requeue_true")
    page.type("#queue-get-count", "1")
    page.click("#queue-get-submit")
    page.wait_text("#queue-get-result", "Got 1 message.")
    page.wait_text('#queue-get-messages pre[data-payload="1"]', FIRST_PAYLOAD)
    assert page.text('#queue-get-messages [data-field="routing_key"]') == QUEUE
    page.screenshot("queue-got-message")
    # Requeued: both are still there, the first one now redelivered.
    page.wait(lambda: queue_ready(page) == "2", LIVE, "2 ready after a requeueing get")


def test_the_queue_is_purged_through_the_page(page):
    page.click("#queue-purge")
    page.click("#queue-purge-confirm")
    page.wait_text("#queue-action-result", "Queue purged.")
    page.wait(lambda: queue_ready(page) == "0", LIVE, "0 ready after the purge")


def test_the_queue_is_deleted_through_the_page(page):
    page.click("#queue-delete")
    page.click("#queue-delete-confirm")
    page.wait(lambda: page.d.current_url.endswith("#/queues"), QUICK, "the queues list")
    page.wait(lambda: page.all("#queues-table, #queues-list .empty")
              and page.row("#queues-table", name=QUEUE) is None, LIVE, "the queue's row to go")
    status, _ = api("GET", f"/api/queues/%2F/{QUEUE}")
    assert status == 404, status


def test_names_are_shown_as_text_never_as_markup(page):
    name = f'<img src=x id=injected onerror="document.title=1">{RUN}'
    status, _ = api("PUT", f"/api/queues/%2F/{quoted(name)}", {"durable": False})
    assert status == 201, status
    try:
        page.go("#/queues")
        page.wait(lambda: page.row("#queues-table", name=name), LIVE, "the odd queue's row")
        shown = page.stable(lambda: page.row("#queues-table", name=name)
                            .find_element(By.CSS_SELECTOR, "a").text)
        assert shown == name, shown
        page.go(f"#/queues/%2F/{quoted(name)}")
        page.wait_text("#queue-name", name)
        assert page.all("#injected") == [], "a queue name was parsed as HTML"
    finally:
        api("DELETE", f"/api/queues/%2F/{quoted(name)}")


def test_an_exchange_is_added_published_to_and_deleted_through_the_page(page):
    exchange = f"ui-exchange-{RUN}"
    page.go("#/exchanges")
    page.type("#add-exchange-name", exchange)
    Select(page.find("#add-exchange-type")).select_by_value("fanout")
    page.click("#add-exchange-submit")
    page.wait_text("#add-exchange-result", f"Exchange '{exchange}' declared.")
    page.wait(lambda: page.row("#exchanges-table", name=exchange), QUICK, "the exchange's row")
    page.go(f"#/exchanges/%2F/{exchange}")
    page.wait_text('#exchange-details [data-field="type"]', "fanout")
    page.type("#exchange-publish-payload", "nobody listens")
    page.click("#exchange-publish-submit")
    page.wait_text("#exchange-publish-result", "Message published, but not routed.")
    page.click("#exchange-delete")
    page.click("#exchange-delete-confirm")
    page.wait(lambda: page.d.current_url.endswith("#/exchanges"), QUICK, "the exchanges list")
    assert api("GET", f"/api/exchanges/%2F/{exchange}")[0] == 404


def test_admin_adds_and_deletes_a_vhost_and_a_user(page):
    vhost, user = f"ui-vhost-{RUN}", f"ui-user-{RUN}"
    page.go("#/admin")
    page.type("#add-vhost-name", vhost)
    page.click("#add-vhost-submit")
    page.wait_text("#add-vhost-result", f"Virtual host '{vhost}' added.")
    page.type("#add-user-name", user)
    page.type("#add-user-password", "s3cret")
    page.type("#add-user-tags", "management")
    page.click("#add-user-submit")
    page.wait_text("#add-user-result", f"User '{user}' added.")
    assert api("GET", "/api/whoami", user=user, password="s3cret")[0] == 200
    page.wait(lambda: page.row("#users-table", name=user), QUICK, "the user's row")
    page.wait(lambda: page.row("#vhosts-table", name=vhost), QUICK, "the vhost's row")
    # The creator of a vhost gets permissions on it, listed on the same page.
    page.wait(lambda: page.row("#permissions-table", user="guest", vhost=vhost), QUICK,
              "guest's permission on the new vhost")
    # Policies: added through the page, shown as the API has it, deleted below.
    page.wait(lambda: page.all("#policies-table") or page.all("#policies-list .empty"),
              QUICK, "the policies section")
    assert not page.all("#policies-unavailable"), "warren serves /api/policies"
    rows = [("#users-table", user), ("#vhosts-table", vhost)]
    policy = f"ui-policy-{RUN}"
    page.type("#add-policy-name", policy)
    page.type("#add-policy-pattern", f"^ui-nothing-{RUN}")
    Select(page.find("#add-policy-apply-to")).select_by_value("queues")
    page.type("#add-policy-definition-key-0", "max-length")
    page.type("#add-policy-definition-value-0", "5")
    Select(page.find("#add-policy-definition-type-0")).select_by_value("number")
    page.click("#add-policy-submit")
    page.wait_text("#add-policy-result", f"Policy '{policy}' added.")
    page.wait(lambda: page.row("#policies-table", name=policy), QUICK, "the policy's row")
    status, shown = api("GET", f"/api/policies/%2F/{policy}")
    assert (status, shown["definition"], shown["apply-to"]) == (200, {"max-length": 5}, "queues"), shown
    rows.insert(0, ("#policies-table", policy))
    for table, name in rows:
        delete_row(page, table, name)
    assert api("GET", f"/api/users/{user}")[0] == 404
    assert api("GET", f"/api/vhosts/{vhost}")[0] == 404


def delete_row(page, table, name):
    """Deletes the object of a table row with its two-step button, and sees the row go."""
    page.wait(lambda: page.row(table, name=name).find_element(By.CSS_SELECTOR, "button").click()
              or True, QUICK, f"the delete button of {name}")
    page.wait(lambda: page.row(table, name=name).find_element(
        By.CSS_SELECTOR, "button[id$='-confirm']").click() or True, QUICK, f"the confirm of {name}")
    page.wait(lambda: page.row(table, name=name) is None, QUICK, f"{name} to go")


def test_a_connection_is_listed_and_closed_through_the_page(page):
    if not AMQP_PORT:
        raise Skip("AMQP_PORT not set")
    import pika  # only this test needs an AMQP client
    params = pika.ConnectionParameters(
        host="127.0.0.1", port=int(AMQP_PORT), credentials=pika.PlainCredentials("guest", "guest"),
        client_properties={"connection_name": f"ui-test-{RUN}"})
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_consume(queue, lambda *_: None, consumer_tag=f"ui-consumer-{RUN}")
        page.go("#/connections")
        row = lambda: next((tr for tr in page.all("#connections-table tbody tr")
                            if f"ui-test-{RUN}" in tr.text), None)
        page.wait(row, LIVE, "the connection's row")
        page.wait(lambda: page.row("#consumers-table", name=f"ui-consumer-{RUN}"), LIVE,
                  "the consumer's row")
        page.screenshot("connections-with-one")
        page.wait(lambda: row().find_element(By.CSS_SELECTOR, "button").click() or True, QUICK,
                  "the close button")
        page.wait(lambda: row().find_element(By.CSS_SELECTOR, "button[id$='-confirm']").click()
                  or True, QUICK, "the confirm")
        page.wait(lambda: row() is None, LIVE, "the connection's row to go")
        try:
            connection.process_data_events(time_limit=5)
            raise AssertionError("the connection is still open")
        except pika.exceptions.ConnectionClosedByBroker as e:
            assert e.reply_code == 320 and "Closed via management plugin" in e.reply_text, e
    finally:
        if connection.is_open:
            connection.close()


def test_every_page_renders_without_javascript_errors(page):
    pages = [("overview", "#/"), ("queues", "#/queues"), ("exchanges", "#/exchanges"),
             ("exchange-amq-direct", "#/exchanges/%2F/amq.direct"),
             ("connections", "#/connections"), ("admin", "#/admin")]
    for name, hash_ in pages:
        page.go(hash_)
        assert not page.find("#page-error").is_displayed(), page.text("#page-error")
        page.screenshot(f"page-{name}")
        errors = page.javascript_errors()
        assert not errors, f"{hash_}: {errors}"


def test_logging_out_and_refused_credentials_return_to_the_login_form(page):
    page.click("#logout")
    page.visible("#login-form")
    assert page.d.execute_script("return sessionStorage.getItem('warren.session')") is None
    # Credentials that stop working (a password changed elsewhere) end the session with
    # RabbitMQ's reason on the login form.
    stale = {"user": "guest", "tags": ["administrator"],
             "authorization": "Basic " + base64.b64encode(b"guest:changed").decode()}
    page.d.execute_script("sessionStorage.setItem('warren.session', arguments[0])",
                          json.dumps(stale))
    page.d.get(BASE + "/#/queues")
    page.wait_text("#login-error", "Login failed", LIVE)
    assert not page.find("#nav").is_displayed()


# ------------------------------------------------------------------------ main ----

def main():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    passed = failed = skipped = 0
    started = time.monotonic()
    driver = start_browser()
    page = Page(driver)
    try:
        for name, test in tests:
            t0 = time.monotonic()
            try:
                test(page)
                errors = page.javascript_errors()
                assert not errors, f"JavaScript errors in the console: {errors}"
                passed += 1
                print(f"ok     {name} ({time.monotonic() - t0:.1f} s)")
            except Skip as why:
                skipped += 1
                print(f"skip   {name}: {why}")
            except Exception:  # noqa: BLE001 - a failed test is reported, the rest run
                failed += 1
                print(f"FAILED {name}")
                traceback.print_exc(file=sys.stdout)
                try:
                    page.screenshot(f"failed-{name}")
                except Exception:  # noqa: BLE001 - the browser may be gone
                    pass
        (ARTIFACTS / "console.json").write_text(json.dumps(page.console, indent=1))
    finally:
        driver.quit()
    print(f"browser console: {len(page.console)} entries in {ARTIFACTS / 'console.json'}")
    print(f"took {time.monotonic() - started:.1f} s")
    print(f"summary: passed={passed} failed={failed} skipped={skipped}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
