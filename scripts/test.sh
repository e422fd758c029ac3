#!/usr/bin/env bash
# The test suite, from nothing: set-up, lint, types, pytest, then a leak
# check of what this run created, then stop the engine if this run started it.
set -euo pipefail
cd "$(dirname "$0")/.."

make --no-print-directory system-deps venv
PY=.venv/bin/python
started_engine=0
if ! $PY -m faaslab engine status >/dev/null 2>&1; then
  started_engine=1
fi
cleanup() {
  if [ "$started_engine" = 1 ]; then
    $PY -m faaslab engine down || true
  fi
}
trap cleanup EXIT

make --no-print-directory engine images

echo "== ruff"
.venv/bin/ruff check src tests benchmarks examples
echo "== mypy --strict"
.venv/bin/mypy --strict src

# Engine objects that exist before the run are not this run's: the leak
# check only counts what appears during it.
# One id for this run: its deployments are named t<run>-<n> (tests/integration/conftest.py).
FAASLAB_TEST_RUN=${FAASLAB_TEST_RUN:-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export FAASLAB_TEST_RUN
before=$(mktemp)
$PY tests/leakcheck.py snapshot "$before"
echo "== pytest"
status=0
.venv/bin/pytest "$@" || status=$?
echo "== leak check"
$PY tests/leakcheck.py compare "$before" || status=1
rm -f "$before"
exit $status
