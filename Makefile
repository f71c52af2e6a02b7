# openedx-pok developer commands. Every target installs what it needs into ./.venv first.
.PHONY: help requirements system-deps demo test test-sqlite test-mysql quality bench bench-outage translations compile-translations \
        migrations-check upgrade clean
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

help: ## show the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-22s %s\n", $$1, $$2}'

# Order-only: mysqlclient (requirements/test.txt) compiles against the MariaDB client library: build-deps first.
$(STAMP): requirements/pip.txt requirements/dev.txt requirements/test.txt requirements/base.txt setup.py | build-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/pip.txt
	$(BIN)/pip install -q -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

requirements: $(STAMP) ## create .venv and install the pinned requirements and the plugin (editable)

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: build-deps
build-deps: ## Debian packages pip needs to build mysqlclient (the LMS's MySQL driver): its client library, pkg-config
	@command -v pkg-config >/dev/null && pkg-config --exists mysqlclient || { \
		echo "Installing Debian packages: default-libmysqlclient-dev pkg-config"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			default-libmysqlclient-dev pkg-config >/dev/null; }

system-deps: build-deps ## Debian packages the tests use: build-deps, gettext (catalogs), chromium + chromium-driver
	@command -v msgfmt >/dev/null && command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		echo "Installing Debian packages: gettext chromium chromium-driver"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			gettext chromium chromium-driver >/dev/null; }

# axe-core, the accessibility checks of the browser tests (tests/browser.py), at the version of package-lock.json:
# installed when missing or when the lock changed (npm ci; Debian's nodejs and npm first if there is no npm).
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json
	@command -v npm >/dev/null || { echo "Installing Debian packages: nodejs npm"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund
	touch $@

demo: $(STAMP) ## sandbox LMS on SQLite + POK simulator: the full learner flow, then the admin (ARGS=--no-serve exits)
	$(BIN)/python -m demo.run $(ARGS)

# The MariaDB run after the SQLite one repeats only the tests that use the database (the others behave the same on
# any database), and its coverage adds to the SQLite run's: the floor holds for the two runs together.
test: $(STAMP) system-deps $(AXE) ## the whole suite on SQLite, then its database tests on MariaDB (127.0.0.1:3306)
	$(MAKE) test-sqlite
	$(MAKE) test-mysql DATABASE_ONLY=1

# Coverage of openedx_pok (what is measured and the floor, fail_under, live in .coveragerc). A run narrowed with ARGS
# (one file, -k ...) still reports coverage but is not held to the floor, which is about the whole suite.
COVERAGE := --cov --cov-report=term $(if $(strip $(ARGS)),--cov-fail-under=0)

test-sqlite: $(STAMP) $(AXE) ## the suite on SQLite (the embedded default), with coverage held to the floor in .coveragerc
	POK_TEST_DB=sqlite $(BIN)/pytest -m "not mysql" $(COVERAGE) $(ARGS)

# A test database of its own per run, so two runs on one MariaDB never drop each other's tables.
POK_TEST_MYSQL_TEST_DB ?= test_openedx_pok_$(shell date +%s)_$(shell echo $$PPID)

# Alone: the whole suite, a superset of the SQLite run's tests, so the same floor holds (the Celery worker test's
# worker is another process and is not measured). DATABASE_ONLY=1 (make test): the tests that use the database only,
# their coverage added to the SQLite run's.
test-mysql: $(STAMP) $(AXE) ## the suite on MariaDB/MySQL, with the concurrency and Celery/Redis worker tests, and coverage
	POK_TEST_DB=mysql POK_TEST_MYSQL_TEST_DB=$(POK_TEST_MYSQL_TEST_DB) POK_TEST_DATABASE_ONLY=$(DATABASE_ONLY) \
		$(BIN)/pytest $(COVERAGE) $(if $(DATABASE_ONLY),--cov-append) $(ARGS)

# Reports of the annotation checks go to test-artifacts/annotations/ (removed by "make clean").
ANNOTATIONS := $(BIN)/code_annotations

quality: $(STAMP) ## lint and import order (ruff); setting, toggle and PII annotations (code_annotations)
	$(BIN)/ruff check .
	$(ANNOTATIONS) static_find_annotations --config_file setting_annotations.yaml --lint --report
	$(ANNOTATIONS) static_find_annotations --config_file toggle_annotations.yaml --lint --report
	DJANGO_SETTINGS_MODULE=test_settings $(ANNOTATIONS) django_find_annotations --config_file .pii_annotations.yml \
		--lint --report --coverage

migrations-check: $(STAMP) ## fail if the models and the migrations differ
	$(BIN)/python -m django makemigrations openedx_pok --check --dry-run --settings=test_settings

bench: $(STAMP) ## benchmarks: SQLite, MariaDB at 10k/100k (admin list, LMS paths), Celery worker on Redis; ARGS=--quick
	$(BIN)/python -m bench.run $(ARGS)
	$(if $(filter --no-mariadb,$(ARGS)),,$(BIN)/python -m bench.worker $(filter --quick,$(ARGS)))

bench-outage: $(STAMP) ## 1,000 awards during a 10-minute POK 503 outage, real worker on Redis, MariaDB (ARGS: --count --outage)
	$(BIN)/python -m bench.outage $(ARGS)

bench-chaos: $(STAMP) ## 1,000 awards, 5% ambiguous 500s, 60 s outage, worker SIGKILL, Redis restart, DB kill (ARGS: --learners --outage)
	$(BIN)/python -m bench.chaos $(ARGS)

translations: $(STAMP) ## extract messages into openedx_pok/locale (needs GNU gettext), then compile them
	cd openedx_pok && ../$(BIN)/django-admin makemessages -l es_419 -l pt_BR --no-obsolete
	$(MAKE) compile-translations

compile-translations: $(STAMP) ## check and compile the openedx_pok/locale .po files to .mo (needs GNU gettext)
	for po in openedx_pok/locale/*/LC_MESSAGES/django.po; do msgfmt --check --statistics -o /dev/null $$po; done
	cd openedx_pok && ../$(BIN)/django-admin compilemessages

upgrade: ## re-pin requirements/*.txt from requirements/*.in
	test -x $(BIN)/pip-compile || $(MAKE) requirements
	for f in pip base test quality dev pip-tools; do \
		$(BIN)/pip-compile -q --upgrade --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
			-o requirements/$$f.txt requirements/$$f.in; \
	done

clean: ## remove build artefacts, caches and the sandbox databases
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache var test-artifacts
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

.PHONY: legacy-fixtures
legacy-fixtures: $(STAMP) ## rebuild tests/legacy/fixtures with the published openedx-pok 21.0.1/22.0.0 (SQLite, MariaDB)
	$(BIN)/python -m tests.legacy.build $(ARGS)
