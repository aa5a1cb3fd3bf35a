"""SIGKILL in the middle of a stream of uploads: after a restart on the same data directory
every acknowledged upload is there, whole, and nothing half-written is."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import httpx

from tests.e2e.test_ingest import (
    assert_gap_free,
    chunk_offsets,
    lz4_body,
    make_group,
    make_list,
    read_all,
    upload,
)
from tests.helpers.server import LegacyClient, ServerProcess

STREAMS = 4
PER_UPLOAD = 25


def test_kill_during_uploads(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", args=["--workers", "0"]).start()
    try:
        client = LegacyClient(server.base_url)
        logset = client.call("POST", "/logset", json={"logset_name": "crash", "period": 7})
        topic = client.call("POST", "/topic", json={"logset_id": logset["logset_id"],
                                                    "topic_name": "t"})["topic_id"]
        acked: dict[int, list[int]] = {n: [] for n in range(STREAMS)}
        enough = threading.Event()
        lock = threading.Lock()
        errors: list[str] = []

        def stream(n: int) -> None:
            mine = LegacyClient(server.base_url)
            for u in range(100_000):
                logs = [{"stream": str(n), "upload": str(u), "i": str(i),
                         "pad": uuid.uuid4().hex * 8} for i in range(PER_UPLOAD)]
                try:
                    resp = upload(mine, topic, lz4_body(make_list(make_group(logs))))
                except httpx.TransportError:
                    return  # the server is gone
                if resp.status_code != 200:
                    errors.append(resp.text)
                    return
                with lock:
                    acked[n].append(u)
                    if sum(map(len, acked.values())) >= 120:
                        enough.set()

        threads = [threading.Thread(target=stream, args=(n,)) for n in range(STREAMS)]
        for t in threads:
            t.start()
        assert enough.wait(120)
        server.kill()  # mid-stream: uploads are in flight on every connection
        for t in threads:
            t.join(30)
        assert errors == []
        server.start()
        records, _ = read_all(client, topic)
        chunks, head = chunk_offsets(server.data_dir, topic)
        assert_gap_free(chunks, head)
        assert len(records) == head
        stored: dict[int, list[int]] = {n: [] for n in range(STREAMS)}
        position = 0
        while position < len(records):
            first = dict(records[position][5])
            n, u = int(first["stream"]), int(first["upload"])
            # Each upload is whole and in order: its records are consecutive.
            for i in range(PER_UPLOAD):
                contents = dict(records[position + i][5])
                assert (contents["stream"], contents["upload"], contents["i"]) == (
                    str(n), str(u), str(i))
            stored[n].append(u)
            position += PER_UPLOAD
        for n in range(STREAMS):
            # Everything acknowledged is there; beyond that, at most the one upload that was
            # committed when the kill cut off its response.
            assert stored[n][:len(acked[n])] == acked[n]
            assert stored[n] == list(range(len(stored[n])))
            assert len(stored[n]) - len(acked[n]) <= 1
        # And the restarted server takes new uploads after the recovered ones.
        more = make_list(make_group([{"after": "restart"}]))
        assert upload(client, topic, lz4_body(more)).status_code == 200
        assert read_all(client, topic)[0][-1][5] == (("after", "restart"),)
    finally:
        server.stop()
