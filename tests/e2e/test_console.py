"""The web console in a real browser: Playwright drives Debian's chromium against a real
server process (and a real S3 endpoint, moto), the way a user would: sign in, create a
logset, a topic and shippers from the forms, watch windows ship on the timeline, see a
missing bucket fail, fix it and retry from the page, pause and resume, audit, sign out.
Screenshots of each page are saved under the test's tmp path."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cls_shipper.ingest import cls_pb
from tests.helpers.s3server import S3TestServer
from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess
from tests.helpers.v3 import v3_json

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


def sign_in(page: Any, base: str, secret_key: str = SECRET_KEY,
            secret_id: str = SECRET_ID) -> None:
    page.goto(base + "/console/")
    page.get_by_label("SecretId").fill(secret_id)
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


def local(ms: int) -> str:
    """A time as a datetime-local field takes it, in the server's zone."""
    return datetime.fromtimestamp(ms / 1000, tz=ZONE).strftime("%Y-%m-%dT%H:%M:%S")


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

    # The task table's time filter: two windows' span shows exactly those two rows.
    page.goto(f"{base}/console/shippers/{ok_id}")
    # Five windows at least (the live table grows), so some lie on each side of the two.
    page.wait_for_function(
        "() => document.querySelectorAll('#task-rows tr[data-window]').length >= 5")
    starts = [int(w or 0) for w in page.locator("#task-rows tr[data-window]").evaluate_all(
        "rows => rows.map(r => r.dataset.window)")]
    chosen = starts[3]
    page.get_by_label("Windows from").fill(local(chosen))
    page.get_by_label("to", exact=True).fill(local(chosen + 4000))
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**from=*")
    shown = [int(w or 0) for w in page.locator("#task-rows tr[data-window]").evaluate_all(
        "rows => rows.map(r => r.dataset.window)")]
    assert shown == [chosen + 2000, chosen], (shown, chosen)
    # The filter stays in its field (the browser drops ":00" seconds).
    assert page.get_by_label("Windows from").input_value().removesuffix(":00") == \
        local(chosen).removesuffix(":00")

    # An object deleted behind the ledger's back: the audit run from the page finds it
    # missing, lists it and marks its window on the strip.
    (key, *_) = s3_server.list_objects(bucket, "app/")
    s3_server.client().delete_object(Bucket=bucket, Key=key)
    page.goto(f"{base}/console/shippers/{ok_id}")
    assert strip_count(page, "flagged") == 0
    page.get_by_role("link", name="Audit this range").click()
    page.wait_for_url("**audit=1*")
    findings = page.locator("#audit-findings tbody tr")
    missing = findings.filter(has=page.locator("td:first-child", has_text="missing"))
    assert missing.count() == 1
    assert missing.locator("code").inner_text() == key
    assert page.locator("#audit-summary").inner_text().startswith("✕")
    assert strip_count(page, "flagged") == 1
    # Along the strip with the keyboard, the marked window reads out as the finding's.
    window = missing.locator("td").nth(1).inner_text().split(" – ")[0]
    page.locator("#strip").focus()
    page.keyboard.press("End")
    for _ in range(strip_count(page, "windows")):
        if "audit: missing" in page.locator("#strip-info").inner_text():
            break
        page.keyboard.press("ArrowLeft")
    assert page.locator("#strip-info").inner_text().startswith(f"Window {window} –")
    assert "audit: missing" in page.locator("#strip-info").inner_text()
    snap(page, shots, "audit-finding")

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


def cli(server: ServerProcess, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cls_shipper", *args, "--database-url",
                           server.db_url], capture_output=True, text=True, timeout=60,
                          check=True)
    return done.stdout


def wait_until(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.5)


def test_disabling_a_key_ends_its_console_sessions(
        browser: Any, console_server: ServerProcess) -> None:
    base = console_server.base_url
    created = cli(console_server, "keys", "create", "--description", "console user")
    secret_id = created.split("SecretId:")[1].split()[0]
    secret_key = created.split("SecretKey:")[1].split()[0]
    page = new_page(browser)
    sign_in(page, base, secret_key=secret_key, secret_id=secret_id)
    page.wait_for_url(base + "/console/")
    cookie = next(c for c in page.context.cookies() if c["name"] == "cls_console")
    cli(console_server, "keys", "disable", secret_id)

    # Within the key cache's lifetime, the next page load goes to sign-in.
    def sent_to_sign_in() -> bool:
        page.goto(base + "/console/")
        return "/console/signin" in page.url

    wait_until(sent_to_sign_in, "the disabled key's session ends")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    # The cookie is worthless from anywhere, and the key cannot sign in again.
    replayed = page.request.get(f"{base}/console/",
                                headers={"Cookie": f"cls_console={cookie['value']}"},
                                max_redirects=0)
    assert replayed.status == 303
    sign_in(page, base, secret_key=secret_key, secret_id=secret_id)
    assert page.get_by_role("alert").inner_text().startswith("the SecretId or SecretKey")


