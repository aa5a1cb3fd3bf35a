"""Run at start-up by the Python of a server that a test starts with this directory first on
PYTHONPATH (see tests/e2e/test_rejects.py): with TEST_POISON_CONTENT_KEY set, the
server's encoders refuse every record holding a content key of that name (tests/helpers/
poison.py), in the server process and in its worker processes alike."""

from __future__ import annotations

import os

_KEY = os.environ.get("TEST_POISON_CONTENT_KEY")
if _KEY:
    from tests.helpers.poison import poison

    from cls_shipper.ingest.native import wire

    # Entered for the life of the process, and held: a context manager nobody references is
    # collected, which closes its generator and undoes the patches.
    _POISONED = poison(wire, lambda row: _KEY in row)
    _POISONED.__enter__()
