"""`oxios mcp list|tools|call` in-process (no daemon) against mcp-server-time."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

TIME_SERVER = shutil.which("mcp-server-time") or str(Path(sys.executable).with_name("mcp-server-time"))


def test_cli_list_tools_call(oxios_cli: Any, oxios_home: Path) -> None:
    (oxios_home / "config.toml").write_text(f'[mcp.servers.time]\ncommand = "{TIME_SERVER}"\ntimeout_secs = 15\n')
    listed = oxios_cli("mcp", "list")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)[0]["name"] == "time"
    tools = oxios_cli("mcp", "tools", "time")
    assert tools.exit_code == 0, tools.output
    names = {t["oxios_name"] for t in json.loads(tools.output)}
    assert names == {"mcp__time__get_current_time", "mcp__time__convert_time"}
    ok = oxios_cli(
        "mcp", "call", "time", "convert_time", '{"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}'
    )
    assert ok.exit_code == 0 and "21:00" in ok.output
    bad = oxios_cli("mcp", "call", "time", "get_current_time", '{"timezone": "Nowhere/Land"}')
    assert bad.exit_code == 1 and "Nowhere/Land" in bad.output
    not_json = oxios_cli("mcp", "call", "time", "get_current_time", "{timezone")
    assert not_json.exit_code == 2
    unknown = oxios_cli("mcp", "tools", "nope")
    assert unknown.exit_code != 0 and "no MCP server 'nope'" in unknown.output