def test_consumer_groups_in_the_overview(browser: Any, console_server: ServerProcess,
                                         shots: Path) -> None:
    """Groups made through API 3.0's consumer group actions, as the SDK's consumer sends
    them: each group with its consumers alive or silent, partitions, offsets and lag."""
    base = console_server.base_url
    client = LegacyClient(base)
    logset = client.call("POST", "/logset", json={"logset_name": uuid.uuid4().hex,
                                                  "period": 7})["logset_id"]
    topic = client.call("POST", "/topic", json={"logset_id": logset, "topic_name": "read",
                                                "partition_count": 2})["topic_id"]
    upload(base, topic, ["a", "b", "c"])
    group = f"readers-{uuid.uuid4().hex[:6]}"
    idle = f"idle-{uuid.uuid4().hex[:6]}"
    v3_json(console_server, "CreateConsumerGroup", {
        "LogsetId": logset, "ConsumerGroup": group, "Timeout": 3600, "Topics": [topic]})
    v3_json(console_server, "CreateConsumerGroup", {
        "LogsetId": logset, "ConsumerGroup": idle, "Timeout": 1, "Topics": [topic]})
    held = v3_json(console_server, "SendConsumerHeartbeat", {
        "LogsetId": logset, "ConsumerGroup": group, "Consumer": "c1"})
    (info,) = held["TopicPartitionsInfo"]
    assert sorted(info["Partitions"]) == [1, 2]
    v3_json(console_server, "CommitConsumerOffsets", {
        "LogsetId": logset, "ConsumerGroup": group, "Consumer": "c1",
        "TopicPartitionOffsetsInfo": [{"TopicID": topic, "PartitionOffsets": [
            {"PartitionId": 1, "Offset": 0}]}]})
    v3_json(console_server, "SendConsumerHeartbeat", {
        "LogsetId": logset, "ConsumerGroup": idle, "Consumer": "c9"})

    page = new_page(browser)
    sign_in(page, base)
    page.wait_for_url(base + "/console/")
    readers = page.locator("article.group").filter(
        has=page.get_by_role("heading", name=group))
    assert readers.locator(".consumers").inner_text().count("✓ c1 alive") == 1
    rows = readers.locator("tbody tr")
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    assert [(c[0], c[1], c[2], c[3]) for c in cells] == [
        (topic, "1", "c1", "0"), (topic, "2", "c1", "none committed")]
    assert sum(int(c[4]) for c in cells) == 3  # every record uploaded is still to be read
    # The idle group's consumer stops heartbeating: the overview says it went silent.
    silent = page.locator("article.group").filter(has=page.get_by_role("heading", name=idle))

    def shows_silent() -> bool:
        page.reload()
        return "✕ c9 silent" in silent.locator(".consumers").inner_text()

    wait_until(shows_silent, "the idle consumer shown silent")
    readers.scroll_into_view_if_needed()
    snap(page, shots, "consumer-groups")


