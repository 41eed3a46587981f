#!/usr/bin/env bash
# Install everything (with test tools, Chromium and git), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
exec .venv/bin/python -m pytest "$@"
