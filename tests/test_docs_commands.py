"""Guard: every `oxios ...` command line in the docs names a real command.

Scans README.md and docs/**/*.md for ```sh / ```bash / ```shell / ```console
blocks and unlabelled ``` blocks, takes each command whose program is `oxios`
(also `.venv/bin/oxios`, after `$ `, env assignments, `sudo`/`exec`/`env`, after
`|`, `&&`, `;`, inside `$(...)`; `# comments` dropped; a synopsis's `[--opt X]`
brackets are read as the option), and walks the real typer/click tree from
`oxios.cli.build_app()`:

- each subcommand in the chain must exist (`oxios confg show` fails);
- each option (`--json`, `-n`) must exist on the command it follows, unless
  that command ignores unknown options;
- a plain command (not a group) must not be given more arguments than it takes.

Nothing runs: the click parser only parses. In a block that shows a session
(`$ oxios status` followed by output), only the `$ ` lines are commands.
Known-bad lines in pages other helpers still own are listed in KNOWN_BAD with
a reason; an entry that no longer matches a bad line fails too, so the list
cannot go stale.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
# "" = an unlabelled block: command examples often sit in one, so they are checked too
SHELL_LANGS = {"sh", "bash", "shell", "console", "shell-session", "zsh", ""}
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
WRAPPERS = {"sudo", "exec", "env", "nohup", "time", "command"}

# (doc path relative to the repo, exact command text as extracted) -> why it is allowed to be wrong for now.
KNOWN_BAD: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class DocCommand:
    path: str
    line: int
    text: str  # the command as extracted: starts with "oxios"
    argv: tuple[str, ...]  # arguments after "oxios"

    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def shell_blocks(text: str) -> list[list[tuple[int, str]]]:
    """The (line number, line) lists of every shell code block."""
    blocks: list[list[tuple[int, str]]] = []
    body: list[tuple[int, str]] = []
    fence = ""  # the open fence ("" = outside any block)
    is_shell = False
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if not fence:
            if match:
                fence, is_shell, body = match.group(1), match.group(2).lower() in SHELL_LANGS, []
            continue
        if match and line.strip() == line.strip()[0] * len(line.strip()) and len(line.strip()) >= len(fence):
            if is_shell:
                blocks.append(body)
            fence = ""
            continue
        body.append((number, line))
    return blocks


def logical_lines(block: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash continuations; when the block shows prompts (`$ `), keep only prompt lines."""
    prompted = any(line.lstrip().startswith("$ ") for _, line in block)
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in block:
        line = raw.rstrip()
        if pending is None:
            stripped = line.lstrip()
            if prompted:
                if not stripped.startswith("$ "):
                    continue
                stripped = stripped[2:]
            pending = (number, stripped)
        else:
            pending = (pending[0], pending[1] + " " + line.strip())
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1])
            continue
        out.append(pending)
        pending = None
    if pending is not None:
        out.append(pending)
    return out


