"""The notifier: delivers the outbox's events to the webhook (`NOTIFY_URL`) and records lag
crossings. It runs as a thread of every scheduler node and works only while that node leads
the scheduler, so one node of a deployment delivers; a leader change may deliver an event
twice (deliveries are at least once; receivers deduplicate by `event_id`).

Shipping never waits for it: the ledger only inserts a row, and deliveries run here, one at
a time, with a bounded client and timeouts. A failed delivery is retried with capped
exponential backoff and full jitter until `NOTIFY_DEADLINE_SECONDS` after the event; then it
is given up, logged with what to do, and counted. The outbox is bounded: at most
`NOTIFY_MAX_PENDING` pending events (the oldest beyond are dropped, logged and counted).

The body is signed: `X-Cls-Shipper-Signature: t=<unix seconds>,v1=<hex>`, the HMAC-SHA256
with `NOTIFY_SECRET` of `<t>.` followed by the exact body bytes, so a receiver can check
both who sent it and when (and refuse an old `t`: a replay)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import orjson

from cls_shipper import __version__
from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger, outbox
from cls_shipper.store import Database
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.notifier")

SIGNATURE_HEADER = "X-Cls-Shipper-Signature"
EVENT_HEADER = "X-Cls-Shipper-Event"
EVENT_ID_HEADER = "X-Cls-Shipper-Event-Id"
ATTEMPT_HEADER = "X-Cls-Shipper-Delivery-Attempt"
POLL_SECONDS = 1.0
HOUSEKEEPING_MS = 5_000  # how often the cap, the given-up rows and the lag are looked at
BATCH = 50  # events one round tries at most (a round stops at the first failure)
BACKOFF_BASE_MS = 1_000
ERROR_TEXT = 200  # bytes of a refusing receiver's answer kept as the error


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The value of SIGNATURE_HEADER for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body,
                      hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff_ms(attempt: int, cap_ms: int, rng: random.Random | None = None) -> int:
    """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))], so events that failed
    together (a receiver down) do not all come back together."""
    ceiling = min(cap_ms, BACKOFF_BASE_MS * 2 ** min(max(attempt - 1, 0), 40))
    return round((rng or random).uniform(0, ceiling))


def _where(url: str) -> str:
    """The receiver named without what its URL may carry (a token in the path or query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"


@dataclass
class Counters:
    """What the notifier did since this process started (also in the log)."""

    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed_attempts": self.failed_attempts,
                "given_up": self.given_up, "dropped": self.dropped}


