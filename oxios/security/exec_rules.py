"""Exec rules: which host commands an agent may run, and how.

Structured mode (the default) takes a binary plus arguments, never a shell:
the binary is a bare name on ``exec.allowed_commands`` resolved on PATH, and
no argument may carry shell metacharacters. Options that make an allowed
binary run *another* program (``git -c core.sshCommand=``, ``find -exec``,
``tar --to-command``) are refused, because they walk around the allowlist.

Shell mode parses the command with bashlex and applies the same allowlist to
every simple command in pipelines, lists, subshells and substitutions.
Dangerous but legitimate commands (``git push --force``, ``rm -rf ~``) are
never auto-allowed: they always ask a human.

An interpreter on the allowlist (``python3``, ``node``, ``perl`` ...) runs
whatever code it is given, which no argument rule can judge: every
invocation that runs code (inline ``-c``/``-e``, ``-m``, a script file, code
on standard input) asks, and only ``--version``/``--help`` style calls are
allowed on their own. Hard links are judged by their source: the path
sandbox cannot tell where a hard link's other names are.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# Characters that mean something to a shell; none may appear in a structured argument.
FORBIDDEN_CHARS = frozenset("|&;$`<>(){}\n\r\x00")
# Control characters, and the invisible ones that reorder or hide text (bidi overrides and isolates,
# zero-width marks): in an approval prompt they would show a human other code than what runs.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_BARE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")

# Programs whose purpose is to run other programs or arbitrary code. An allowlist
# entry for one of them would allow everything, so approvals never grant them
# with wildcards and structured exec refuses the wrappers outright.
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "fish", "csh", "tcsh", "busybox", "ash"})
INTERPRETERS = frozenset(
    {
        "python",
        "python2",
        "python3",
        "perl",
        "ruby",
        "node",
        "nodejs",
        "deno",
        "bun",
        "php",
        "lua",
        "luajit",
        "tclsh",
        "awk",
        "gawk",
        "mawk",
        "nawk",
        "osascript",
        "pwsh",
        "powershell",
        "Rscript",
        "julia",
        "irb",
        "jshell",
        "pypy",
        "pypy3",
        "ts-node",
        "tsx",
        "R",
        "wish",
        "guile",
        "racket",
        "elixir",
        "erl",
        "escript",
        "groovy",
        "scala",
        "runghc",
        "runhaskell",
        "ghci",
        "ocaml",
    }
)
WRAPPERS = frozenset(
    {
        "env",
        "sudo",
        "su",
        "doas",
        "pkexec",
        "nohup",
        "timeout",
        "nice",
        "ionice",
        "xargs",
        "exec",
        "command",
        "builtin",
        "stdbuf",
        "chroot",
        "setsid",
        "strace",
        "ltrace",
        "gdb",
        "watch",
        "flock",
        "parallel",
        "script",
        "unshare",
        "taskset",
        "chrt",
        "runuser",
        "systemd-run",
        "eval",
        "source",
        ".",
        "time",
        "nsenter",
        "firejail",
        "fakeroot",
    }
)
CODE_RUNNERS = SHELLS | INTERPRETERS | WRAPPERS
# An agent running Oxios's CLI could approve its own approvals, grant itself commands or mint tokens.
OPERATOR_CLIS = frozenset({"oxios"})
# Arguments that only print a version or help text and exit, per interpreter family;
# anything else an interpreter is given may be code.
_INFO_ONLY = frozenset({"--version", "--help"})
_INFO_ONLY_BY_FAMILY: dict[str, frozenset[str]] = {
    "python": frozenset({"-V", "-VV", "-h", "--help-all", "--help-env", "--help-xoptions"}),
    "node": frozenset({"-v", "-h"}),
    "deno": frozenset({"-V", "-h"}),
    "bun": frozenset({"-v", "-h"}),
    "perl": frozenset({"-v", "-V", "-h"}),
    "ruby": frozenset({"-v", "-h"}),
    "php": frozenset({"-v", "-h"}),
    "lua": frozenset({"-v"}),
    "luajit": frozenset({"-v"}),
}
# Options that run code given on the command line, per family (a short letter also counts
# inside a cluster such as ``-Ic`` or ``-le``); other families use _INLINE_DEFAULT.
_INLINE_BY_FAMILY: dict[str, tuple[str, ...]] = {
    "python": ("-c",),
    "node": ("-e", "--eval", "-p", "--print"),
    "bun": ("-e", "--eval", "-p", "--print"),
    "deno": ("eval",),
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "php": ("-r",),
    "lua": ("-e",),
    "luajit": ("-e",),
    "shell": ("-c",),
}
_INLINE_DEFAULT = ("-c", "-e", "-E", "--eval", "--exec", "-r", "--command")
# Options whose value follows as the next argument (so it is not mistaken for a script).
_VALUE_OPTIONS = frozenset({"-W", "-X", "-r", "--require", "--import", "-o"})
_VERSIONED = re.compile(r"^([A-Za-z][A-Za-z_-]*?)[0-9][0-9.]*$")

# Environment names that change what a program loads or runs; never passed through.
_DANGEROUS_ENV = re.compile(
    r"^(LD_.*|DYLD_.*|BASH_ENV|ENV|BASH_FUNC_.*|SHELLOPTS|BASHOPTS|PS4|PROMPT_COMMAND|IFS|CDPATH|GLOBIGNORE|"
    r"PYTHON(STARTUP|PATH|HOME|INSPECT|USERBASE)|PERL5OPT|PERL5LIB|PERLLIB|RUBYOPT|RUBYLIB|NODE_OPTIONS|NODE_PATH|"
    r"GIT_(SSH|SSH_COMMAND|EXEC_PATH|CONFIG.*|PROXY_COMMAND|ASKPASS|EXTERNAL_DIFF|PAGER|EDITOR|DIR|WORK_TREE|TEMPLATE_DIR)|"
    r"SSH_ASKPASS|EDITOR|VISUAL|PAGER|MANPAGER|LESSOPEN|LESSCLOSE|TMPDIR|http_proxy|https_proxy|HTTP_PROXY|HTTPS_PROXY|"
    r"ALL_PROXY|all_proxy|NO_PROXY|no_proxy)$"
)
BASE_ENV = ("HOME", "USER", "LANG", "PATH")


@dataclass(frozen=True)
class ExecVerdict:
    """One exec rule's answer: ``allow``, ``ask`` or ``deny`` with a human reason."""

    verdict: str
    reason: str

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


