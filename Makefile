# Two commands on a fresh machine: `make run` (service + demo) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean sanitize fuzz fuzz-upload fuzz-rejects api-fuzz
FUZZ_SECONDS ?= 60

# The C extension (src/cls_shipper/_wire.c) is built by the editable install: rebuild on change.
$(STAMP): pyproject.toml src/cls_shipper/_wire.c
	command -v lzop >/dev/null || (apt-get update -qq && apt-get install -y -qq lzop) || true
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/cls-shipper serve --demo --data-dir ./data

test: $(STAMP)
	$(PY) -m pytest -q

# The same checks CI runs: style and bugs, types, and the layers of docs/architecture.md.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict bench tests
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/ship.py
	$(PY) bench/scale.py

# The C extension built with AddressSanitizer and UBSan (gcc, in a temporary directory) under
# its differential tests and the encoder tests; any report fails.
sanitize: $(STAMP)
	PYTHON=$(PY) tests/fuzz/sanitize.sh

# Coverage-guided differential fuzzing of the three C walks (libFuzzer through atheris, clang
# build with ASan), FUZZ_SECONDS per walk; a finding fails and is kept in fuzz-artifacts/.
fuzz: $(STAMP)
	command -v clang >/dev/null || (apt-get update -qq && apt-get install -y -qq clang)
	PYTHON=$(PY) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/fuzz.sh

# Coverage-guided fuzzing of the upload path in process (both endpoints, every codec, bodies
# of several members, JSON) for FUZZ_SECONDS: a 5xx, or a 200 whose stored records differ from
# an independent decode of the body, fails and is kept in fuzz-artifacts/.
fuzz-upload: $(STAMP)
	mkdir -p fuzz-artifacts
	corpus=$$(mktemp -d); $(PY) tests/fuzz/upload_fuzz.py "$$corpus" \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=20 -max_len=4096 -print_final_stats=1 \
	    -artifact_prefix=fuzz-artifacts/upload-; rc=$$?; rm -rf "$$corpus"; exit $$rc

# No record blocks a window: generated and mutated uploads that ingest accepts (C and Python
# paths), encoded in every format with and without encoders that refuse records, read back by
# independent readers: every record ships once or is in the rejects object, for FUZZ_SECONDS.
# A failure prints the seed that replays it (`$(PY) tests/fuzz/rejects_fuzz.py 1 SEED`).
fuzz-rejects: $(STAMP)
	PYTHONPATH=. $(PY) tests/fuzz/rejects_fuzz.py $(FUZZ_SECONDS)

# Schemathesis against a real server: every JSON operation of GET /openapi.json, valid and
# invalid requests, signed; a 5xx or an answer the document does not describe fails.
# API_FUZZ_EXAMPLES cases per operation and mode (default 250, about a minute).
api-fuzz: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/fuzz/api_schema_fuzz.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