def split_commands(line: str) -> list[list[str]] | None:
    """Shell words of each simple command on the line (comments dropped); None if it does not parse."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:
        return None
    commands: list[list[str]] = [[]]
    for word in words:
        if set(word) <= set(";&|<>()"):
            if word[0] in "<>" and commands[-1] and commands[-1][-1].isdigit():
                commands[-1].pop()  # the "2" of "2>/dev/null" is a file descriptor, not an argument
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def synopsis_words(words: list[str]) -> list[str]:
    """Read a synopsis like `oxios agent list [--status S] [--json]` as the options it shows."""
    out = []
    for word in words:
        word = word.lstrip("[").removesuffix("...").rstrip("]")
        if word:
            out.append(word)
    return out


def oxios_argv(words: list[str]) -> tuple[str, ...] | None:
    """The arguments after `oxios` when this simple command runs oxios, else None."""
    i = 0
    while i < len(words) and (ENV_ASSIGNMENT.match(words[i]) or words[i] in WRAPPERS):
        i += 1
    if i < len(words) and (words[i] == "oxios" or words[i].endswith("/oxios")):
        return tuple(words[i + 1 :])
    return None


def commands_in(path: Path, root_dir: Path = ROOT) -> list[DocCommand]:
    rel = path.relative_to(root_dir).as_posix()
    found: list[DocCommand] = []
    for block in shell_blocks(path.read_text(encoding="utf-8")):
        for number, line in logical_lines(block):
            commands = split_commands(line)
            if commands is None:
                if re.search(r"(^|[\s/])oxios(\s|$)", line):
                    found.append(DocCommand(rel, number, line.strip(), ("<unparseable shell line>",)))
                continue
            for words in commands:
                argv = oxios_argv(synopsis_words(words))
                if argv is not None:
                    found.append(DocCommand(rel, number, shlex.join(["oxios", *argv]), argv))
    return found


def all_doc_commands() -> list[DocCommand]:
    return [cmd for path in doc_files() for cmd in commands_in(path)]


# --- the command tree ---------------------------------------------------------------------------


def root_command() -> Any:
    from oxios.cli import build_app

    return typer.main.get_command(build_app())


def _check_options(cmd: Any, name: str, args: list[str], parent: Any) -> None:
    """Run only click's option parser (no callbacks, no type conversion): unknown options raise."""
    ctx = cmd.context_class(cmd, info_name=name, parent=parent, **cmd.context_settings)
    cmd.make_parser(ctx).parse_args(args=list(args))