def _deny(reason: str) -> ExecVerdict:
    return ExecVerdict("deny", reason)


# -- helpers for the exec tool --------------------------------------------------------


def scrub_env(passthrough: list[str] | tuple[str, ...] = (), source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a command gets: HOME, USER, LANG, PATH, TERM=dumb and configured names.

    Names that change what a program loads (LD_PRELOAD, GIT_SSH_COMMAND,
    PYTHONPATH ...) are dropped even when configured.
    """
    src = os.environ if source is None else source
    env = {name: src[name] for name in BASE_ENV if name in src}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    for name in passthrough:
        if name in src and not _DANGEROUS_ENV.match(name) and name not in ("TERM",):
            env[name] = src[name]
    env["TERM"] = "dumb"
    # Hooks are code an unpacked archive (`tar -x`, `unzip`) can drop into .git/hooks; the agent's
    # next `git commit` would run them. Git run for an agent runs none (git >= 2.31 reads these).
    env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="core.hooksPath", GIT_CONFIG_VALUE_0=os.devnull)
    return env


def clamp_timeout(requested: float | None, config: Any) -> float:
    """A timeout between 1 s and the configured ceiling; none or <= 0 means the default."""
    ceiling = min(config.exec.max_timeout_secs, config.security.max_execution_time_secs or config.exec.max_timeout_secs)
    if requested is None or requested <= 0:
        requested = config.exec.default_timeout_secs
    return float(max(1.0, min(float(requested), float(ceiling))))


def resolve_binary(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Where a bare binary name lives on PATH (the scrubbed PATH by default)."""
    if not _BARE_NAME.match(name):
        return None
    path = (env or scrub_env()).get("PATH", os.defpath)
    return shutil.which(name, path=path)


def bad_char(arg: str) -> str | None:
    """The first forbidden character in an argument, described; None when clean."""
    for ch in arg:
        if ch in FORBIDDEN_CHARS or _CONTROL.match(ch):
            return repr(ch)
    return None


def _bad_code_char(arg: str) -> str | None:
    """Like :func:`bad_char` for interpreter code: only control characters (newline is fine)."""
    for ch in arg:
        if ch != "\n" and _CONTROL.match(ch):
            return repr(ch)
    return None


# -- per-binary option rules -------------------------------------------------------------

# Global options (before the subcommand) that load configuration or code from elsewhere.
_GIT_GLOBAL_DENIED = (
    "--config-env",
    "--exec-path",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--super-prefix",
    "--list-cmds",
)
# Subcommand options that name a program to run or a file to write.
_GIT_SUB_DENIED = (
    "--upload-pack",
    "--receive-pack",
    "--exec",
    "--template",
    "--ext-diff",
    "--output",
    "--open-files-in-pager",
    "--textconv",
    "--extcmd",
    "--config",
)
# Subcommands whose purpose includes running arbitrary commands.
_GIT_SUB_RUNS = {
    "bisect": "run",
    "submodule": "foreach",
    "filter-branch": "",
    "instaweb": "",
    "daemon": "",
    "difftool": "",
    "mergetool": "",
    "send-email": "",
    "credential": "",
    "upload-pack": "",
    "receive-pack": "",
    "shell": "",
    "remote-ext": "",
    "remote-fd": "",
}
_GIT_CONFIG_DANGER = re.compile(
    r"^(core\.(sshcommand|pager|editor|fsmonitor|hookspath|gitproxy|askpass|worktree|attributesfile)|"
    r"sequence\.editor|diff\..*\.(textconv|command)|diff\.external|filter\..*|alias\..*|credential\..*|"
    r"protocol\..*|url\..*|include\..*|includeif\..*|gpg\..*program|uploadpack\..*|receive\..*|http\..*proxy)$",
    re.IGNORECASE,
)
_FIND_DENIED = {"-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls"}
_TAR_DENIED = (
    "--to-command",
    "--checkpoint-action",
    "--use-compress-program",
    "--rsh-command",
    "--info-script",
    "--new-volume-script",
    "-I",
    "-F",
)
_RSYNC_DENIED = ("-e", "--rsh", "--rsync-path")
_SED_SUBST = re.compile(r"s([^\w\s\\])(?:(?!\1)[^\\]|\\.)*\1(?:(?!\1)[^\\]|\\.)*\1([A-Za-z0-9]*)")
_SED_COMMAND = re.compile(r"(^|[;\n{}])\s*[0-9,$/!]*\s*[ewWrR](\s|$)")
_SSH_DENIED = re.compile(r"(?i)(proxycommand|localcommand|permitlocalcommand|proxyjump|knownhostscommand)")


def _opt_matches(arg: str, names: tuple[str, ...] | set[str]) -> str | None:
    for name in names:
        if arg == name or (name.startswith("--") and arg.startswith(name + "=")):
            return name
        if len(name) == 2 and name.startswith("-") and arg.startswith(name) and not arg.startswith("--"):
            return name
    return None


def _git_rules(args: list[str]) -> ExecVerdict | None:
    sub_idx = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith(("ext::", "fd::")) or ("::" in arg.split("/", 1)[0] and not arg.startswith("-")):
            return _deny("git remote helpers (ext::, fd::) run arbitrary commands")
        if sub_idx is None:
            if arg == "-c" or (arg.startswith("-c") and not arg.startswith("--")):
                return _deny("git -c sets configuration that can run programs (core.sshCommand, core.pager ...)")
            hit = _opt_matches(arg, _GIT_GLOBAL_DENIED) or _opt_matches(arg, _GIT_SUB_DENIED)
            if hit:
                return _deny(f"git {hit} loads configuration or programs from outside the workspace")
            if not arg.startswith("-"):
                sub_idx = i
            elif arg == "-C":
                i += 1  # its value is a directory, checked by the path rules
        else:
            hit = _opt_matches(arg, _GIT_SUB_DENIED)
            if hit:
                return _deny(f"git {args[sub_idx]} {hit} runs another program or writes outside git's control")
        i += 1
    if sub_idx is None:
        return None
    sub, rest = args[sub_idx], args[sub_idx + 1 :]
    if sub in _GIT_SUB_RUNS and (not _GIT_SUB_RUNS[sub] or _GIT_SUB_RUNS[sub] in rest):
        return _deny(f"git {sub} {_GIT_SUB_RUNS[sub]} runs arbitrary commands".replace("  ", " "))
    if sub in ("clone", "submodule") and any(a == "-c" or (a.startswith("-c") and not a.startswith("--")) for a in rest):
        return _deny(f"git {sub} -c sets configuration that can run programs")
    if sub == "rebase" and any(a == "-x" or (a.startswith("-x") and not a.startswith("--")) for a in rest):
        return _deny("git rebase -x runs a shell command after each commit")
    if sub in ("clone", "fetch", "pull", "ls-remote", "archive", "submodule") and any(
        a == "-u" or (a.startswith("-u") and not a.startswith("--")) for a in rest
    ):
        return _deny(f"git {sub} -u names a program to run on the remote side")
    if sub == "config":
        if any(_GIT_CONFIG_DANGER.match(a) for a in rest if not a.startswith("-")):
            return _deny("git config of a key that runs programs (core.sshCommand, alias.*, filter.* ...)")
        if not any(a in ("--get", "--get-all", "--list", "-l", "--get-regexp", "--show-origin") for a in rest):
            return ExecVerdict("ask", "git config changes repository settings")
    if sub == "push" and any(
        a in ("--force", "-f", "--force-with-lease", "--mirror", "--delete", "-d")
        or a.startswith("--force")
        or (a.startswith("+") and len(a) > 1)
        for a in rest
    ):
        return ExecVerdict("ask", "git push --force rewrites remote history")
    if sub in ("reset", "clean") and any(a in ("--hard", "-f", "-fd", "-fdx", "-xdf", "--force") for a in rest):
        return ExecVerdict("ask", f"git {sub} destroys uncommitted work")
    return None


def _option_rules(binary: str, args: list[str]) -> ExecVerdict | None:
    """Options that turn an allowed binary into a way to run anything."""
    if binary in WRAPPERS:
        return _deny(f"{binary} runs another program; allowlist that program instead")
    if binary in OPERATOR_CLIS:
        return _deny(f"{binary} is the operator's own CLI (approvals, grants, tokens, config); agents act through tools")
    if interpreter_name(binary) in SHELLS:
        return _deny(f"{binary} is a shell; structured exec never runs one (shell mode is separate)")
    if binary == "git":
        return _git_rules(args)
    if binary == "find":
        for arg in args:
            if arg in _FIND_DENIED:
                return _deny(f"find {arg} runs commands or writes files")
        if "-delete" in args:
            return ExecVerdict("ask", "find -delete removes files")
    if binary in ("tar", "bsdtar"):
        for arg in args:
            hit = _opt_matches(arg, _TAR_DENIED)
            if hit:
                return _deny(f"tar {hit} runs another program")
    if binary == "rsync":
        for arg in args:
            hit = _opt_matches(arg, _RSYNC_DENIED)
            if hit:
                return _deny(f"rsync {hit} runs another program")
    if binary in ("ssh", "scp", "sftp"):
        if any(_SSH_DENIED.search(a) for a in args) or "-F" in args:
            return _deny(f"{binary} options that run local commands are not allowed")
    if binary in ("rg", "ripgrep") and any(a == "--pre" or a.startswith("--pre=") for a in args):
        return _deny("rg --pre runs a program on every file")
    if binary in ("zip",) and any(a in ("-T", "-TT", "--unzip-command") or a.startswith("-TT") for a in args):
        return _deny("zip -TT runs another program")
    if binary in ("sed", "gsed"):
        for arg in args:
            if _SED_COMMAND.search(arg) or any(set(m.group(2)) & {"e", "w", "W"} for m in _SED_SUBST.finditer(arg)):
                return _deny("sed's e, w and r commands run a shell or touch other files")
    if binary in ("less", "more", "man", "vi", "vim", "nvim", "emacs", "nano"):
        return _deny(f"{binary} is interactive and can start a shell")
    risk = interpreter_risk(binary, args)
    if risk:
        return ExecVerdict("ask", risk)
    if binary in ("rm", "chmod", "chown", "dd", "mkfs") or binary.startswith("mkfs."):
        danger = dangerous_simple_command([binary, *args])
        if danger:
            return ExecVerdict("ask", danger)
    return None


# -- interpreters and hard links ----------------------------------------------------------


def interpreter_name(binary: str) -> str | None:
    """The shell or interpreter ``binary`` is (``python3.11`` is ``python``), or None."""
    name = os.path.basename(binary)
    if name in SHELLS or name in INTERPRETERS:
        return name
    match = _VERSIONED.match(name)
    if match and (match.group(1) in SHELLS or match.group(1) in INTERPRETERS):
        return match.group(1)
    return None


def _family(name: str) -> str:
    if name.startswith(("python", "pypy")):
        return "python"
    if name == "nodejs":
        return "node"
    return "shell" if name in SHELLS else name


def _inline_flag(family: str, arg: str) -> bool:
    for flag in _INLINE_BY_FAMILY.get(family, _INLINE_DEFAULT):
        if arg == flag or (flag.startswith("--") and arg.startswith(flag + "=")):
            return True
        if len(flag) == 2 and flag[0] == "-" and arg.startswith("-") and not arg.startswith("--") and flag[1] in arg[1:]:
            return True
    return False


def interpreter_risk(binary: str, args: list[str]) -> str | None:
    """Why running the shell or interpreter ``binary`` with ``args`` needs a human, or None.

    None only for a non-interpreter, or when every argument just prints a
    version or help text (``python3 --version``). Everything else runs code
    the exec allowlist cannot see: inline code, a module, a script the agent
    may have written, or code read from standard input.
    """
    name = interpreter_name(binary)
    if name is None:
        return None
    family = _family(name)
    if args and all(a in _INFO_ONLY or a in _INFO_ONLY_BY_FAMILY.get(family, ()) for a in args):
        return None
    what = f"{binary} with no script reads code from standard input"
    skip_value = False
    for i, arg in enumerate(args):
        if skip_value:
            skip_value = False
            continue
        if _inline_flag(family, arg):
            what = f"{binary} {arg.split('=', 1)[0]} runs code given on the command line"
            break
        if family == "python" and arg.startswith("-m") and not arg.startswith("--"):
            module = arg[2:] or (args[i + 1] if i + 1 < len(args) else "")
            what = f"{binary} -m {module} runs a module, and the working folder is on its import path"
            break
        if arg == "--":
            if i + 1 < len(args):
                what = f"{binary} runs {args[i + 1]}"
            break
        if arg == "-":
            break
        if arg.startswith("-"):
            skip_value = arg in _VALUE_OPTIONS
            continue
        if family in ("deno", "bun") and "." not in arg and "/" not in arg:
            what = f"{binary} {arg} runs or installs code"  # a subcommand: run, x, test, install ...
        else:
            what = f"{binary} runs {arg}"
        break
    return f"{what}: an interpreter runs whatever code it is given, which the exec rules cannot judge"


def hard_link_sources(argv: list[str]) -> list[str] | None:
    """The existing files a command would give another name by hard link, or None when it makes none.

    ``ln`` without ``-s``, ``link``, and ``cp -l``/``--link``. A hard link is
    a second name for the same file, so a link inside the workspace to a file
    outside it would carry that file in; symbolic links are resolved by the
    path sandbox instead.
    """
    if not argv:
        return None
    binary, args = os.path.basename(argv[0]), argv[1:]
    if binary == "link":
        return args[:1]
    if binary not in ("ln", "cp"):
        return None
    operands: list[str] = []
    target_dir = False
    links = binary == "ln"
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands.extend(args[i:])
            break
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            if name == "--symbolic" and binary == "ln":
                return None
            if name == "--link" and binary == "cp":
                links = True
            if name == "--target-directory":
                target_dir = True
                i += 0 if "=" in arg else 1
            elif name == "--suffix" and "=" not in arg:
                i += 1
            continue
        if arg.startswith("-") and len(arg) > 1:
            for j, letter in enumerate(arg[1:], start=1):
                if letter == "s" and binary == "ln":
                    return None
                if letter == "l" and binary == "cp":
                    links = True
                if letter in "St":  # -S SUFFIX, -t DIRECTORY (value attached or next)
                    target_dir = target_dir or letter == "t"
                    if j == len(arg) - 1:
                        i += 1
                    break
            continue
        operands.append(arg)
    if not links or not operands:
        return None
    if target_dir or len(operands) == 1:
        return operands
    return operands[:-1]


# -- dangerous patterns (always ask) ------------------------------------------------------

_ROOTISH = {"/", "/*", "~", "~/", "~/*", "$HOME", "${HOME}", "$HOME/", "/.", "/..", "."}
_FORK_BOMB = re.compile(r"(\w+|:)\s*\(\s*\)\s*\{[^}]*\1\s*\|\s*\1\s*&")


def dangerous_simple_command(argv: list[str]) -> str | None:
    """Why one simple command needs a human, or None."""
    if not argv:
        return None
    binary = os.path.basename(argv[0])
    args = argv[1:]
    flags = "".join(a.lstrip("-") for a in args if a.startswith("-") and not a.startswith("--"))
    targets = [a for a in args if not a.startswith("-")]
    if (
        binary == "rm"
        and ("r" in flags.lower() or "--recursive" in args)
        and (
            any(t.rstrip("/") in ("", "~", "$HOME", "${HOME}") or t in _ROOTISH for t in targets) or "--no-preserve-root" in args
        )
    ):
        return "rm -r of / or the home directory"
    if binary in ("sudo", "su", "doas", "pkexec"):
        return f"{binary} runs with root privileges"
    if binary.startswith("mkfs") or binary in ("mkswap", "wipefs", "fdisk", "parted", "sfdisk"):
        return f"{binary} formats a device"
    if binary == "dd" and any(a.startswith("of=/dev/") for a in args):
        return "dd writes to a device"
    if (
        binary in ("chmod", "chown")
        and ("R" in flags or "--recursive" in args)
        and any(t in _ROOTISH or t.rstrip("/") == "" for t in targets)
    ):
        return f"{binary} -R of /"
    if binary == "git" and "push" in args:
        verdict = _git_rules(args)
        if verdict is not None and verdict.verdict == "ask":
            return verdict.reason
    if binary in ("shutdown", "reboot", "halt", "poweroff", "init"):
        return f"{binary} stops the machine"
    return None


# -- structured mode ------------------------------------------------------------------------


def check_structured(
    argv: list[str], allowed_commands: list[str], allowlist_mode: str = "strict", env: Mapping[str, str] | None = None
) -> ExecVerdict:
    """Judge ``argv`` (binary + arguments, no shell)."""
    if not argv:
        return _deny("no command given")
    binary = argv[0]
    if not _BARE_NAME.match(binary):
        return _deny(f"{binary!r} is not a bare binary name (no paths, spaces, variables or assignments)")
    # No shell ever sees an interpreter's code: its metacharacters are inert, and running
    # it asks a human, who must see it as it is (so control characters stay refused).
    code = interpreter_name(binary) in INTERPRETERS and interpreter_risk(binary, argv[1:]) is not None
    for arg in argv[1:]:
        bad = _bad_code_char(arg) if code else bad_char(arg)
        if bad:
            return _deny(f"argument {arg!r} contains the shell metacharacter {bad}")
    if allowlist_mode != "permissive":
        if not allowed_commands:
            return _deny("exec.allowed_commands is empty, so no command may run")
        if binary not in allowed_commands:
            return _deny(f"{binary} is not on exec.allowed_commands")
    if resolve_binary(binary, env) is None:
        return _deny(f"{binary} was not found on PATH")
    rule = _option_rules(binary, argv[1:])
    if rule is not None:
        return rule
    return ExecVerdict(
        "allow",
        f"{binary} is on exec.allowed_commands"
        if allowlist_mode != "permissive"
        else f"{binary} is on PATH (permissive allowlist)",
    )


def split_command(command: str) -> list[str]:
    """A command string as argv for structured mode (quotes honoured, nothing expanded)."""
    return shlex.split(command, posix=True)


# -- shell mode ---------------------------------------------------------------------------------


@dataclass
class _SimpleCommand:
    words: list[str]
    assignments: list[str]
    redirect_targets: list[str]
    expanded_binary: bool


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for attr in ("parts", "list"):
        for child in getattr(node, attr, None) or []:
            yield from _walk(child)
    for attr in ("command", "output"):
        child = getattr(node, attr, None)
        if child is not None and hasattr(child, "kind"):
            yield from _walk(child)


def _simple_commands(tree: list[Any]) -> tuple[list[_SimpleCommand], str | None]:
    found: list[_SimpleCommand] = []
    for top in tree:
        for node in _walk(top):
            if node.kind == "function":
                return found, "function definitions are not allowed in shell mode"
            if node.kind != "command":
                continue
            words, assigns, redirects = [], [], []
            expanded = False
            for part in node.parts:
                if part.kind == "assignment" and not words:
                    assigns.append(part.word)
                elif part.kind == "word":
                    if not words and (getattr(part, "parts", None) or "$" in part.word or "`" in part.word):
                        expanded = True
                    words.append(part.word)
                elif part.kind == "redirect":
                    out = getattr(part, "output", None)
                    if out is not None and hasattr(out, "word"):
                        redirects.append(out.word)
            found.append(_SimpleCommand(words, assigns, redirects, expanded))
    return found, None


def command_words(command: str) -> list[list[str]]:
    """The words of every simple command in a shell command line (empty when it does not parse)."""
    import bashlex

    try:
        commands, _ = _simple_commands(bashlex.parse(command))
    except Exception:  # check_shell has refused what does not parse
        return []
    return [c.words for c in commands if c.words]


def check_shell(
    command: str, allowed_commands: list[str], allowlist_mode: str = "strict", env: Mapping[str, str] | None = None
) -> tuple[ExecVerdict, list[str]]:
    """Judge a shell command line; also returns the redirect targets for the path sandbox."""
    import bashlex

    if "\x00" in command:
        return _deny("the command contains a NUL byte"), []
    hidden = _bad_code_char(command)
    if hidden:
        return _deny(f"the command contains the control or invisible character {hidden}"), []
    try:
        tree = bashlex.parse(command)
    except Exception as err:  # bashlex raises its own ParsingError and assorted errors
        return _deny(f"the command could not be parsed safely: {err}"), []
    commands, problem = _simple_commands(tree)
    if problem:
        verdict = _deny(problem)
        if _FORK_BOMB.search(command):
            verdict = _deny("fork bomb")
        return verdict, []
    if not commands:
        return _deny("no command found"), []
    redirects: list[str] = []
    asks: list[str] = []
    for cmd in commands:
        if cmd.expanded_binary:
            return _deny("the program name comes from an expansion; it must be a literal word"), []
        for assign in cmd.assignments:
            name = assign.split("=", 1)[0]
            if _DANGEROUS_ENV.match(name) or name in ("PATH", "HOME"):
                return _deny(f"setting {name} changes what programs run"), []
        if not cmd.words:
            continue
        binary = cmd.words[0]
        if not _BARE_NAME.match(binary):
            return _deny(f"{binary!r} is not a bare binary name"), []
        if allowlist_mode != "permissive" and binary not in allowed_commands and binary not in ("cd", "true", "false"):
            return _deny(f"{binary} is not on exec.allowed_commands"), []
        if binary not in ("cd", "true", "false") and resolve_binary(binary, env) is None:
            return _deny(f"{binary} was not found on PATH"), []
        if binary in WRAPPERS and binary not in ("sudo", "doas", "su"):
            return _deny(f"{binary} runs another program; allowlist that program instead"), []
        danger = dangerous_simple_command(cmd.words)
        if danger:
            asks.append(danger)
        elif interpreter_name(binary) is not None:
            risk = interpreter_risk(binary, cmd.words[1:])
            if risk:
                asks.append(risk)
        elif hard_link_sources(cmd.words):
            # cd and expansions make the source's folder unknowable here.
            asks.append(f"{binary} makes a hard link, and in shell mode its source cannot be checked against the workspace")
        else:
            rule = _option_rules(binary, cmd.words[1:])
            if rule is not None and rule.verdict == "deny":
                return rule, []
            if rule is not None:
                asks.append(rule.reason)
        redirects.extend(t for t in cmd.redirect_targets if not t.isdigit())
    for target in redirects:
        if "$" in target or "`" in target:
            return _deny("a redirect target comes from an expansion"), []
    if _pipes_download_into_shell(commands):
        asks.append("downloads a script and runs it (curl | sh)")
    if asks:
        return ExecVerdict("ask", "; ".join(dict.fromkeys(asks))), redirects
    return ExecVerdict("allow", "every command is on exec.allowed_commands"), redirects


def _pipes_download_into_shell(commands: list[_SimpleCommand]) -> bool:
    names = [c.words[0] for c in commands if c.words]
    downloads = any(n in ("curl", "wget", "fetch", "aria2c") for n in names)
    return downloads and any(interpreter_name(n) is not None for n in names)


def grant_pattern_allowed(binary: str, pattern: str) -> bool:
    """Whether an approval grant may cover ``binary`` with argument ``pattern``.

    A shell, interpreter or wrapper with a wildcard would allow everything,
    so only exact argument lists are grantable for them: the only brackets
    allowed are the one-character escapes ``[*]``, ``[?]`` and ``[[]`` that an
    exact grant of such text needs.
    """
    if binary in CODE_RUNNERS or interpreter_name(binary) is not None:
        return not any(ch in _EXACT_ESCAPE.sub("", pattern) for ch in "*?[")
    return True


_EXACT_ESCAPE = re.compile(r"\[[*?[]\]")


def args_match(pattern: str, args: list[str]) -> bool:
    """Whether the arguments, joined by spaces, match a grant's glob pattern."""
    return fnmatchcase(" ".join(args), pattern)
