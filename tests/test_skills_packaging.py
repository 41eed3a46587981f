"""The bundled skills ship in the oxios wheel and are found from an installed (non-editable) copy.

The wheel is built offline from a copy of the project (pyproject.toml, README.md,
oxios/) with this .venv's setuptools and no build isolation, so nothing is
downloaded and the checkout gets no build/ folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from oxios.builtin.skills import bundled_dir

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BUNDLED = ("code-review", "debug", "refactor")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oxios-wheel")
    project = root / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(REPO / "oxios", project / "oxios", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "OXIOS_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(root / "dist"), str(project)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = (root / "dist").glob("oxios-*.whl")
    return found


def test_the_wheel_carries_every_file_of_the_bundled_skills(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    source = bundled_dir()
    expected = {f"oxios/skills/bundled/{p.relative_to(source).as_posix()}" for p in source.rglob("*") if p.is_file()}
    assert {f"oxios/skills/bundled/{name}/SKILL.md" for name in BUNDLED} <= expected
    assert "oxios/skills/bundled/code-review/references/security-checklist.md" in expected
    assert expected <= names, sorted(expected - names)
    with zipfile.ZipFile(wheel) as whl:
        for name in BUNDLED:
            assert whl.read(f"oxios/skills/bundled/{name}/SKILL.md") == (source / name / "SKILL.md").read_bytes()


DISCOVER = """
import json, sys
from pathlib import Path

import oxios
from oxios.config import Config
from oxios.plugins import PluginManager
from oxios.skills import SkillsService
from oxios.state import StateStore

tmp = Path(sys.argv[1])
home = tmp / "home"
(home / "workspace").mkdir(parents=True)
pm = PluginManager()
pm.load(builtins=["oxios.builtin.skills"], entry_points=False)
svc = SkillsService(config=Config(), home=home, workspace=home / "workspace", state=StateStore(home / "state.db"),
                    plugins=pm, environ={"PATH": "", "HOME": str(tmp)}, user_home=tmp)
rows = {r["name"]: {"source": r["source"], "folder": r["folder"]} for r in svc.list()}
print(json.dumps({"oxios": oxios.__file__, "skills": rows, "body": svc.load("debug")}))
"""


def test_an_installed_wheel_finds_its_bundled_skills(wheel: Path, tmp_path: Path) -> None:
    """Unpacked like pip installs a pure-Python wheel, first on sys.path, so this
    checkout's editable install (a meta-path finder after it) is not used."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS_")}
    env["PYTHONPATH"] = str(site)
    result = subprocess.run(
        [sys.executable, "-c", DISCOVER, str(tmp_path / "run")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert Path(out["oxios"]).is_relative_to(site), out["oxios"]
    for name in BUNDLED:
        assert out["skills"][name]["source"] == "bundled"
        assert Path(out["skills"][name]["folder"]) == site / "oxios" / "skills" / "bundled" / name
    assert "# Debug" in out["body"]
