"""Guards that keep the hook reference honest (datasette's two tests):
every hook is documented with its exact signature, and every hook has a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from oxios_hookspecs import PROJECT, SPEC_MODULES

ROOT = Path(__file__).resolve().parents[1]
HOOKS_DOC = ROOT / "docs" / "hooks.md"


def all_hooks() -> dict[str, object]:
    hooks = {}
    for module in SPEC_MODULES:
        for name, fn in vars(module).items():
            if callable(fn) and hasattr(fn, f"{PROJECT}_spec"):
                hooks[name] = fn
    return hooks


HOOKS = all_hooks()


def test_there_are_hooks_to_check():
    assert {"register_tools", "check_action", "register_skills", "on_event"} <= set(HOOKS)


def plain_signature(name: str, fn: object) -> str:
    """``register_tools(register, kernel)``: the heading form."""
    return f"{name}({', '.join(inspect.signature(fn).parameters)})"


def typed_signature(name: str, fn: object) -> str:
    """``def register_tools(register: Callable[..., None], kernel: Any) -> None``."""
    # annotations are strings (from __future__ import annotations); show them unquoted
    return f"def {name}{inspect.signature(fn)}".replace("'", "")


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_documented_with_its_exact_signature(name: str):
    doc = HOOKS_DOC.read_text(encoding="utf-8")
    fn = HOOKS[name]
    headings = re.findall(r"^#{2,4} (.+)$", doc, flags=re.M)
    assert plain_signature(name, fn) in headings, f"docs/hooks.md needs a heading '### {plain_signature(name, fn)}'"
    assert typed_signature(name, fn) in doc, f"docs/hooks.md must show `{typed_signature(name, fn)}`"


def test_every_documented_hook_exists():
    doc = HOOKS_DOC.read_text(encoding="utf-8")
    documented = re.findall(r"^### (\w+)\(", doc, flags=re.M)
    assert sorted(documented) == sorted(HOOKS), "docs/hooks.md documents hooks that do not exist, or twice"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_test(name: str):
    pattern = re.compile(rf"def test_hook_{name}\b")
    for path in (ROOT / "tests").rglob("test_*.py"):
        if pattern.search(path.read_text(encoding="utf-8")):
            return
    pytest.fail(f"hook {name} has no test: add `test_hook_{name}` under tests/ (see tests/test_hooks.py)")


@pytest.mark.parametrize("page", ["hooks.md", "plugin-authors.md", "skill-authors.md"])
def test_author_docs_exist_and_link_only_to_existing_pages(page: str):
    path = ROOT / "docs" / page
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
        assert (path.parent / target).is_file(), f"{page} links to missing {target}"
