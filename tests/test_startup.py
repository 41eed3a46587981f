"""`oxios --help` stays lean: no SDK or heavy library is imported to print help (they load at first use)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = (
    "anthropic",
    "openai",
    "httpx",
    "httpx2",
    "dulwich",
    "playwright",
    "mcp",
    "telegram",
    "discord",
    "a2a",
    "usearch",
    "numpy",
    "starlette",
    "uvicorn",
    "jsonschema",
    "prometheus_client",
)

PROBE = """
import json, sys
sys.argv = ["oxios", "--help"]
from oxios.cli import build_app
build_app()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
"""


def test_help_imports_no_heavy_library(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS")}
    env["OXIOS_HOME"] = str(tmp_path)
    # Every installed plugin is loaded, as for a user: plugins must import their SDKs lazily too.
    out = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    roots = sorted({m.split(".")[0] for m in loaded})
    assert roots == [], f"imported while building the CLI: {roots} (import them inside the function that uses them)"