@dataclass
class Notifier:
    db: Database
    settings: Settings
    is_leader: Callable[[], bool]
    rng: random.Random = field(default_factory=random.Random)
    counters: Counters = field(default_factory=Counters)
    _client: httpx.Client | None = None
    _next_housekeeping: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str | None:
        return self.settings.notify_url

    def client(self) -> httpx.Client:
        if self._client is None:
            timeout = self.settings.notify_timeout_seconds
            self._client = httpx.Client(
                timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                follow_redirects=False,
                headers={"User-Agent": f"cls-shipper/{__version__}"})
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- One round ---

    def round(self, now: int | None = None) -> int:
        """Housekeeping when due, then deliver what is due; returns how many were delivered.
        Does nothing on a node that does not lead the scheduler."""
        if not self.is_leader():
            return 0
        current = now_ms() if now is None else now
        if current >= self._next_housekeeping:
            self._next_housekeeping = current + HOUSEKEEPING_MS
            self.housekeeping(current)
        if self.url is None:
            return 0
        delivered = 0
        for event in outbox.due(self.db, current, BATCH):
            if self._stop.is_set() or not self.deliver(event):
                break  # the receiver is likely down: the others wait for their turn
            delivered += 1
        return delivered

    def housekeeping(self, now: int) -> None:
        if self.url is None:
            discarded = outbox.discard_all(self.db)
            if discarded:
                log.debug("no notify_url: %d event(s) discarded", discarded)
            return
        dropped = outbox.drop_over_cap(self.db, self.settings.notify_max_pending)
        if dropped:
            self.counters.dropped += dropped
            log.error("notifications: %d undelivered event(s) dropped, the oldest, to keep "
                      "the outbox at notify_max_pending=%d (%d dropped since start; "
                      "cls-shipper status counts them); the receiver at %s has not taken "
                      "events for long: check it is up and answers 2xx", dropped,
                      self.settings.notify_max_pending, self.counters.dropped,
                      _where(self.url))
        outbox.prune_lost(self.db, now)
        if self.settings.notify_lag_seconds > 0:
            self.evaluate_lag(now)

    def evaluate_lag(self, now: int) -> None:
        """One event when a shipper's lag passes the threshold, one when it is back under
        (or the shipper is gone or switched off)."""
        threshold = int(self.settings.notify_lag_seconds * 1000)
        with self.db.read() as conn:
            until = ledger.shipped_until_all(conn)
            alerted = outbox.lagging(conn)
        for shipper_id, shipped_until in until.items():
            lag = now - shipped_until
            if lag > threshold and shipper_id not in alerted:
                if outbox.lag_exceeded(self.db, shipper_id, lag, threshold, shipped_until,
                                       now):
                    log.warning("shipper %s lags %.0fs behind (threshold %.0fs)", shipper_id,
                                lag / 1000, threshold / 1000)
            elif lag <= threshold and shipper_id in alerted:
                outbox.lag_recovered(self.db, shipper_id, lag, threshold, now)
        for shipper_id in alerted - until.keys():
            outbox.lag_recovered(self.db, shipper_id, None, threshold, now)

    def deliver(self, event: outbox.Pending) -> bool:
        """One attempt at one event; True if the receiver took it (any 2xx)."""
        assert self.url is not None
        body = orjson.dumps(event.body)  # the exact bytes signed and sent
        attempt = event.attempts + 1
        headers = {"Content-Type": "application/json", EVENT_HEADER: event.event_type,
                   EVENT_ID_HEADER: event.event_id, ATTEMPT_HEADER: str(attempt)}
        if self.settings.notify_secret:
            headers[SIGNATURE_HEADER] = signature(self.settings.notify_secret,
                                                  int(time.time()), body)
        error: str
        try:
            with self.client().stream("POST", self.url, content=body,
                                      headers=headers) as response:
                if response.is_success:
                    outbox.delivered(self.db, event.event_id)
                    self.counters.delivered += 1
                    return True
                head = b""
                for piece in response.iter_bytes():
                    head += piece
                    if len(head) >= ERROR_TEXT:
                        break
                error = (f"HTTP {response.status_code}: "
                         f"{head[:ERROR_TEXT].decode('utf-8', 'replace')}")
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = now_ms()
        self.counters.failed_attempts += 1
        deadline_ms = int(self.settings.notify_deadline_seconds * 1000)
        if now - event.created_ms >= deadline_ms:
            outbox.given_up(self.db, event.event_id, error)
            self.counters.given_up += 1
            log.error("notification %s (%s of shipper %s) given up after %d attempt(s) over "
                      "%.0fs: %s. The receiver at %s never took it: check it is up, "
                      "reachable from this node and answers 2xx; the event stays in the "
                      "notifications table (state given_up) for 7 days, counted by "
                      "cls-shipper status (%d given up since start)", event.event_id,
                      event.event_type, event.body.get("shipper_id"), attempt,
                      (now - event.created_ms) / 1000, error, _where(self.url),
                      self.counters.given_up)
            return False
        delay = backoff_ms(attempt, int(self.settings.notify_backoff_cap_seconds * 1000),
                           self.rng)
        outbox.failed_attempt(self.db, event.event_id, now + delay, error)
        log.warning("notification %s (%s) not delivered (attempt %d): %s; retrying in "
                    "%.1fs", event.event_id, event.event_type, attempt, error, delay / 1000)
        return False

    # --- The thread ---

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    self.round()
                except Exception:
                    log.exception("notifier round failed; retrying")
                stop.wait(POLL_SECONDS)
        finally:
            self.close()
