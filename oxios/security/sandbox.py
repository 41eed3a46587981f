"""The path sandbox: files stay inside the workspace and the allowed paths.

Every path is resolved the way the kernel will resolve it when a file is
opened: ``~`` expanded, relative to the workspace, symlinks followed, and the
nearest existing ancestor used for files that do not exist yet. Denied paths
(OXIOS_HOME secrets, credentials, ``security.denied_paths``) win over every
allow. Because a path checked now can be swapped for a symlink later,
:func:`open_checked` opens with ``O_NOFOLLOW`` and checks again what was
actually opened.

A hard link cannot be resolved: a regular file with more than one name may
have its other names anywhere on the same file system (``ln ~/.ssh/id_rsa
x``), so such files are refused for writing always and for reading unless
``security.read_hardlinked_files`` is on, judged again on the opened file
descriptor.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


class PathDenied(PermissionError):
    """A path outside the sandbox, or a protected one."""


# Credentials under the user's home that no agent needs to read, even if home is allowed.
_HOME_SECRETS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".docker/config.json",
    ".netrc",
    ".pgpass",
    ".config/gcloud",
    ".config/gh",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
)


def _real(path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> str:
    """Absolute, ``~``-expanded, symlink-free path (non-existing tails kept as written)."""
    text = os.path.expanduser(os.fspath(path))
    if not os.path.isabs(text):
        text = os.path.join(os.fspath(base) if base is not None else os.getcwd(), text)
    # realpath follows every symlink that exists, including dangling ones, and
    # keeps the missing tail: the nearest existing ancestor decides.
    return os.path.realpath(text)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


HARDLINK_REASON = "hard-linked file: its other names may be outside the workspace"


def _hard_linked(st: os.stat_result) -> bool:
    """A regular file with more than one name (directories always have several)."""
    return stat.S_ISREG(st.st_mode) and st.st_nlink > 1


@dataclass
class Sandbox:
    """Allowed roots and denied paths, already resolved."""

    workspace: str
    allowed: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    # security.read_hardlinked_files: hard-linked files may be read (never written).
    read_hardlinked: bool = False

    @classmethod
    def build(
        cls,
        workspace: str | os.PathLike[str],
        *,
        home: str | os.PathLike[str] | None = None,
        allowed_paths: Iterable[str] = (),
        denied_paths: Iterable[str] = (),
        read_hardlinked: bool = False,
    ) -> Sandbox:
        ws = _real(workspace)
        allowed = [ws] + [_real(p, ws) for p in allowed_paths if p]
        denied = [_real(p, ws) for p in denied_paths if p]
        if home is not None:
            h = Path(home)
            denied += [
                _real(h / name) for name in ("config.toml", "secrets", "state.db", "state.db-wal", "state.db-shm", "run", ".env")
            ]
        user_home = os.path.expanduser("~")
        denied += [_real(os.path.join(user_home, name)) for name in _HOME_SECRETS]
        return cls(
            workspace=ws,
            allowed=list(dict.fromkeys(allowed)),
            denied=list(dict.fromkeys(denied)),
            read_hardlinked=read_hardlinked,
        )

    @classmethod
    def for_kernel(cls, kernel: Any, extra_paths: Iterable[str] = ()) -> Sandbox:
        sec = kernel.config.security
        return cls.build(
            kernel.paths.workspace,
            home=kernel.paths.home,
            allowed_paths=[*sec.allowed_paths, *extra_paths],
            denied_paths=sec.denied_paths,
            read_hardlinked=sec.read_hardlinked_files,
        )

    def resolve(self, path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
        if "\x00" in os.fspath(path):
            raise PathDenied("the path contains a NUL byte")
        return _real(path, cwd if cwd is not None else self.workspace)

    def judge_real(self, real: str) -> tuple[bool, str]:
        """Allowed or not, with a reason, for an already resolved path."""
        for deny in self.denied:
            if _within(real, deny):
                where = "" if real == deny else f" (inside {deny})"
                return False, f"{real} is protected{where}: secrets and credentials are never accessible to agents"
        for root in self.allowed:
            if _within(real, root):
                where = "the workspace" if root == self.workspace else f"the allowed path {root}"
                return True, f"{real} is inside {where}"
        return False, f"{real} is outside the workspace {self.workspace} and security.allowed_paths"

    def in_workspace(self, real: str) -> bool:
        """Whether an already resolved path lies inside the workspace itself (not another allowed path)."""
        return _within(real, self.workspace)

    def hardlink_problem(self, real: str, *, write: bool) -> str | None:
        """Why the file at ``real`` (already resolved) may not be used because it is hard-linked, or None.

        Judged by ``lstat`` now; :meth:`open_fd` judges the opened descriptor again.
        """
        try:
            st = os.lstat(real)
        except OSError:
            return None  # nothing there yet: a new file has one name
        if _hard_linked(st) and (write or not self.read_hardlinked):
            return f"{real} is a {HARDLINK_REASON} ({st.st_nlink} names)"
        return None

    def check(self, path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> tuple[bool, str, str]:
        """``(allowed, reason, real_path)`` for a path as an agent wrote it, to be read."""
        return self._check(path, cwd, write=False)

    def check_write(self, path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> tuple[bool, str, str]:
        """Like :meth:`check`, and refuses files git would execute (hooks, repository config)."""
        ok, reason, real = self._check(path, cwd, write=True)
        if ok and _git_executable(real):
            return False, f"{real} is run by git (hooks, .git/config); agents may not write it", real
        return ok, reason, real

    def _check(self, path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None, *, write: bool) -> tuple[bool, str, str]:
        try:
            real = self.resolve(path, cwd)
        except PathDenied as err:
            return False, str(err), ""
        except (OSError, ValueError) as err:
            return False, f"cannot resolve {path}: {err}", ""
        ok, reason = self.judge_real(real)
        if ok:
            problem = self.hardlink_problem(real, write=write)
            if problem:
                return False, problem, real
        return ok, reason, real

    def require(self, path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
        """The real path, or :class:`PathDenied`."""
        ok, reason, real = self.check(path, cwd)
        if not ok:
            raise PathDenied(reason)
        return real

    # -- use-time checks ---------------------------------------------------------------

    def open_fd(
        self, path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o644, cwd: str | os.PathLike[str] | None = None
    ) -> int:
        """Open a file descriptor, safe against a symlink swapped in after the check.

        The final component is opened with ``O_NOFOLLOW``; then the path the
        kernel really opened (``/proc/self/fd``) is judged again, so a parent
        directory swapped for a symlink is caught too. The opened file itself
        is checked for hard links (``fstat``), and ``O_TRUNC`` is applied only
        after that check, so a hard link swapped in after the check is never
        truncated or read.
        """
        real = self.require(path, cwd)
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
        if writing and _git_executable(real):
            raise PathDenied(f"{real} is run by git (hooks, .git/config); agents may not write it")
        truncate = bool(flags & os.O_TRUNC)
        try:
            fd = os.open(real, (flags & ~os.O_TRUNC) | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise PathDenied(f"{real} became a symlink after it was checked") from None
            raise
        try:
            opened = _opened_path(fd)
            if opened is None:
                # No /proc: compare identities instead.
                if not _same_file(fd, real):
                    raise PathDenied(f"{real} changed while it was being opened")
            else:
                ok, reason = self.judge_real(opened)
                if not ok:
                    raise PathDenied(f"{path} resolved to {opened} at open time: {reason}")
            st = os.fstat(fd)
            if _hard_linked(st) and (writing or not self.read_hardlinked):
                raise PathDenied(f"{path} is a {HARDLINK_REASON} ({st.st_nlink} names)")
            if truncate:
                os.ftruncate(fd, 0)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open(
        self,
        path: str | os.PathLike[str],
        mode: str = "r",
        *,
        encoding: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> IO[Any]:
        """Like :func:`open` for ``r``, ``w``, ``a``, ``x`` (optionally ``b``/``+``), sandboxed."""
        flags = _flags_for(mode)
        fd = self.open_fd(path, flags, cwd=cwd)
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        return os.fdopen(fd, mode.replace("x", "w") if "x" in mode else mode, encoding=encoding)


def _git_executable(real: str) -> bool:
    """Whether ``real`` is a git hook or repository config, which git runs or obeys on the next commit."""
    parts = real.split("/")
    for i, part in enumerate(parts[:-1]):
        if part == ".git" and parts[i + 1] in ("hooks", "config"):
            return True
    return False


def _flags_for(mode: str) -> int:
    plus = "+" in mode
    if "r" in mode:
        return os.O_RDWR if plus else os.O_RDONLY
    base = os.O_RDWR if plus else os.O_WRONLY
    if "w" in mode:
        return base | os.O_CREAT | os.O_TRUNC
    if "a" in mode:
        return base | os.O_CREAT | os.O_APPEND
    if "x" in mode:
        return base | os.O_CREAT | os.O_EXCL
    raise ValueError(f"unsupported mode {mode!r}")


def _opened_path(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _same_file(fd: int, real: str) -> bool:
    try:
        a, b = os.fstat(fd), os.lstat(real)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) and not stat.S_ISLNK(b.st_mode)


def sandbox_for(context: Any, extra_paths: Iterable[str] = ()) -> Sandbox:
    """The sandbox of an action context: its kernel's config plus its role's paths."""
    kernel = context.kernel
    role_paths: list[str] = []
    rbac = kernel.services.get("rbac") if kernel is not None else None
    if rbac is not None:
        role_paths = list(rbac.effective(context.agent_id, context.role).paths)
    sandbox = Sandbox.for_kernel(kernel, [*role_paths, *extra_paths])
    if context.workspace and _real(context.workspace) != sandbox.workspace:
        ws = _real(context.workspace)
        sandbox.workspace = ws
        sandbox.allowed.insert(0, ws)
    return sandbox


def read_roots(context: Any) -> list[str]:
    """Folders other subsystems open for reading only: the folders of ready skills."""
    kernel = context.kernel
    skills = kernel.services.get("skills") if kernel is not None else None
    try:
        return [str(p) for p in skills.allowed_read_roots()] if skills is not None else []
    except Exception:  # a broken skills service must not widen or break the sandbox
        log.exception("skills.allowed_read_roots failed")
        return []


def open_checked(context: Any, path: str | os.PathLike[str], mode: str = "r", *, encoding: str | None = None) -> IO[Any]:
    """Open ``path`` for a tool call, judged against the caller's sandbox at use time."""
    return sandbox_for(context).open(path, mode, encoding=encoding)
