#!/usr/bin/env bash
# Install everything, then run the Oxios daemon in the foreground (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/oxios --foreground "$@"
