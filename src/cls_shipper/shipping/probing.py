"""Probing a blocked shipper's destination: a worker with nothing else due leases one
blocked shipper whose probe is due, writes a probe object with `Sink.probe`, and reports the
result to the ledger, which unblocks the shipper (and queues the windows that failed for the
cause) or schedules the next probe with capped backoff.

Workers probe rather than the scheduler: a probe must use the workers' own credentials and
endpoint (a worker node may have different ones than the scheduler's), and a probe may wait
for the store's timeout, which the scheduler's one-second tick cannot afford."""

from __future__ import annotations

import logging

from cls_shipper import logctx
from cls_shipper.errors import ShippingError
from cls_shipper.shipping import ledger
from cls_shipper.sinks import Sink
from cls_shipper.store import Database
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.probing")


def probe_one(db: Database, sink: Sink, policy: ledger.RetryPolicy, lease_ms: int) -> bool:
    """Probe one blocked shipper whose probe is due; False when there was none."""
    target = ledger.claim_probe(db, now_ms(), lease_ms)
    if target is None:
        return False
    with logctx.bound(shipper_id=target.shipper_id):
        return _probe(db, sink, target, policy)


def _probe(db: Database, sink: Sink, target: ledger.ProbeTarget,
           policy: ledger.RetryPolicy) -> bool:
    try:
        sink.probe(target.bucket, target.prefix)
    except Exception as exc:  # noqa: BLE001 - any failure keeps the block; typed ones say why
        failure = exc if isinstance(exc, ShippingError) else ShippingError.unexpected(exc)
        ledger.probe_failed(db, target, now_ms(), failure, policy)
        log.info("shipper %s still blocked: %s", target.shipper_id, failure.message)
        return True
    queued = ledger.probe_passed(db, target, now_ms())
    if queued >= 0:
        log.warning("shipper %s unblocked: bucket %r works again; %d failed window(s) queued "
                    "again", target.shipper_id, target.bucket, queued)
    return True
