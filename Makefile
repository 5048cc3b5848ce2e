# Vigie — every set-up step lives here so that a fresh machine needs only `make run` / `make test`.
SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VIGIE := $(VENV)/bin/vigie
STAMP := $(VENV)/.installed
DEPT ?= 91
RUN_DIR ?= var/run
KAFKA_PORT ?= 19092
CONSOLE_PORT ?= 8080
export VIGIE_KAFKA_BOOTSTRAP ?= 127.0.0.1:$(KAFKA_PORT)
export VIGIE_CLICKHOUSE ?= chdb://$(CURDIR)/var/vigie/chdb

.PHONY: setup native run stop status probe test test-fast lint bench refdata kafka-up kafka-down \
        kafka-fetch \
        clickhouse-up clickhouse-down system-deps browser-deps console-assets clean chaos

## setup: virtualenv with pinned dependencies and the vigie CLI (idempotent)
setup: $(STAMP) console-assets native

## native: the correlation engine's hot modules compiled with mypyc into build/native
## (agents/core/native.py: used only while they match the sources). Without a C compiler
## the build fails and Vigie runs the same Python modules, slower: a warning, not an error.
NATIVE_SOURCES := $(wildcard agents/core/correlation/*.py) agents/core/native.py scripts/build_native.py
NATIVE_STAMP := build/native/stamp.json
native: $(NATIVE_STAMP)
# Its own mypy cache: `make test` runs the build beside `lint`'s mypy.
$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES)
	MYPY_CACHE_DIR=build/mypy-cache $(PY) scripts/build_native.py > build-native.log 2>&1 \
	  || echo "WARNING: native build failed (see build-native.log): the correlation runs as Python"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

## kafka-up / kafka-down: local single-node KRaft broker (jars from Maven Central, cached)
kafka-up:
	bash scripts/kafka.sh start --port $(KAFKA_PORT)

kafka-down:
	bash scripts/kafka.sh stop

## kafka-fetch: the Kafka jars into .cache/kafka (Maven Central, once)
kafka-fetch:
	bash scripts/kafka.sh fetch

## clickhouse-up / clickhouse-down: Debian's clickhouse-server on loopback (server mode)
clickhouse-up:
	bash scripts/clickhouse.sh start

clickhouse-down:
	bash scripts/clickhouse.sh stop

## refdata: rebuild the served area's reference data (default Essonne, DEPT=91)
refdata: setup
	$(PY) -m offline.refdata_build $(foreach d,$(DEPT),--dept $(d))

## run: broker + worker (embedded chDB) + simulator feeding it, in the background; a fresh
## demo each time (KEEP_DATA=1 keeps the previous topics, tables and state)
run: setup kafka-fetch
	KAFKA_PORT=$(KAFKA_PORT) bash scripts/run.sh start

## stop: stop what `make run` started (worker, simulator, broker)
stop:
	-bash scripts/run.sh stop
	-bash scripts/kafka.sh stop

status:
	bash scripts/run.sh status

## probe: hostile messages against the running worker (`make run`), loopback only; prints a
## table probe x outcome (dead-lettered with its reason, stored, dropped)
probe: setup
	$(PY) scripts/probe.py

## chaos: the pipeline under faults (worker SIGKILLs, ClickHouse down 90 s, broker restart,
## a backlog) on its own loopback broker and ClickHouse, checked against `vigie backtest` of
## the same stream; prints faults x outcome with recovery times (~10 min; docs/chaos.md).
## CHAOS_ARGS passes options (--short, --strict, --record, --seed N ...)
chaos: setup system-deps kafka-fetch
	nice -n 10 $(PY) -m benchmarks.chaos $(CHAOS_ARGS)

## system-deps: Debian packages the test suite needs (ClickHouse server, promtool, Chromium)
system-deps:
	bash scripts/system-deps.sh

## console-assets: the console's map library (maplibre-gl, npm, locked) into console/static/vendor
console-assets:
	bash scripts/console-assets.sh

## browser-deps: playwright-core from npm (driven against Debian's Chromium)
browser-deps:
	bash scripts/browser-deps.sh

## test: the whole suite on real Kafka and a real ClickHouse server, in two pytest-xdist workers:
## the tests on the broker run in one, those on the server alone in the other, each with its
## own instances, beside the rest (tests/infra/xdist_groups.py). The set-up steps and the lint
## run side by side first. `make test TEST_WORKERS=` runs the suite in one process.
TEST_WORKERS ?= -n 2 --dist loadgroup
test:
	$(MAKE) --no-print-directory -j 3 --output-sync=target setup system-deps browser-deps lint \
	  kafka-fetch
	bash scripts/compose-schema.sh >/dev/null
	$(PY) -m pytest -q -ra --durations=15 $(TEST_WORKERS)

test-fast: setup
	$(PY) -m pytest -q -m "not kafka and not clickhouse and not browser"

## lint: ruff on all code and tests, mypy strict on every package (part of `make test`)
LINT_PATHS := schemas agents streams console offline vigie benchmarks deploy/grafana/generate.py scripts/probe.py scripts/build_native.py
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS) tests
	$(VENV)/bin/mypy $(LINT_PATHS)

## bench: throughput and quality benchmarks; appends their results to benchmarks/results/*.jsonl
## and rewrites the reference tables of BENCHMARKS.md
bench: setup system-deps kafka-fetch
	$(PY) -m benchmarks.run_all --record

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
