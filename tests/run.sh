#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it.
#
#   bash tests/run.sh            # the whole suite (what .ci/run calls)
#   bash tests/run.sh -k query   # extra arguments go to pytest
#   bash tests/run.sh -m "not browser and not slow"   # the quick subset
#
# Installs gradtrace with its test extra (compiling its guided walk, a C module, with
# the machine's compiler), Debian's chromium + chromium-driver
# for the browser tests (when root or password-less sudo), starts the local
# PostgreSQL 15 if it is installed and stopped, and points the PostgreSQL
# variants of the tests at it. With CI=true a missing browser, database or compiled
# walk fails the tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."

# The active environment's Python: a virtualenv, or the machine's python3 in CI.
PYTHON=${PYTHON:-$( [ -n "${VIRTUAL_ENV:-}" ] && echo "$VIRTUAL_ENV/bin/python" || echo python3 )}
PG_URL_DEFAULT="postgresql+psycopg://root@127.0.0.1:5432/test"

step() { printf '\n== %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

step "python packages"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[test]"

step "headless chromium for the browser tests"
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "found $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
elif as_root true; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  echo "installed $(/usr/bin/chromium --version 2>/dev/null)"
else
  echo "no chromium and no root: browser tests will be skipped (they fail when CI=true)"
fi

step "postgresql"
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up && command -v pg_ctlcluster >/dev/null; then
  for version in $(ls /etc/postgresql 2>/dev/null); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
if [ -z "${GRADTRACE_TEST_PG_URL:-}" ]; then
  if pg_up || [ "${CI:-}" = true ]; then
    export GRADTRACE_TEST_PG_URL="$PG_URL_DEFAULT"
  fi
fi
echo "GRADTRACE_TEST_PG_URL=${GRADTRACE_TEST_PG_URL:-<unset: PostgreSQL tests will be skipped>}"

step "lint"
"$PYTHON" -m ruff check gradtrace engine tracer dashboard migrations tests benchmarks

step "tests"
exec "$PYTHON" -m pytest --headless "$@"
