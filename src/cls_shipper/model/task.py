"""A shipping task as everyone above the ledger sees it: its state, its runs, and the two
snapshots a listing and an inspection show (`Task`, `TaskDetail`). The ledger
(`shipping.ledger`) is the only one that changes a task; see its table of transitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from cls_shipper.model.objects import ShippedObject
from cls_shipper.model.shipper import ShipperConfig


class TaskStatus(StrEnum):
    """`tasks.status`; the API shows the same words (spec §4.6)."""

    WAIT = "wait"  # queued: due at next_attempt_ms
    RUNNING = "running"  # leased by a worker until lease_expires_ms
    SUCCESS = "success"
    FAILED = "failed"  # waits for a user's retry


class RunOutcome(StrEnum):
    """`task_runs.outcome`: how one attempt ended."""

    RUNNING = "running"
    SUCCESS = "success"
    RETRY = "retry"  # failed, the task went back to wait for another attempt
    FAILED = "failed"  # failed, and so did the task
    EXPIRED = "expired"  # its lease ran out and another worker took the task over
    LEASE_LOST = "lease_lost"  # it finished after that; its outcome was not recorded
    RELEASED = "released"  # its worker was stopping and handed the task back unfinished


@dataclass(frozen=True, slots=True)
class Run:
    """One attempt at a task: which worker, when, and how it ended."""

    attempt: int
    owner: str
    lease_token: str
    started_ms: int
    ended_ms: int | None
    lease_expires_ms: int
    outcome: RunOutcome
    message: str


class Task(NamedTuple):
    """A task as a listing shows it. `start_ms` is when its current run started, or when it
    was queued if it has not run yet; `end_ms` is when that run ended (None until then).

    A tuple rather than a dataclass: a listing makes hundreds of them per request, and a
    tuple is what the database row already is."""

    task_id: str
    shipper_id: str
    topic_id: str
    range_start_ms: int
    range_end_ms: int
    start_ms: int
    end_ms: int | None
    status: TaskStatus
    message: str


class CountedTask(NamedTuple):
    """A task as a detailed listing shows it: `Task`'s fields, then the ledger's counters of
    it (what `TaskDetail` has in the same names, and `objects`, the number of objects it
    wrote, rejects object included). Narrow columns only: no runs, no config, and the objects
    counted by the database rather than decoded."""

    task_id: str
    shipper_id: str
    topic_id: str
    range_start_ms: int
    range_end_ms: int
    start_ms: int
    end_ms: int | None
    status: TaskStatus
    message: str

    records: int
    records_filtered: int
    records_rejected: int
    bytes_in: int
    bytes_out: int
    objects: int
    attempts: int


@dataclass(frozen=True, slots=True)
class TaskDetail:
    """A task with everything the ledger knows of it: `Task`'s fields, then counters, lease,
    what it shipped, the config it ships with (the shipper's when the window was cut, or when
    it was retried with a reload) and, when asked for, its runs oldest first."""

    task_id: str
    shipper_id: str
    topic_id: str
    range_start_ms: int
    range_end_ms: int
    start_ms: int
    end_ms: int | None
    status: TaskStatus
    message: str

    created_ms: int
    attempts: int
    next_attempt_ms: int
    lease_owner: str | None
    lease_expires_ms: int | None
    last_error: str
    records: int
    records_filtered: int
    records_rejected: int  # records no format could write, in the rejects object
    bytes_in: int
    bytes_out: int
    first_offset: int | None
    last_offset: int | None
    objects: list[ShippedObject]
    config: ShipperConfig
    runs: list[Run] = field(default_factory=list)