def test_forms_carry_every_topic_option_and_tags_and_delete(
        browser: Any, console_server: ServerProcess, shots: Path) -> None:
    base = console_server.base_url
    page = new_page(browser)
    sign_in(page, base)
    page.wait_for_url(base + "/console/")

    # A logset with tags: a key given twice is the service's refusal, at the field.
    name = f"tagged-{uuid.uuid4().hex[:6]}"
    page.goto(base + "/console/logsets/new")
    page.get_by_label("Logset name").fill(name)
    page.get_by_label("Tags").fill("team=web\nteam=api")
    page.get_by_role("button", name="Create logset").click()
    assert page.locator("#tags-error").inner_text() == "Tags: the Key 'team' is given twice"
    assert page.get_by_label("Tags").get_attribute("aria-invalid") == "true"
    page.get_by_label("Tags").fill("team=web\nenv=prod")
    page.get_by_role("button", name="Create logset").click()
    page.wait_for_url(base + "/console/")
    (logset,) = [item for item in v3_json(console_server, "DescribeLogsets", {
        "Filters": [{"Key": "logsetName", "Values": [name]}]})["Logsets"]]
    assert logset["Tags"] == [{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "prod"}]

    # A topic with API 3.0's options: each refusal at its field, then every option stored.
    page.goto(base + "/console/topics/new")
    page.get_by_label("Logset").select_option(label=name)
    page.get_by_label("Topic name").fill("cold-one")
    page.get_by_label("Storage type").select_option("cold")
    page.get_by_label("Retention (days)").fill("3")
    page.get_by_role("button", name="Create topic").click()
    assert page.locator("#period-error").inner_text().startswith(
        "Period must be a whole number of days from 7 to 3600 (cold storage)")
    page.get_by_label("Storage type").select_option("hot")
    page.get_by_label("Retention (days)").fill("30")
    page.get_by_label("Hot period (days)").fill("30")
    page.get_by_role("button", name="Create topic").click()
    assert page.locator("#hot_period-error").inner_text() == \
        "HotPeriod must be 0 or from 7 days to less than Period (30)"
    assert page.get_by_label("Topic name").input_value() == "cold-one"  # typed, kept
    page.get_by_label("Hot period (days)").fill("7")
    page.get_by_label("Partitions", exact=True).fill("3")
    page.get_by_label("Most partitions (MaxSplitPartitions)").fill("2")
    page.get_by_role("button", name="Create topic").click()
    assert page.locator("#partition_count-error").inner_text() == \
        "PartitionCount (3) must not exceed MaxSplitPartitions (2)"
    page.get_by_label("Most partitions (MaxSplitPartitions)").fill("8")
    page.get_by_label("Split partitions automatically (AutoSplit)").uncheck()
    page.get_by_label("Web tracking (IsWebTracking)").check()
    page.get_by_label("trackLog").check()
    page.get_by_label("VPC conditions").fill("= vpc-abc")
    page.get_by_label("Description (Describes)").fill("checkout logs")
    page.get_by_label("Tags").fill("owner=shop")
    page.get_by_label("Billing mode (BillingMode; stored only)").select_option("1")
    snap(page, shots, "topic-form")
    page.get_by_role("button", name="Create topic").click()
    page.wait_for_url(base + "/console/")
    topic_id = page.get_by_role("row").filter(has_text="cold-one").locator("code") \
        .first.inner_text()

    def described() -> dict[str, Any]:
        found: list[dict[str, Any]] = v3_json(console_server, "DescribeTopics", {
            "Filters": [{"Key": "topicId", "Values": [topic_id]}]})["Topics"]
        assert len(found) == 1
        return found[0]

    topic = described()
    assert {k: topic[k] for k in ("PartitionCount", "StorageType", "Period", "HotPeriod",
                                  "AutoSplit", "MaxSplitPartitions", "IsWebTracking",
                                  "Describes", "Tags", "BillingMode", "Extends")} == {
        "PartitionCount": 3, "StorageType": "hot", "Period": 30, "HotPeriod": 7,
        "AutoSplit": False, "MaxSplitPartitions": 8, "IsWebTracking": True,
        "Describes": "checkout logs", "Tags": [{"Key": "owner", "Value": "shop"}],
        "BillingMode": 1, "Extends": {"AnonymousAccess": {
            "Operations": ["trackLog"],
            "Conditions": [{"Attributes": "VpcID", "Rule": 1, "ConditionValue": "vpc-abc"}]}}}

    # Modifying shows what is stored and changes only what is changed.
    page.goto(f"{base}/console/topics/{topic_id}/edit")
    assert page.get_by_label("Tags").input_value() == "owner=shop"
    assert page.get_by_label("VPC conditions").input_value() == "= vpc-abc"
    page.get_by_label("Description (Describes)").fill("checkout and refunds")
    page.get_by_label("trackLog").uncheck()
    page.get_by_label("VPC conditions").fill("")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(base + "/console/")
    topic = described()
    assert (topic["Describes"], topic["HotPeriod"], topic["Extends"]["AnonymousAccess"]) == \
        ("checkout and refunds", 7, {"Operations": [], "Conditions": []})

    # Deleting: the logset still holds a topic, so the service refuses, and says why.
    page.goto(f"{base}/console/logsets/{logset['LogsetId']}/edit")
    page.get_by_role("link", name="Delete this logset…").click()
    assert page.get_by_role("heading").filter(has_text="Delete logset").is_visible()
    # Without the CSRF token nothing is deleted.
    refused = page.request.post(page.url, form={}, max_redirects=0)
    assert refused.status == 403
    page.get_by_role("button", name="Delete logset").click()
    assert page.locator("#delete-error").inner_text() == \
        "the logset still contains topics; delete them first"
    # A shipper on the topic, then the topic, then the logset: each after its confirmation.
    shipper_id = create_shipper(page, base, f"cold-one ({topic_id})", "doomed", "no-bucket")
    page.goto(f"{base}/console/topics/{topic_id}/edit")
    page.get_by_role("link", name="Delete this topic…").click()
    page.get_by_role("button", name="Delete topic").click()
    assert page.locator("#delete-error").inner_text() == \
        "the topic still has shippers; delete them first"
    page.goto(f"{base}/console/shippers/{shipper_id}")
    page.get_by_role("link", name="delete…").click()
    snap(page, shots, "confirm-delete")
    page.get_by_role("button", name="Delete shipper").click()
    page.wait_for_url(base + "/console/?*")
    assert page.get_by_role("status").inner_text() == "shipper 'doomed' deleted"
    page.goto(f"{base}/console/topics/{topic_id}/delete")
    page.get_by_role("button", name="Delete topic").click()
    assert page.get_by_role("status").inner_text() == "topic 'cold-one' deleted"
    page.goto(f"{base}/console/logsets/{logset['LogsetId']}/delete")
    page.get_by_role("button", name="Delete logset").click()
    assert page.get_by_role("status").inner_text() == f"logset {name!r} deleted"
    assert page.get_by_role("row").filter(has_text=name).count() == 0
    assert v3_json(console_server, "DescribeLogsets", {
        "Filters": [{"Key": "logsetName", "Values": [name]}]})["Logsets"] == []


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
