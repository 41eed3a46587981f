#!/usr/bin/env bash
# Install Oxios, its hook contract and every plugin in this repository into .venv.
# Usage: bash scripts/install.sh [--dev]   (--dev adds test tools, Chromium and git)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Oxios needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian and Ubuntu ship venv separately.
    as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
    "$PYTHON" -m venv .venv
  fi
fi

dev=0
[ "${1:-}" = "--dev" ] && dev=1

if [ "$dev" = 1 ]; then
  missing=()
  command -v git >/dev/null || missing+=(git)
  command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing system packages: ${missing[*]}"
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" \
      || echo "warning: could not install ${missing[*]} (tests that need them fail in CI)" >&2
  fi
fi

args=(-e ./hookspecs)
if [ "$dev" = 1 ]; then args+=(-e ".[dev]"); else args+=(-e .); fi
for plugin in plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && args+=(-e "./$plugin")
done
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${args[@]}"
