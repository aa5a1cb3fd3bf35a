"""The event metrics (Prometheus), counted where the events happen.

A node is several OS processes: the server (HTTP, ingest, the store's group commit, the
scheduler) and its shipping worker processes. Each metric is counted in one kind of process
only, so the two kinds count differently: the server in memory (the upload path pays a
fraction of a microsecond per count), worker processes in prometheus-client's multiprocess
mode, writing memory-mapped files in the node's own directory that the server merges on
every scrape. The directory is made fresh when the server starts, so a restart never adds
the counts of a previous run; a worker process that exits is marked dead
(`process_exited`).

State that lives in the database (a shipper's lag, its windows by status, topics' heads) is
not here: the service reads it at scrape time (`service/scrape.py`).

Labels are ids and fixed enums only, never text a client chose. Ids are bounded per process
by `LabelIds`: past `MAX_IDS` distinct values a label reads `_other`, so deleting and
creating shippers for months cannot grow a process's series without limit.

With the `metrics` setting off `current()` is None and every call site does nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.registry import Collector

MAX_IDS = 5_000
OTHER = "_other"
_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Latencies from a fast SQLite commit (about a millisecond) to a slow remote request.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class LabelIds:
    """A bounded set of id label values: the first `limit` ids seen are themselves, later
    ones `_other`."""

    def __init__(self, limit: int = MAX_IDS) -> None:
        self._seen: set[str] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:  # the hot path: no lock
            return value
        with self._lock:
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
        return value

    def known(self, value: str) -> bool:
        return value in self._seen


class Metrics:
    """Every event metric of the service (one instance per process, from `enable`)."""

    def __init__(self) -> None:
        reg = None  # multiprocess values are read back from their files, not a registry
        self.topic_ids = LabelIds()
        self.shipper_ids = LabelIds()
        # Ingest (API processes), counted once per upload, never per record.
        self.ingested_records = Counter(
            "cls_shipper_topic_ingested_records", "Records stored by accepted uploads.",
            ["topic_id"], registry=reg)
        self.ingested_bytes = Counter(
            "cls_shipper_topic_ingested_bytes", "Bytes of accepted uploads, as received.",
            ["topic_id"], registry=reg)
        self.upload_refusals = Counter(
            "cls_shipper_topic_upload_refusals",
            "Uploads refused after their body was read, by legacy error code (topic_id "
            "'_unknown' until the topic has accepted an upload in this process).",
            ["topic_id", "code"], registry=reg)
        # Shipping (worker processes), counted once per task outcome recorded in the ledger.
        self.records_read = Counter(
            "cls_shipper_shipper_read_records", "Records read from the windows shipped "
            "(shipped, filtered out and rejected).", ["shipper_id"], registry=reg)
        self.bytes_read = Counter(
            "cls_shipper_shipper_read_bytes", "Uncompressed bytes read from the windows "
            "shipped.", ["shipper_id"], registry=reg)
        self.records_shipped = Counter(
            "cls_shipper_shipper_shipped_records", "Records written to objects by windows "
            "recorded as success (the sum of the ledger's task records).", ["shipper_id"],
            registry=reg)
        self.records_rejected = Counter(
            "cls_shipper_shipper_rejected_records", "Records no format could write (in the "
            "window's rejects object).", ["shipper_id"], registry=reg)
        self.bytes_written = Counter(
            "cls_shipper_shipper_written_bytes", "Bytes written to objects (compressed).",
            ["shipper_id"], registry=reg)
        self.objects_written = Counter(
            "cls_shipper_shipper_written_objects", "Objects written, rejects objects "
            "included.", ["shipper_id"], registry=reg)
        self.attempts = Counter(
            "cls_shipper_shipper_attempts", "Task attempts by outcome (success, retry, "
            "failed, released, lease_lost) and task error code (10001-10003, '' for none).",
            ["shipper_id", "outcome", "code"], registry=reg)
        # The engine.
        self.claim_seconds = Histogram(
            "cls_shipper_engine_claim_seconds", "Time a worker's task claim took (found a "
            "task or not).", registry=reg, buckets=LATENCY_BUCKETS)
        self.lease_renewals_lost = Counter(
            "cls_shipper_engine_lease_renewals_lost", "Lease renewals that found the lease "
            "taken over (the worker stalled past its lease).", registry=reg)
        # The store's group commit (API processes).
        self.commit_batch = Histogram(
            "cls_shipper_store_commit_batch_uploads", "Uploads per group commit.",
            registry=reg, buckets=BATCH_BUCKETS)
        self.commit_seconds = Histogram(
            "cls_shipper_store_commit_seconds", "Time a group commit took.", registry=reg,
            buckets=LATENCY_BUCKETS)
        # HTTP (the server process).
        self.http_requests = Counter(
            "cls_shipper_http_requests", "HTTP requests answered, by API surface (legacy, "
            "v3, ops), route template (API 3.0: the action) and status.",
            ["surface", "route", "status"], registry=reg)
        self.http_seconds = Histogram(
            "cls_shipper_http_request_duration_seconds", "Time from a request's arrival to "
            "the end of its response.", ["surface", "route", "status"], registry=reg,
            buckets=LATENCY_BUCKETS)

    def of_server(self) -> list[Collector]:
        """The metrics the server process counts (the rest are its worker processes')."""
        return [self.ingested_records, self.ingested_bytes, self.upload_refusals,
                self.commit_batch, self.commit_seconds, self.http_requests, self.http_seconds]


_current: Metrics | None = None
_directory: Path | None = None
_worker = False


def current() -> Metrics | None:
    """This process's metrics; None when they are off."""
    return _current


def directory() -> Path | None:
    return _directory


def new_directory() -> Path:
    """A fresh, empty directory for one node's metric files (the server calls this once)."""
    return Path(tempfile.mkdtemp(prefix="cls-shipper-metrics-"))


def enable(path: Path, *, worker: bool = False) -> Metrics:
    """Turn metrics on in this process: the server's (in memory; `path` is the directory
    whose worker files it merges) or a worker process's (`worker`: written to files in
    `path`, its server's). Must run before any other use of this module."""
    global _current, _directory, _worker
    if _current is not None:
        return _current
    os.environ[_DIR_VARIABLE] = str(path)  # spawned worker processes inherit it
    values.ValueClass = (values.MultiProcessValue()  # type: ignore[no-untyped-call]
                         if worker else values.MutexValue)
    _directory, _worker = path, worker
    _current = Metrics()
    return _current


def remove_directory(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def process_exited(pid: int) -> None:
    """A worker process of this node exited: drop its live gauges (its counters stay)."""
    if _directory is not None:
        multiprocess.mark_process_dead(pid, str(_directory))  # type: ignore[no-untyped-call]


def registry(*collectors: Collector) -> CollectorRegistry:
    """What a scrape exposes: every process's event metrics plus `collectors` (the values
    read at scrape time)."""
    reg = CollectorRegistry(auto_describe=False)
    if _directory is not None:
        multiprocess.MultiProcessCollector(reg, path=str(_directory))  # type: ignore[no-untyped-call]
    if _current is not None and not _worker:
        for metric in _current.of_server():
            reg.register(metric)
    for collector in collectors:
        reg.register(collector)
    return reg
