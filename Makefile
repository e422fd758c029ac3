# faaslab: `make demo` runs the main job, `make test` the test suite; both do
# all set-up themselves (Debian packages, venv, Docker engine, images).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps venv engine engine-down images demo test lint clean

setup: system-deps venv engine images

system-deps:
	@bash scripts/system-deps.sh

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

engine: venv
	@$(PY) -m faaslab engine up

engine-down: venv
	@$(PY) -m faaslab engine down

images: engine
	@$(PY) -m faaslab images build

demo: setup
	@$(PY) -m faaslab demo

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy --strict src

test:
	@bash scripts/test.sh

clean:
	rm -rf $(VENV) build src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
