"""The web console in a real browser: Playwright drives Debian's chromium against a real
server process (and a real S3 endpoint, moto), the way a user would: sign in, create a
logset, a topic and shippers from the forms, watch windows ship on the timeline, see a
missing bucket fail, fix it and retry from the page, pause and resume, audit, sign out.
Screenshots of each page are saved under the test's tmp path."""

from __future__ import annotations

import os
import shutil
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cls_shipper.ingest import cls_pb
from tests.helpers.s3server import S3TestServer
from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ZONE = ZoneInfo("Asia/Shanghai")  # the server's default zone, in which the console writes
# Where the documentation's screenshots come from: set to copy the main ones there.
DOCS_SHOTS = os.environ.get("CONSOLE_DOCS_SCREENSHOTS", "")
TIMEOUT_MS = 60_000
LOADS = 7  # loads of the 10,000-window page whose median is reported

CONSOLE_ENV = {
    "CLS_SHIPPER_SCHEDULER_TICK": "0.2",
    # Shippers are created before their buckets exist (the missing-bucket scenario).
    "CLS_SHIPPER_CHECK_DESTINATION": "false",
    # A blocked shipper's first probe comes late, so the retry button is what fixes it here.
    "CLS_SHIPPER_RETRY_BASE_SECONDS": "120",
    "CLS_SHIPPER_RETRY_BACKOFF_CAP_SECONDS": "300",
}


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory,
                   s3_server: S3TestServer) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("console"),
                         args=["--min-interval", "2", "--object-store", s3_server.sink_url],
                         env={**s3_server.env, **CONSOLE_ENV})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is required under CI=true (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    with sync_api.sync_playwright() as play:
        launched = play.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


def snap(page: Any, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if DOCS_SHOTS:
        Path(DOCS_SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(DOCS_SHOTS) / path.name)


def new_page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def sign_in(page: Any, base: str, secret_key: str = SECRET_KEY) -> None:
    page.goto(base + "/console/")
    page.get_by_label("SecretId").fill(SECRET_ID)
    page.get_by_label("SecretKey").fill(secret_key)
    page.get_by_role("button", name="Sign in").click()


def upload(base_url: str, topic: str, lines: list[str]) -> None:
    """Logs in through the legacy upload endpoint, as the SDKs send them."""
    groups = cls_pb.LogGroupList()
    group = groups.logGroupList.add()
    for line in lines:
        log = group.logs.add()
        log.time = int(time.time() * 1000)
        content = log.contents.add()
        content.key, content.value = "msg", line
    response = LegacyClient(base_url).raw(
        "POST", "/structuredlog", {"topic_id": topic}, groups.SerializeToString(),
        {"Content-Type": "application/x-protobuf"})
    assert response.status_code == 200, response.text


def create_shipper(page: Any, base: str, topic_label: str, name: str, bucket: str) -> str:
    page.goto(base + "/console/shippers/new")
    page.get_by_label("Topic", exact=True).select_option(label=topic_label)
    page.get_by_label("Shipper name").fill(name)
    page.get_by_label("Bucket").fill(bucket)
    page.get_by_label("Prefix").fill("app/")
    page.get_by_label("Interval (seconds)").fill("2")
    page.get_by_role("button", name="Create shipper").click()
    page.wait_for_url("**/console/shippers/*")
    return str(page.url.rsplit("/", 1)[1].split("?")[0])


def strip_count(page: Any, name: str) -> int:
    return int(page.locator("#strip").get_attribute(f"data-{name}") or "0")


def test_the_console_ships_fails_retries_and_signs_out(
        browser: Any, console_server: ServerProcess, s3_server: S3TestServer,
        shots: Path) -> None:
    base = console_server.base_url
    page = new_page(browser)

    # Sign in: a wrong SecretKey is refused with the reason, the right one gets in.
    sign_in(page, base, secret_key="not-the-key")
    assert page.get_by_role("alert").inner_text().startswith("the SecretId or SecretKey")
    snap(page, shots, "signin")
    sign_in(page, base)
    page.wait_for_url(base + "/console/")
    assert page.get_by_role("heading", name="Overview").is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "cls_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert SECRET_KEY not in str(page.context.cookies())

    # A logset: the service's rule shows at its field, then a valid one is created.
    name = f"console-{uuid.uuid4().hex[:6]}"
    page.goto(base + "/console/logsets/new")
    page.get_by_label("Retention (days)").fill("0")
    page.get_by_label("Logset name").fill(name)
    page.get_by_role("button", name="Create logset").click()
    assert page.locator("#period-error").inner_text() == \
        "period must be a whole number of days from 1 to 3640"
    assert page.get_by_label("Retention (days)").get_attribute("aria-invalid") == "true"
    page.get_by_label("Retention (days)").fill("7")
    page.get_by_role("button", name="Create logset").click()
    page.wait_for_url(base + "/console/")
    assert page.get_by_role("row").filter(has_text=name).count() == 1

    # A topic in it.
    page.goto(base + "/console/topics/new")
    page.get_by_label("Logset").select_option(label=name)
    page.get_by_label("Topic name").fill("web")
    page.get_by_role("button", name="Create topic").click()
    page.wait_for_url(base + "/console/")
    topic = page.get_by_role("row").filter(has_text="web").locator("code").first.inner_text()
    topic_label = f"web ({topic})"

    # A shipper: a bad interval is refused by the same rule as the API, at its field.
    bucket = f"console-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(bucket)
    page.goto(base + "/console/shippers/new")
    page.get_by_label("Topic", exact=True).select_option(label=topic_label)
    page.get_by_label("Shipper name").fill("to-s3")
    page.get_by_label("Bucket").fill(bucket)
    page.get_by_label("Interval (seconds)").fill("1")
    page.get_by_role("button", name="Create shipper").click()
    assert page.locator("#interval-error").inner_text() == \
        "interval must be from 2 to 900 seconds"
    assert page.get_by_label("Bucket").input_value() == bucket  # what was typed stays
    snap(page, shots, "shipper-form-error")
    ok_id = create_shipper(page, base, topic_label, "to-s3", bucket)

    # Upload, and watch the windows turn green without reloading the page.
    upload(base, topic, [f"line {i}" for i in range(25)])
    page.wait_for_function(
        "() => [...document.querySelectorAll('#task-rows tr.st-success td:nth-child(5)')]"
        ".some(td => td.textContent.trim() === '25')")
    assert strip_count(page, "success") >= 1
    assert strip_count(page, "failed") == 0
    assert int(page.evaluate("document.body.dataset.refreshed || '0'")) >= 1
    snap(page, shots, "shipper")

    # The task's page: records, objects with checksums, the runs.
    page.locator("#task-rows tr.st-success").filter(has_text="25").locator("a").first.click()
    page.wait_for_url("**/tasks/*")
    assert page.locator("#task-status").inner_text().strip() == "✓ success"
    objects = page.locator("#objects tbody tr")
    assert objects.count() == 1
    assert objects.first.locator("td").nth(0).inner_text().startswith("app/")
    assert len(objects.first.locator("td").nth(4).inner_text()) == 32  # the MD5
    assert page.locator("#runs tbody tr").first.locator("td").nth(5).inner_text() == "success"
    snap(page, shots, "task")

    # A shipper pointed at a bucket that does not exist: its windows fail with the reason.
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    bad_id = create_shipper(page, base, topic_label, "to-missing", missing)
    upload(base, topic, [f"again {i}" for i in range(5)])
    page.wait_for_function("() => Number(document.querySelector('#strip').dataset.failed) > 0")
    failed_row = page.locator("#task-rows tr.st-failed").first
    failed_row.wait_for()
    assert f"bucket '{missing}' does not exist" in failed_row.locator("td.msg").inner_text()
    page.get_by_text("⛔ blocked").first.wait_for()
    snap(page, shots, "shipper-failed")
    failed_row.locator("a").click()
    page.wait_for_url("**/tasks/*")
    assert "does not exist" in page.locator("#task-message").inner_text()
    assert page.locator("#runs tbody tr").last.locator("td").nth(5).inner_text() == "failed"
    assert page.get_by_role("button", name="Retry this window").is_visible()
    snap(page, shots, "task-failed")

    # Create the bucket and retry the range from the shipper's page: the windows ship.
    s3_server.create_bucket(missing)
    page.goto(f"{base}/console/shippers/{bad_id}")
    failed = strip_count(page, "failed")
    page.get_by_role("button", name="Retry the failed windows in this range").click()
    assert page.get_by_role("status").inner_text() == \
        f"{failed} failed window{'s' if failed != 1 else ''} queued again"
    page.wait_for_function(
        "() => document.querySelector('#strip').dataset.failed === '0' && "
        "[...document.querySelectorAll('#task-rows tr.st-success td:nth-child(5)')]"
        ".some(td => td.textContent.trim() === '5')")
    assert s3_server.list_objects(missing, "app/")
    assert page.locator("#task-rows tr.st-failed").count() == 0

    # Pause and resume: the shipper's `effective` flag, through the service.
    page.get_by_role("button", name="Pause shipping").click()
    assert page.get_by_role("status").inner_text() == "shipping paused"
    assert "⏸ paused" in page.locator("#state-text").inner_text()
    page.get_by_role("button", name="Resume shipping").click()
    assert page.get_by_role("status").inner_text() == "shipping resumed"

    # The audit of the range: the bucket holds what the ledger says.
    page.get_by_role("link", name="Audit this range").click()
    # The newest window of a live range may still be in progress ("unfinished"); nothing
    # shipped may be missing, differ, be extra or leave a gap.
    summary = page.locator("#audit-summary").inner_text()
    assert ", 5 records," in summary, summary
    kinds = page.locator("#audit-findings tbody tr td:first-child").all_inner_texts()
    assert set(kinds) <= {"unfinished"}, kinds
    snap(page, shots, "audit")

    # The overview shows both shippers with their state.
    page.goto(base + "/console/")
    assert page.get_by_role("row").filter(has_text="to-missing").locator(".badge").first \
        .inner_text() == "✓ running"
    snap(page, shots, "overview")

    # A state-changing request without the CSRF token is refused, and changes nothing.
    refused = page.request.post(f"{base}/console/shippers/{ok_id}/pause",
                                form={"back": ""}, max_redirects=0)
    assert refused.status == 403
    page.goto(f"{base}/console/shippers/{ok_id}")
    assert page.get_by_role("button", name="Pause shipping").is_visible()

    # Sign out: the session is gone, on this browser and for anyone holding the cookie.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/signin")
    page.goto(f"{base}/console/shippers/{ok_id}")
    assert "/console/signin" in page.url
    replayed = page.request.get(f"{base}/console/",
                                headers={"Cookie": f"cls_console={cookie['value']}"},
                                max_redirects=0)
    assert replayed.status == 303


def test_an_expired_session_goes_back_to_sign_in(
        browser: Any, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "short",
                           env={"CLS_SHIPPER_CONSOLE_SESSION_SECONDS": "2"}).start()
    try:
        page = new_page(browser)
        sign_in(page, server.base_url)
        page.wait_for_url(server.base_url + "/console/")
        time.sleep(2.5)
        page.goto(server.base_url + "/console/logsets/new")
        assert "/console/signin" in page.url
        assert page.get_by_role("heading", name="Sign in").is_visible()
        # Signing in again returns to the page that was asked for.
        page.get_by_label("SecretId").fill(SECRET_ID)
        page.get_by_label("SecretKey").fill(SECRET_KEY)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(server.base_url + "/console/logsets/new")
    finally:
        server.stop()


def test_a_timeline_of_10000_windows(browser: Any, console_server: ServerProcess,
                                     shots: Path, tmp_path: Path) -> None:
    """A shipper with 10,000 windows of history: the page draws them all on its strip, and
    the time to the drawn strip is measured (reported, not asserted: docs/console.md)."""
    base = console_server.base_url
    page = new_page(browser)
    sign_in(page, base)
    page.wait_for_url(base + "/console/")
    client = LegacyClient(base)
    logset = client.call("POST", "/logset", json={"logset_name": uuid.uuid4().hex,
                                                  "period": 7})["logset_id"]
    topic = client.call("POST", "/topic", json={"logset_id": logset,
                                                "topic_name": "many"})["topic_id"]
    # History from 20,000 s ago in 2-second windows, from the form's StartTime.
    start = datetime.fromtimestamp(time.time() - 20_000, tz=ZONE).replace(microsecond=0)
    aligned = start.timestamp() - start.timestamp() % 2
    page.goto(base + "/console/shippers/new")
    page.get_by_label("Topic", exact=True).select_option(label=f"many ({topic})")
    page.get_by_label("Shipper name").fill("history")
    page.get_by_label("Bucket").fill("history-bucket")
    page.get_by_label("Interval (seconds)").fill("2")
    page.get_by_label("Ship history from (optional)").fill(
        datetime.fromtimestamp(aligned, tz=ZONE).strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Create shipper").click()
    page.wait_for_url("**/console/shippers/*")
    shipper = page.url.rsplit("/", 1)[1]
    url = f"{base}/console/shippers/{shipper}?span=6h&until={int(time.time() * 1000)}"
    # Wait until the scheduler has cut the whole history (500 windows a tick).
    deadline = time.monotonic() + 120
    windows = 0
    while time.monotonic() < deadline and windows < 10_000:
        page.goto(url)
        windows = strip_count(page, "windows")
        time.sleep(0.5 if windows < 10_000 else 0)
    assert windows >= 10_000
    # Several loads of the same page; the median is what docs/console.md states, with the
    # server's share (navigation timing: request sent to first byte) and the script's
    # (parsing the strip's data and drawing it).
    loads = []
    for _ in range(LOADS):
        page.goto(url)
        page.wait_for_function("() => document.body.dataset.stripDrawnMs")
        loads.append(page.evaluate("""() => {
            const nav = performance.getEntriesByType("navigation")[0];
            return {drawn: Number(document.body.dataset.stripDrawnMs),
                    script: Number(document.body.dataset.stripScriptMs),
                    server: nav.responseStart - nav.requestStart,
                    bytes: nav.encodedBodySize};
        }"""))
    assert strip_count(page, "windows") >= 10_000
    assert page.locator("#task-rows tr[data-window]").count() == 100  # a page of the table
    # The newest window's row and the strip agree on where the strip ends.
    newest = int(page.locator("#task-rows tr[data-window]").first.get_attribute("data-window")
                 or "0")
    page.locator("#strip").focus()
    page.keyboard.press("End")
    newest_text = datetime.fromtimestamp(newest / 1000, tz=ZONE).strftime("%Y-%m-%d %H:%M:%S")
    assert page.locator("#strip-info").inner_text().startswith(f"Window {newest_text}")
    median = {k: statistics.median(load[k] for load in loads) for k in loads[0]}
    load_average = os.getloadavg()
    each = ", ".join(f"{load['drawn']:.0f}" for load in loads)
    report = (f"{windows} windows, {LOADS} loads: strip drawn {median['drawn']:.0f} ms after "
              f"navigation start (median; each: {each}), server "
              f"{median['server']:.0f} ms, script {median['script']:.0f} ms, page "
              f"{median['bytes'] / 1024:.0f} KiB; load average "
              f"{' '.join(f'{x:.2f}' for x in load_average)}")
    (tmp_path / "render-time.txt").write_text(report + "\n")
    print("\n" + report)
    snap(page, shots, "timeline-10000")
