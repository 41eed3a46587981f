"""The cookiecutter template renders, installs and passes its own tests; and
`oxios plugins install PATH` / `uninstall` work.

Everything runs in one fresh virtualenv layered on this checkout's .venv (a
.pth file adds its site-packages), so nothing is downloaded and nothing is
installed into the .venv itself. pip runs offline (--no-index, no build
isolation).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "cookiecutter-plugin"
HOOK_CHOICES = ("tool", "channel", "provider", "command", "policy")


def _clean_env(venv: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIOS_", "PYTEST_", "PIP_", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        OXIOS_HOME=str(home),
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip's spelling of --no-build-isolation
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


@pytest.fixture(scope="module")
def layered_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A new venv that sees this checkout's installed packages but installs into itself."""
    root = tmp_path_factory.mktemp("cc-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    base = sysconfig.get_paths()["purelib"]
    # addsitedir (not a bare path line) so the .venv's own .pth files (editable installs) run too
    Path(purelib, "zz_oxios_checkout.pth").write_text(f"import site; site.addsitedir({base!r})\n")
    env = _clean_env(venv, root / "oxios-home")
    return venv, env


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def listed_plugins(python: Path, env: dict[str, str]) -> dict[str, object]:
    result = run([str(python), "-m", "oxios", "plugins"], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_template_renders_installs_and_passes_its_tests_for_each_hook(layered_venv, tmp_path):
    from cookiecutter.main import cookiecutter

    venv, env = layered_venv
    python = venv / "bin" / "python"
    projects: dict[str, Path] = {}
    variants = {choice: {f"with_{c}": c == choice for c in HOOK_CHOICES} for choice in HOOK_CHOICES}
    variants["all"] = {f"with_{c}": True for c in HOOK_CHOICES}
    for label, flags in variants.items():
        out = cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"plugin_name": f"cc-{label}", "description": f"Template check: {label}", **flags},
        )
        projects[label] = Path(out)
        assert (Path(out) / ".github" / "workflows" / "ci.yml").is_file()
        assert "${{ matrix.python-version }}" in (Path(out) / ".github" / "workflows" / "ci.yml").read_text()

    # the generated code is lint-clean and formatted under its own ruff settings
    ruff = [sys.executable, "-m", "ruff"]
    for label, project in projects.items():
        for cmd in ([*ruff, "check", "--no-cache", "."], [*ruff, "format", "--check", "--no-cache", "."]):
            linted = run(cmd, env, cwd=project)
            assert linted.returncode == 0, f"{label}: {' '.join(cmd[2:])}\n{linted.stdout}{linted.stderr}"

    install = run([str(python), "-m", "pip", "install", "-q", "--no-deps", *map(str, projects.values())], env)
    assert install.returncode == 0, install.stdout + install.stderr

    for label, project in projects.items():
        result = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], env, cwd=project)
        assert result.returncode == 0, f"{label}:\n{result.stdout}\n{result.stderr}"
        expected = sum(1 for c in HOOK_CHOICES if variants[label][f"with_{c}"])
        assert f"{expected} passed" in result.stdout, result.stdout

    listed = listed_plugins(python, env)
    by_name = {p["name"]: p for p in listed["plugins"]}
    for label in variants:
        assert f"cc-{label}" in by_name, listed
        assert by_name[f"cc-{label}"]["distribution"] == f"oxios-plugin-cc-{label}"
    assert not [f for f in listed["failed"] if str(f["name"]).startswith("cc-")]
    assert by_name["cc-policy"]["hooks"] == ["check_action"]
    assert sorted(by_name["cc-all"]["hooks"]) == sorted(
        ["check_action", "register_channels", "register_commands", "register_providers", "register_tools"]
    )


def test_template_refuses_a_plugin_without_hooks_or_with_a_bad_name(tmp_path):
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.main import cookiecutter

    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path),
                     extra_context={f"with_{c}": False for c in HOOK_CHOICES})  # fmt: skip
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path), extra_context={"plugin_name": "9 Lives!"})
    assert list(tmp_path.iterdir()) == []


def test_plugins_install_and_uninstall_a_local_path(layered_venv, tmp_path):
    venv, env = layered_venv
    python = venv / "bin" / "python"
    project = tmp_path / "oxios-plugin-localdemo"
    (project / "src" / "oxios_plugin_localdemo").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "oxios-plugin-localdemo"\nversion = "0.3.0"\ndependencies = ["oxios-hookspecs>=0.1"]\n\n'
        '[project.entry-points.oxios]\nlocaldemo = "oxios_plugin_localdemo"\n\n'
        '[tool.setuptools.packages.find]\nwhere = ["src"]\n'
    )
    (project / "src" / "oxios_plugin_localdemo" / "__init__.py").write_text(
        "from oxios_hookspecs import hookimpl\n\n\n@hookimpl\ndef startup(kernel):\n    pass\n"
    )
    installed = run([str(python), "-m", "oxios", "plugins", "install", str(project)], env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "restart" in installed.stdout
    row = {p["name"]: p for p in listed_plugins(python, env)["plugins"]}["localdemo"]
    assert (row["distribution"], row["version"], row["hooks"]) == ("oxios-plugin-localdemo", "0.3.0", ["startup"])

    removed = run([str(python), "-m", "oxios", "plugins", "uninstall", "localdemo"], env)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "localdemo" not in {p["name"] for p in listed_plugins(python, env)["plugins"]}

    missing = run([str(python), "-m", "oxios", "plugins", "install", str(tmp_path / "no-such-plugin")], env)
    assert missing.returncode != 0 and "pip failed" in missing.stderr
