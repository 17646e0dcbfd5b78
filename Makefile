# Needs only Python 3.11+ and make: uv comes from PyPI into .tools/, the locked
# dependencies into .venv/.
PYTHON ?= python3
TOOLS := .tools
VENV := .venv
UV := $(TOOLS)/bin/uv
# The one uv of the project; the generated client's build backend is pinned to it too.
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never

# Defined before the rules that depend on it: make expands prerequisites as it reads them.
# The typed Python client in clients/python, generated from the OpenAPI document as
# served with tokens configured, whenever the code that serves it changed; the venv
# imports it from there (a .pth file: no build, no network).
CLIENT := clients/python/balance_client/__init__.py
# Written by every sync of the venv as well as by every generation: a venv made anew
# while the generated client is up to date imports it too.
CLIENT_PATH = echo "$(CURDIR)/clients/python" > "$$($(VENV)/bin/python -c \
	'import sysconfig; print(sysconfig.get_paths()["purelib"])')/balance_client.pth"
SERVED := $(shell find domain application entrypoints -name '*.py' 2>/dev/null)

.PHONY: run test test-fast install lint check clean soak bench bench-statements bench-reports bench-payout bench-relay bench-opcodes client test-browser test-ha test-broker test-compose

# Serving needs the runtime dependencies only (no test or lint tools): --inexact keeps
# whatever `make install` added before.
run: $(VENV)/.runtime
	$(VENV)/bin/balance serve

test: install $(CLIENT)
	$(VENV)/bin/pytest

# Domain, application, property-based tests and the memory half of the contract suite:
# no PostgreSQL, no network (CI runs it with even the loopback down), about a minute.
test-fast: install $(CLIENT)
	BALANCE_TEST_NO_POSTGRES=1 $(VENV)/bin/pytest -m "not postgres and not browser and not ha and not broker and not compose"

# /docs in headless Chromium with no network (needs Debian's chromium: apt-get install chromium).
test-browser: install $(CLIENT)
	$(VENV)/bin/pytest -m browser tests/browser

# The relay on RabbitMQ: events published in order through relay kills and a broker
# restart (needs a RabbitMQ server: TEST_BROKER_URL, default 127.0.0.1:5672 guest).
test-broker: install $(CLIENT)
	$(VENV)/bin/pytest -m broker tests -s

# The bank test through a switchover and a killed primary, and through PgBouncer:
# a pg_auto_failover cluster on this machine (root; apt-get install
# postgresql-15-auto-failover pgbouncer).
test-ha: install $(CLIENT)
	$(VENV)/bin/pytest -m ha tests/ha -s

# docker-compose.yml for real: a Docker engine from Debian (started and stopped here
# when none runs), base images from their registry or built from Debian packages
# where none is reachable (deploy/ci/bases), then tests/compose (root; ~1-5 min).
test-compose: install
	bash deploy/ci/test-compose.sh

install: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	$(CLIENT_PATH)
	touch $@

$(VENV)/.runtime: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --no-dev --inexact --python $(PYTHON)
	touch $@

lint: install $(CLIENT)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

check: lint test

client: $(CLIENT)

$(CLIENT): $(VENV)/.installed clients/python-client.yaml $(SERVED) Makefile
	$(VENV)/bin/balance openapi --secured > clients/openapi.json
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/openapi-python-client generate \
		--path clients/openapi.json --output-path clients/python \
		--config clients/python-client.yaml --meta uv --overwrite >/dev/null
	# The generator's template asks for an older uv_build than the uv above: the same
	# uv builds the client (`uv build clients/python`) without a warning.
	sed -i 's/"uv_build>=[^"]*"/"uv_build>=$(UV_VERSION),<0.14"/' clients/python/pyproject.toml
	$(CLIENT_PATH)
	touch $@

# This tree against BASELINE (the previous main, checked out into bench/out) and
# pgbench's minimal reserve transaction, side by side (~15 min; needs wrk and pgbench).
BASELINE ?= 3cb6e41
bench: install
	$(VENV)/bin/python -m bench.run --baseline $(BASELINE) --url $${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} --write

# Python's opcodes a request, this tree against BASELINE: counted, not timed, so the
# same every run (~1 min; bench/opcodes.py).
bench-opcodes: install
	$(VENV)/bin/python -m bench.opcodes --baseline $(BASELINE) --url $${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

# A 1,000,000-line payout file in batches of 1,000 through the typed client (~2 min).
bench-payout: install
	$(VENV)/bin/python -m bench.payout --url $${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

# Statement pages at any depth: seeds 10M entries into balance_bench_statements (~5 min).
bench-statements: install
	$(VENV)/bin/python bench/statements.py --url $${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

# The relay: events a second to RabbitMQ with confirms, and the lag under the reserve
# load (~4 min; needs wrk and a RabbitMQ server on 127.0.0.1:5672).
bench-relay: install
	$(VENV)/bin/python -m bench.relay --url $${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

# The monthly revenue CSV at 100k and 1M recognitions (~3 min).
bench-reports: install
	$(VENV)/bin/python bench/reports.py --url $${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

# The bank test for minutes (default 300 s; SOAK_SECONDS=...), with a summary at the end.
# Uses TEST_DATABASE_URL's server when set, else an embedded PostgreSQL.
soak: install
	$(VENV)/bin/python -m tests.bank --seconds $${SOAK_SECONDS:-300} --clients 64

clean:
	rm -rf $(VENV) $(TOOLS)
