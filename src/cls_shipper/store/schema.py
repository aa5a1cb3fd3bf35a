"""The one schema, for SQLite and PostgreSQL alike. Migrations under `migrations/` create it;
this module is what queries import. Times are epoch milliseconds (BigInteger)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

access_keys = Table(
    "access_keys",
    metadata,
    Column("secret_id", String(64), primary_key=True),
    Column("secret_key", String(128), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("description", String(255), nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
)

logsets = Table(
    "logsets",
    metadata,
    Column("logset_id", String(64), primary_key=True),
    Column("logset_name", String(255), nullable=False, unique=True),
    Column("period", Integer, nullable=False),
    Column("tags", JSON, nullable=False, default=list),
    Column("created_ms", BigInteger, nullable=False),
)

topics = Table(
    "topics",
    metadata,
    Column("topic_id", String(64), primary_key=True),
    Column("logset_id", String(64), ForeignKey("logsets.logset_id"), nullable=False),
    Column("topic_name", String(255), nullable=False),
    Column("partition_count", Integer, nullable=False, default=1),
    Column("path", String(1024), nullable=False, default=""),
    Column("wild_path", String(1024), nullable=False, default=""),
    Column("collection", Boolean, nullable=False, default=True),
    Column("index_enabled", Boolean, nullable=False, default=False),
    Column("log_type", String(32), nullable=False, default="minimalist_log"),
    Column("extract_rule", JSON, nullable=False, default=dict),
    # Retention in days; None follows the logset's period.
    Column("period", Integer, nullable=True),
    Column("tags", JSON, nullable=False, default=list),
    # The API 3.0 topic options beyond the columns above (auto_split, max_split_partitions,
    # storage_type, describes, hot_period, ...): service/topic_options.py owns their names,
    # defaults and rules; a topic created before they existed has {} and reads the defaults.
    Column("options", JSON, nullable=False, default=dict),
    Column("created_ms", BigInteger, nullable=False),
    # The append-only log's head: the next offset, the newest ingest time, and the seal:
    # no record committed from now on may get an ingest time below `sealed_ms` (the scheduler
    # raises it before cutting windows, so a closed window can never gain a record).
    Column("next_offset", BigInteger, nullable=False, default=0),
    Column("last_ingest_ms", BigInteger, nullable=False, default=0),
    Column("sealed_ms", BigInteger, nullable=False, default=0),
    UniqueConstraint("logset_id", "topic_name", name="uq_topic_name"),
)

# One row per accepted upload: the body as received (compressed protobuf LogGroupList) with
# the records it holds. Offsets [first_offset, first_offset + record_count).
log_chunks = Table(
    "log_chunks",
    metadata,
    Column("topic_id", String(64), nullable=False, primary_key=True),
    Column("first_offset", BigInteger, nullable=False, primary_key=True),
    Column("record_count", Integer, nullable=False),
    Column("ingest_ms", BigInteger, nullable=False),
    Column("codec", String(16), nullable=False),
    Column("raw_size", Integer, nullable=False),
    Column("client_ip", String(64), nullable=False, default=""),
    # As the client compressed it; on PostgreSQL with STORAGE EXTERNAL (migration 0006), so
    # that the database does not try to compress it again.
    Column("payload", LargeBinary, nullable=False),
    # The partition the upload went to (model/partitions.py); offsets stay one sequence per
    # topic, so a partition's records are its chunks in offset order.
    Column("partition_id", Integer, nullable=False, default=1, server_default="1"),
    # Window reads find their first chunk here and then walk the primary key in offset order.
    # (Measured on 3M chunks, bench/chunk_plans.py: adding first_offset to this index makes
    # the planner read whole windows through it for every batch of a window read.)
    Index("ix_log_chunks_topic_ingest", "topic_id", "ingest_ms"),
    # Pulls walk one partition in offset order.
    Index("ix_log_chunks_partition", "topic_id", "partition_id", "first_offset"),
)

shippers = Table(
    "shippers",
    metadata,
    Column("shipper_id", String(64), primary_key=True),
    Column("topic_id", String(64), nullable=False),
    Column("shipper_name", String(255), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("effective", Boolean, nullable=False, default=True),
    # The full, validated configuration (service.shippers.ShipperConfig as a dict).
    Column("config", JSON, nullable=False),
    # Scheduler cursor: the start of the next window to cut (epoch ms, aligned).
    Column("next_window_ms", BigInteger, nullable=False),
    # Historical range bounds (API 3.0 StartTime/EndTime), epoch ms; 0 = unset.
    Column("start_ms", BigInteger, nullable=False, default=0),
    Column("end_ms", BigInteger, nullable=False, default=0),
    # Blocked: a task failed because the destination refused it (bucket missing, access
    # denied, a config the store rejects). Its tasks are not claimed while blocked; workers
    # probe `blocked_bucket`/`blocked_prefix` at `next_probe_ms` and unblock it when the probe
    # passes. All None when not blocked. Written by the ledger only.
    Column("blocked_since_ms", BigInteger, nullable=True),
    Column("blocked_reason", Text, nullable=True),
    Column("blocked_code", Integer, nullable=True),  # 10001, 10002 or 10003
    Column("blocked_bucket", String(255), nullable=True),
    Column("blocked_prefix", String(1024), nullable=True),
    Column("next_probe_ms", BigInteger, nullable=True),
    # Probes since the shipper last shipped a window: the probe backoff's exponent. A task
    # success resets it, an unblock does not, so a destination that passes the probe but
    # still refuses the windows is probed less and less often instead of in a tight loop.
    Column("probe_round", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_shippers_topic", "topic_id"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("shipper_id", String(64), nullable=False),
    Column("topic_id", String(64), nullable=False),
    Column("range_start_ms", BigInteger, nullable=False),
    Column("range_end_ms", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
    # Current (or last) run: when it started and ended; None until it happens.
    Column("run_start_ms", BigInteger, nullable=True),
    Column("run_end_ms", BigInteger, nullable=True),
    # What the task ships with: the shipper config at window-cut time.
    Column("config", JSON, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_ms", BigInteger, nullable=False, default=0),
    # When the window was first attempted since it was cut or queued again: automatic
    # retries of an outage stop at this plus the retry deadline. None until claimed.
    Column("first_attempt_ms", BigInteger, nullable=True),
    # How many times its lease expired (the worker died or stalled): apart from `attempts`,
    # which an outage makes many, so a window that kills its worker still ends `failed`.
    Column("expiries", Integer, nullable=False, default=0, server_default="0"),
    # The SinkError kind that failed it, when the destination refused it: the tasks a
    # shipper queues again when it is unblocked. None otherwise.
    Column("failure_kind", String(16), nullable=True),
    # When the window last ended `failed` (kept through retries): its success is then a
    # recovery, which is notified. None if it never failed.
    Column("failed_ms", BigInteger, nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_ms", BigInteger, nullable=True),
    Column("last_error", Text, nullable=False, default=""),
    Column("records", BigInteger, nullable=False, default=0),
    Column("records_filtered", BigInteger, nullable=False, default=0),
    Column("records_rejected", BigInteger, nullable=False, default=0, server_default="0"),
    Column("bytes_in", BigInteger, nullable=False, default=0),
    Column("bytes_out", BigInteger, nullable=False, default=0),
    Column("first_offset", BigInteger, nullable=True),
    Column("last_offset", BigInteger, nullable=True),
    # [{"key", "size", "md5", "sha256", "records", "raw_bytes", "kind"}...] of the objects
    # written: the parts, then the rejects object if any (kind "rejects").
    Column("objects", JSON, nullable=False, default=list),
    UniqueConstraint("shipper_id", "range_start_ms", name="uq_task_window"),
    Index("ix_tasks_queue", "status", "next_attempt_ms"),
    Index("ix_tasks_shipper_start", "shipper_id", "run_start_ms"),
)

# Every run of a task: claimed with a lease token, ended by an outcome. A task has at most
# one `running` run (partial unique index): a claim that takes over an expired lease closes
# the previous run as `expired` in the same transaction, so "never two workers at once"
# is checked by the database and visible afterwards.
task_runs = Table(
    "task_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("shipper_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("lease_token", String(128), nullable=False),
    # The worker (host:pid/wN) that ran it.
    Column("owner", String(128), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger, nullable=True),
    # The lease as last granted or renewed: past it, the run had no right to the task.
    Column("lease_expires_ms", BigInteger, nullable=False),
    # running | success | retry | failed | expired (taken over) | lease_lost (finished late)
    # | released (handed back by a stopping worker)
    Column("outcome", String(16), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Index("ix_task_runs_task", "task_id", "started_ms"),
    Index("uq_task_runs_one_running", "task_id", unique=True,
          postgresql_where=text("outcome = 'running'"),
          sqlite_where=text("outcome = 'running'")),
)

# The node registry: every server process and worker process heartbeats its row.
nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(128), primary_key=True),
    # all | api | scheduler | worker (a worker process of a node; `parent_id` is the node)
    Column("role", String(16), nullable=False),
    Column("parent_id", String(128), nullable=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    # True while this node holds the scheduler lock.
    Column("leader", Boolean, nullable=False, default=False),
    Column("current_task_id", String(64), nullable=True),
    Index("ix_nodes_last_seen", "last_seen_ms"),
)

# Console sign-ins (service/sessions.py): the SHA-256 of the cookie's token, never the token,
# and the CSRF token every state-changing console request must carry.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("secret_id", String(64), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_console_sessions_expires", "expires_ms"),
    Index("ix_console_sessions_key", "secret_id"),
)

# The notification outbox: one row per event, inserted in the transaction of the transition
# it reports (so an event is never lost nor invented), delivered by the notifier of the node
# leading the scheduler, deleted once delivered. `state`: pending | given_up. Bounded by the
# notifier (NOTIFY_MAX_PENDING pending rows; given-up rows are kept for a while).
notifications = Table(
    "notifications",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(32), nullable=False),
    Column("shipper_id", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("body", JSON, nullable=False),
    Column("state", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("last_error", Text, nullable=False, default=""),
    Index("ix_notifications_due", "state", "next_attempt_ms"),
    Index("ix_notifications_created", "created_ms"),
)

# Shippers whose lag is over NOTIFY_LAG_SECONDS now (a lag event was recorded): the
# notifier's memory across restarts and leader changes, so each crossing is one event.
lag_alerts = Table(
    "lag_alerts",
    metadata,
    Column("shipper_id", String(64), primary_key=True),
    Column("since_ms", BigInteger, nullable=False),
)


# Consumer groups (API 3.0 CreateConsumerGroup...; service/consumers.py owns every rule). A
# group belongs to a logset and reads some of its topics; consumers heartbeat into it and the
# service assigns them the topics' partitions.
consumer_groups = Table(
    "consumer_groups",
    metadata,
    Column("logset_id", String(64), primary_key=True),
    Column("group_name", String(255), primary_key=True),
    # Seconds without a heartbeat after which a consumer loses its partitions.
    Column("timeout_s", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

consumer_group_topics = Table(
    "consumer_group_topics",
    metadata,
    Column("logset_id", String(64), primary_key=True),
    Column("group_name", String(255), primary_key=True),
    Column("topic_id", String(64), primary_key=True),
    Index("ix_consumer_group_topics_topic", "topic_id"),
)

consumer_members = Table(
    "consumer_members",
    metadata,
    Column("logset_id", String(64), primary_key=True),
    Column("group_name", String(255), primary_key=True),
    Column("consumer", String(255), primary_key=True),
    Column("last_seen_ms", BigInteger, nullable=False),
)

# One row per (group, topic, partition) the group has seen: who holds it, and the offset the
# group committed (the next record it has not processed; None until the first commit).
consumer_partitions = Table(
    "consumer_partitions",
    metadata,
    Column("logset_id", String(64), primary_key=True),
    Column("group_name", String(255), primary_key=True),
    Column("topic_id", String(64), primary_key=True),
    Column("partition_id", Integer, primary_key=True),
    Column("owner", String(255), nullable=True),
    Column("committed_offset", BigInteger, nullable=True),
    Column("committed_ms", BigInteger, nullable=True),
    Index("ix_consumer_partitions_topic", "topic_id"),
)
