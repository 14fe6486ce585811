#!/usr/bin/env bash
# Create .venv and install facedemo's dependencies; `--dev` adds the test tools and Debian's chromium.
# Safe to run again: pip only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY=$candidate; break; fi
  done
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
requirements=requirements.txt
[ "${1:-}" = "--dev" ] && requirements=requirements-dev.txt
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$requirements"
.venv/bin/python -m pip check
if [ "${1:-}" = "--dev" ] && ! command -v chromium >/dev/null 2>&1; then
  # The browser test drives Debian's chromium; without it (or without root) that one test skips.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; the browser test will be skipped" >&2
  else
    echo "setup: chromium is not installed (sudo apt-get install chromium); the browser test will be skipped" >&2
  fi
fi
