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

import contextlib
import errno
import logging
import os
import secrets
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
                _real(h / name)
                for name in ("config.toml", "secrets", "state.db", "state.db-wal", "state.db-shm", "audit-head", "run", ".env")
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
        if ok and git_obeys(real):
            return False, f"{real} is run or obeyed by git (hooks, config, a .git file); agents may not write it", real
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
        if writing and git_obeys(real):
            raise PathDenied(f"{real} is run or obeyed by git (hooks, config, a .git file); agents may not write it")
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

    def write_atomic(self, path: str | os.PathLike[str], data: bytes, cwd: str | os.PathLike[str] | None = None) -> str:
        """Replace the file at ``path`` with ``data`` (a new temp file renamed over it); the real path.

        The folder is opened once (``O_NOFOLLOW``, re-judged through
        ``/proc/self/fd``) and the temp file is created in it by name with
        ``O_EXCL | O_NOFOLLOW`` and a random name, so neither a link planted
        where the temp file goes nor a folder swapped for a link after the
        check can carry the write outside. The rename replaces a link at
        ``path`` itself, never what it points to.
        """
        ok, reason, real = self.check_write(path, cwd)
        if not ok:
            raise PathDenied(reason)
        folder, name = os.path.split(real)
        os.makedirs(folder, exist_ok=True)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            opened = _opened_path(dir_fd)
            if opened is None:
                if not _same_file(dir_fd, folder):
                    raise PathDenied(f"{folder} changed while it was being opened")
            elif opened != folder:
                raise PathDenied(f"{folder} resolved to {opened} at open time: it was swapped for a link")
            temp = f".{name[:100]}.{secrets.token_hex(8)}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=dir_fd)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=dir_fd)
                raise
        finally:
            os.close(dir_fd)
        return real


def git_obeys(real: str) -> bool:
    """Whether git runs or obeys the file at ``real`` (already resolved): writing it would run code.

    Hooks and config in any git folder, a submodule's or a worktree's too
    (``.git/modules/NAME/hooks/``, ``.git/worktrees/NAME/config.worktree``),
    and a ``.git`` *file*, which points git at another folder and so at that
    folder's config.
    """
    parts = real.split("/")
    if parts[-1] == ".git" and not os.path.isdir(real):
        return True
    if ".git" not in parts[:-1]:
        return False
    rest = parts[parts.index(".git") + 1 :]
    return "hooks" in rest or rest[-1] in ("config", "config.worktree")


def git_dir_problem(start: str, sandbox: Sandbox) -> str | None:
    """Why running git in ``start`` (already resolved) would obey files the agent may have written, or None.

    git finds its repository by walking up from the working directory. A
    ``.git`` file sends it to the folder it names, and a folder laid out like
    a bare repository (``HEAD``, ``objects/``, ``refs/``) is one: either way
    git would read a ``config`` the file tools may write (``core.fsmonitor``
    runs a command on ``git status``). Only ``.git`` folders are protected.
    """
    folder = start
    while sandbox.judge_real(folder)[0]:
        if ".git" in folder.split("/"):
            return None  # inside a .git folder: its config and hooks are protected
        dotgit = os.path.join(folder, ".git")
        if os.path.isdir(dotgit) and not os.path.islink(dotgit):
            return None
        if os.path.lexists(dotgit):
            try:
                with open(dotgit, encoding="utf-8", errors="replace") as fh:
                    line = fh.read(4096).strip()
            except OSError:
                line = ""
            target = os.path.realpath(os.path.join(folder, line.removeprefix("gitdir:").strip())) if line else ""
            if target and ".git" in target.split("/"):
                return None  # a submodule or worktree: its git folder lives inside a protected .git
            return f"{dotgit} points git at {target or 'another folder'}, whose config and hooks are not protected"
        if os.path.isfile(os.path.join(folder, "HEAD")) and all(
            os.path.isdir(os.path.join(folder, name)) for name in ("objects", "refs")
        ):
            return f"{folder} is laid out like a bare git repository, whose config and hooks are not protected"
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return None


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
