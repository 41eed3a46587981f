"""Plugin loading: real distributions found through entry points, failures reported, lists honoured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oxios.plugins import PluginManager, resolve

DEMO = '''
from oxios_hookspecs import hookimpl

def shout(text: str) -> str:
    """Say it louder."""
    return text.upper()

@hookimpl
def register_tools(register):
    register(shout, tier="read")

@hookimpl
def register_commands(app):
    @app.command("demo-hello")
    def hello():
        """Say hello from the demo plugin."""
        print("hello from demo")

@hookimpl
async def startup(kernel):
    (kernel.paths.home / "demo-started").write_text("yes")
'''

BROKEN = "raise RuntimeError('this plugin is broken on purpose')\n"

TYPO = """
from oxios_hookspecs import hookimpl

@hookimpl
def register_tool(register):  # misspelled: the hook is register_tools
    pass
"""


def make_dist(site: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[oxios]\n{ep_name} = {module}\n")
    (info / "RECORD").write_text("")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    make_dist(site, "oxios-plugin-demo", "oxios_plugin_demo", DEMO, "demo")
    make_dist(site, "oxios-plugin-broken", "oxios_plugin_broken", BROKEN, "broken")
    make_dist(site, "oxios-plugin-typo", "oxios_plugin_typo", TYPO, "typo")
    # The same distribution a second time on the path (editable install + site-packages).
    make_dist(tmp_path / "site2", "oxios-plugin-demo", "oxios_plugin_demo", DEMO, "demo")
    return site


def oxios(site: Path, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS")}
    # Only this test's distributions: the plugins of this repository are installed in the venv too.
    full_env.update(
        OXIOS_HOME=str(home), PYTHONPATH=f"{site}{os.pathsep}{site.parent / 'site2'}", OXIOS_LOAD_PLUGINS="demo,broken,typo"
    )
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "oxios", *args], capture_output=True, text=True, env=full_env, timeout=60)


def test_entry_point_plugin_discovered_broken_reported(site: Path, tmp_path: Path) -> None:
    out = oxios(site, tmp_path / "home", "plugins")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    names = [p["name"] for p in data["plugins"]]
    assert names == ["demo"]  # once, although it is on the path twice; built-ins hidden
    demo = data["plugins"][0]
    assert demo["distribution"] == "oxios-plugin-demo" and demo["version"] == "1.0"
    assert set(demo["hooks"]) == {"register_tools", "register_commands", "startup"}
    failed = {f["name"]: f for f in data["failed"]}
    assert "this plugin is broken on purpose" in failed["broken"]["error"]
    assert failed["broken"]["distribution"] == "oxios-plugin-broken"
    assert "unknown hook 'register_tool'" in failed["typo"]["error"]


def test_builtins_with_all_and_hook_filter(site: Path, tmp_path: Path) -> None:
    data = json.loads(oxios(site, tmp_path / "home", "plugins", "--all").stdout)
    assert any(p["builtin"] and p["name"] == "policies" for p in data["plugins"])
    data = json.loads(oxios(site, tmp_path / "home", "plugins", "--all", "--hook", "startup").stdout)
    assert [p["name"] for p in data["plugins"] if not p["builtin"]] == ["demo"]
    assert all("startup" in p["hooks"] for p in data["plugins"])


def test_plugin_commands_and_help_survive_a_broken_plugin(site: Path, tmp_path: Path) -> None:
    help_out = oxios(site, tmp_path / "home", "--help")
    assert help_out.returncode == 0 and "demo-hello" in help_out.stdout
    assert oxios(site, tmp_path / "home", "demo-hello").stdout.strip() == "hello from demo"


def test_disabled_and_load_only_lists(site: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = json.loads(oxios(site, home, "plugins", OXIOS_DISABLED_PLUGINS="demo,broken").stdout)
    assert data["plugins"] == [] and [f["name"] for f in data["failed"]] == ["typo"]
    data = json.loads(oxios(site, home, "plugins", "--all", OXIOS_LOAD_PLUGINS="demo").stdout)
    assert [p["name"] for p in data["plugins"] if not p["builtin"]] == ["demo"] and data["failed"] == []
    data = json.loads(oxios(site, home, "plugins", OXIOS_LOAD_PLUGINS="").stdout)
    assert data == {"plugins": [], "failed": []}
    # Built-ins can be disabled like any plugin.
    data = json.loads(oxios(site, home, "plugins", "--all", OXIOS_LOAD_PLUGINS="", OXIOS_DISABLED_PLUGINS="policies").stdout)
    assert all(p["name"] != "policies" for p in data["plugins"])


def test_trace_prints_hook_calls(site: Path, tmp_path: Path) -> None:
    out = oxios(site, tmp_path / "home", "--help", OXIOS_TRACE_PLUGINS="1")
    assert "[oxios trace]" in out.stderr and "register_commands" in out.stderr


def test_doctor_reports_the_broken_plugin_with_a_fix(site: Path, tmp_path: Path) -> None:
    out = oxios(site, tmp_path / "home", "doctor", "--json")
    findings = json.loads(out.stdout)
    broken = [f for f in findings if f["check"] == "plugins" and "broken" in f["detail"]]
    assert broken and broken[0]["status"] == "error" and "OXIOS_DISABLED_PLUGINS=broken" in broken[0]["fix"]
    assert out.returncode == 1


async def test_kernel_calls_entry_point_plugin_hooks(site: Path, tmp_path: Path, oxios_home: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(site))
    import importlib

    importlib.invalidate_caches()
    from oxios.config import load
    from oxios.kernel import Kernel

    kernel = Kernel(load(oxios_home / "config.toml"), oxios_home)
    await kernel.start(channels=False)
    try:
        assert (oxios_home / "demo-started").read_text() == "yes"  # async startup hook awaited
        shout = kernel.tools.get("shout")
        assert shout.spec.plugin == "demo" and shout.spec.description == "Say it louder."
        result = await shout.call({"text": "hi"}, kernel.context())
        assert result.content == "HI"
        assert any(f.name == "broken" for f in kernel.plugins.failures)
    finally:
        await kernel.stop()
    sys.modules.pop("oxios_plugin_demo", None)


async def test_resolve_values_callables_and_awaitables() -> None:
    async def coro():
        return 3

    assert await resolve(1) == 1
    assert await resolve(lambda: 2) == 2
    assert await resolve(coro()) == 3
    assert await resolve(lambda: coro()) == 3


def test_plugin_registering_twice_replaces_and_rejects_bad_impl() -> None:
    from oxios_hookspecs import hookimpl

    class Bad:
        @hookimpl
        def check_action(self, action, context, extra):  # takes an argument the spec lacks
            return None

    pm = PluginManager()
    pm.load(builtins=[], entry_points=False)
    pm.register(Bad(), name="bad")
    assert "bad" not in pm.info and "invalid hook implementation" in pm.failures[-1].error