def problem(root: Any, argv: tuple[str, ...]) -> str | None:
    """Why `oxios ARGV` is not a real command line, or None when it is."""
    try:
        from typer._click.exceptions import UsageError  # typer vendors click since 0.2x
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click.exceptions import UsageError

    if argv == ("<unparseable shell line>",):
        return "the shell line does not parse (unbalanced quotes?)"
    args = list(argv)
    try:
        _check_options(root, "oxios", args, None)
        # resilient_parsing: parse and resolve without callbacks, prompts or type checks of values
        ctx = root.make_context("oxios", args, resilient_parsing=True)
        cmd = root
        while hasattr(cmd, "commands"):
            rest = [*ctx._protected_args, *ctx.args]
            if not rest:
                return None
            name, sub, sub_args = cmd.resolve_command(ctx, rest)
            if sub is None:
                close = difflib.get_close_matches(rest[0], list(cmd.commands), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"it has: {', '.join(sorted(cmd.commands))}"
                return f"`{ctx.command_path}` has no command {rest[0]!r} ({hint})"
            _check_options(sub, name, sub_args, ctx)
            ctx = sub.make_context(name, sub_args, parent=ctx, resilient_parsing=True)
            cmd = sub
        if ctx.args and not ctx.allow_extra_args:
            return f"`{ctx.command_path}` takes no more arguments, got {ctx.args!r}"
    except UsageError as err:
        return f"{err.format_message()} (on `{getattr(err.ctx, 'command_path', 'oxios')}`)"
    return None


# --- tests ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root() -> Any:
    return root_command()


def test_docs_contain_commands_to_check():
    commands = all_doc_commands()
    files = {c.path for c in commands}
    assert "README.md" in files and "docs/user-guide.md" in files
    assert len(commands) > 50


def failures(commands: list[DocCommand], root: Any, known_bad: dict[tuple[str, str], str]) -> tuple[list[str], list]:
    """Messages ("FILE:LINE: command -> why") for bad commands, and KNOWN_BAD keys that matched nothing."""
    bad: list[str] = []
    stale = set(known_bad)
    for cmd in commands:
        why = problem(root, cmd.argv)
        key = (cmd.path, cmd.text)
        if why is None:
            continue
        if key in known_bad:
            stale.discard(key)
            continue
        bad.append(f"{cmd.where()}\n    -> {why}")
    return bad, sorted(stale)


def test_every_documented_command_exists(root: Any):
    bad, stale = failures(all_doc_commands(), root, KNOWN_BAD)
    assert not bad, "documented commands that do not exist:\n" + "\n".join(bad)
    assert not stale, f"KNOWN_BAD entries that are fixed or gone (remove them): {stale}"


SYNTHETIC_DOC = """\
# A page

```sh
export OXIOS_HOME=$(mktemp -d)
oxios config show --json          # fine
.venv/bin/oxios confg show
OXIOS__GATEWAY__PORT=4301 oxios --port 4301 config get gateway.port
oxios status 2>/dev/null && oxios config show --jsn
oxios skills list
oxios auth token create ci \\
    --role admin --nope
PORT=$(oxios config gett gateway.port)
oxios agent list [--status running] [--jsn]
```

```python
oxios confg show   # not shell: ignored
```

```
oxios memory serch deploy
```

```console
$ oxios --version
oxios 0.1.0
$ oxios cron lst
```
"""

# (line, command) -> None when it is fine, else a piece of the reason
SYNTHETIC_VERDICTS = {
    (5, "oxios config show --json"): None,
    (6, "oxios confg show"): "`oxios` has no command 'confg' (did you mean 'config'?)",
    (7, "oxios --port 4301 config get gateway.port"): None,
    (8, "oxios status"): None,
    (8, "oxios config show --jsn"): "No such option: --jsn",
    (9, "oxios skills list"): "`oxios skills` takes no more arguments, got ['list']",
    (10, "oxios auth token create ci --role admin --nope"): "No such option: --nope",
    (12, "oxios config gett gateway.port"): "has no command 'gett'",
    (13, "oxios agent list --status running --jsn"): "No such option: --jsn",
    (21, "oxios memory serch deploy"): "has no command 'serch'",
    (25, "oxios --version"): None,
    (27, "oxios cron lst"): "has no command 'lst'",
}


def test_the_guard_catches_typos(tmp_path: Path, root: Any):
    doc = tmp_path / "docs" / "page.md"
    doc.parent.mkdir()
    doc.write_text(SYNTHETIC_DOC, encoding="utf-8")
    found = commands_in(doc, tmp_path)
    assert sorted((c.line, c.text) for c in found) == sorted(SYNTHETIC_VERDICTS)
    for cmd in found:
        expected, why = SYNTHETIC_VERDICTS[(cmd.line, cmd.text)], problem(root, cmd.argv)
        if expected is None:
            assert why is None, f"{cmd.where()}: {why}"
        else:
            assert why is not None and expected in why, f"{cmd.where()}: {why!r} lacks {expected!r}"
    # the report names the file and line; an allowlisted line passes; a stale allowlist entry is reported
    allow = {("docs/page.md", "oxios confg show"): "typo kept on purpose", ("docs/page.md", "oxios gone"): "fixed"}
    bad, stale = failures(found, root, allow)
    assert len(bad) == 7 and "docs/page.md:27: oxios cron lst\n    -> " in bad[-1]
    assert not any("confg" in line for line in bad)
    assert stale == [("docs/page.md", "oxios gone")]


def test_skill_shorthand_and_catch_all_rules(root: Any):
    # `oxios skill NAME` is `oxios skill show NAME` (the group rewrites its arguments)
    assert problem(root, ("skill", "code-review")) is None
    assert problem(root, ("skill", "show", "code-review", "--json")) is None
    assert problem(root, ("--set", "scheduler.max_concurrent=3", "status")) is None
    assert "requires an argument" in (problem(root, ("--set",)) or "")
    assert "has no command" in (problem(root, ("auth", "tokn", "create")) or "")
    # a catch-all command (ignore_unknown_options) takes any option after its arguments
    assert problem(root, ("policy", "explain", "exec", "git", "push", "--force")) is None
    assert problem(root, ("policy", "explain", "--json", "exec", "--", "git", "push")) is None


# --- the user guide's config tables equal oxios/config.py ---------------------------------------

# "#### `[kernel]`: ..." headings, and "`[security.roles.NAME]`:" lines that introduce a sub-table
TABLE_NAME = re.compile(r"^(?:#### `\[([\w.]+)\]`|`\[([\w.]+)\]`.*:$)")
TABLE_ROW = re.compile(r"^\| `(\w+)` \| (.+?) \| (.+) \|$")


def documented_config_tables(text: str) -> dict[str, dict[str, str]]:
    """{"kernel": {"workspace": '`"~/.oxios/workspace"`', ...}, "security.roles.NAME": {...}}."""
    tables: dict[str, dict[str, str]] = {}
    current = ""
    for line in text.splitlines():
        match = TABLE_NAME.match(line)
        if match:
            names = re.findall(r"`\[([\w.]+)\]`", line) if line.startswith("#") else [match.group(2)]
            current = names[0]
            for name in names:
                tables.setdefault(name, {})
            continue
        row = TABLE_ROW.match(line)
        if row and current:
            tables[current][row.group(1)] = row.group(2)
        elif line.startswith("#"):
            current = ""
    return tables


def expected_config_tables() -> dict[str, dict[str, str]]:
    import json

    import msgspec

    from oxios import config

    def rows(struct: type) -> dict[str, str]:
        out = {}
        for field in msgspec.structs.fields(struct):
            if field.default is not msgspec.NODEFAULT:
                value = field.default
            elif field.default_factory is not msgspec.NODEFAULT:
                value = field.default_factory()
            else:
                out[field.name] = "required"
                continue
            out[field.name] = f"`{json.dumps(msgspec.to_builtins(value))}`"
        return out

    tables: dict[str, dict[str, str]] = {}
    for field in msgspec.structs.fields(config.Config):
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            tables[field.name] = rows(field.type)
    tables["security.roles.NAME"] = rows(config.RoleConfig)
    tables["cron.jobs.NAME"] = rows(config.CronJobConfig)
    tables["mcp.servers.NAME"] = rows(config.McpServerConfig)
    tables["providers.NAME"] = rows(config.ProviderConfig)
    return tables


def test_user_guide_config_tables_match_the_code():
    """Every section and key of oxios/config.py is in docs/user-guide.md with its exact default."""
    from oxios import config

    text = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    documented = documented_config_tables(text)
    expected = expected_config_tables()
    for name, rows in expected.items():
        assert name in documented, f"docs/user-guide.md: add a table for [{name}] (see oxios/config.py)"
        assert documented[name] == rows, (
            f"docs/user-guide.md: the [{name}] table differs from oxios/config.py "
            f"(missing: {sorted(set(rows) - set(documented[name]))}, "
            f"extra: {sorted(set(documented[name]) - set(rows))}, "
            f"wrong defaults: {sorted(k for k in rows if k in documented[name] and rows[k] != documented[name][k])})"
        )
    # free-form plugin tables are named too, so every top-level section has its place
    for section in msgspec_fields(config.Config):
        assert section in documented or f"{section}.NAME" in documented, f"docs/user-guide.md: [{section}] missing"
    assert set(documented) - set(expected) <= {"channels.NAME", "plugins.NAME"}, "tables for sections that do not exist"


def msgspec_fields(struct: type) -> list[str]:
    import msgspec

    return [f.name for f in msgspec.structs.fields(struct)]


def test_config_table_guard_notices_a_wrong_default():
    text = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    broken = text.replace("| `port` | `4200` |", "| `port` | `4300` |", 1)
    assert broken != text
    assert documented_config_tables(broken)["gateway"]["port"] != expected_config_tables()["gateway"]["port"]


# --- links: the index lists every page; links in README, the index and the guide resolve ----------

LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # "# comments" in code blocks are not headings
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", ["README.md", "docs/README.md", "docs/user-guide.md"])
def test_links_resolve(page: str):
    path = ROOT / page
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors_of(dest):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page}: broken links: {broken}"


def test_the_docs_index_lists_every_page():
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    linked = {(ROOT / "docs" / t).resolve() for t in LINK.findall(index) if not re.match(r"^[a-z]+:", t)}
    pages = {p.resolve() for p in (ROOT / "docs").rglob("*.md") if p.name != "README.md"}
    missing = sorted(str(p.relative_to(ROOT / "docs")) for p in pages - linked)
    assert not missing, f"docs/README.md: add a line for {missing}"
