"""The workspace as a git repository, read and written with dulwich.

Synchronous and single-threaded by design: :class:`GitService` runs these
methods in a worker thread under one lock. Every repository written here is
readable by the real ``git`` binary (the tests run ``git fsck --full --strict``).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import time
from pathlib import Path
from typing import Any

from dulwich import porcelain
from dulwich.errors import NotGitRepository
from dulwich.index import validate_path, validate_path_element_default
from dulwich.objects import S_ISGITLINK, Blob, Commit, Tag, Tree
from dulwich.objectspec import parse_commit
from dulwich.patch import write_tree_diff
from dulwich.refs import check_ref_format
from dulwich.repo import Repo

from oxios import Conflict, NotFound

_ANCESTRY = re.compile(r"^(?P<base>.+?)(?P<steps>(?:~\d*|\^)*)$")
_TAG_PREFIX = b"refs/tags/"


class GitError(ValueError):
    """A git operation a user asked for cannot be done (bad tag name, existing tag ...)."""


class UnknownRevision(GitError, NotFound):
    """A ref, sha or ``~N`` that names no commit (maps to 404 on the web API)."""


class TagExists(GitError, Conflict):
    """A tag name that is already taken (maps to 409 on the web API)."""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class WorkspaceRepo:
    """One working tree with a ``.git`` directory inside it."""

    def __init__(self, path: Path | str, *, author: str = "Oxios <oxios@localhost>") -> None:
        self.path = Path(path)
        self.author = author.encode()
        self._repo: Repo | None = None

    # -- opening ---------------------------------------------------------------

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            self.path.mkdir(parents=True, exist_ok=True)
            try:
                self._repo = Repo(str(self.path))
            except NotGitRepository:
                self._repo = porcelain.init(str(self.path))
            # Hooks are files in the workspace an agent's command (an unpacked archive) may have
            # written: Oxios's own commits never run them (dulwich would, commit-msg and post-commit too).
            self._repo.hooks.clear()
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def head(self) -> bytes | None:
        try:
            return self.repo.head()
        except KeyError:
            return None  # no commit yet

    # -- symbolic links in the way -------------------------------------------------

    def _links_above(self, paths: Any) -> dict[str, str]:
        """Symbolic links in the working tree where ``paths`` need a directory: link -> one such path.

        dulwich opens ``sub/file`` by name, so a symlink ``sub`` (made after
        ``sub/file`` was committed) would let git read or write a file outside
        the workspace: stage its content, show it in a diff, overwrite it on restore.
        """
        is_link: dict[str, bool] = {}
        found: dict[str, str] = {}
        for raw in paths:
            path = _text(raw)
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folder = "/".join(parts[:i])
                if folder not in is_link:
                    is_link[folder] = os.path.islink(self.path / folder)
                if is_link[folder]:
                    found.setdefault(folder, path)
                    break
        return found

    def _refuse_links_above(self, paths: Any, doing: str) -> None:
        found = self._links_above(paths)
        if found:
            link, example = sorted(found.items())[0]
            raise GitError(
                f"cannot {doing}: {link} is a symbolic link where the repository has files ({example}); "
                f"git would read or write through it, outside the workspace. Remove the link, or commit: "
                f"a commit records the files beneath it as deleted."
            )

    def _drop_entries_under_links(self) -> None:
        """Record index entries beneath a symlinked folder as deleted (what they are), never reading through the link."""
        index = self.repo.open_index()
        links = self._links_above(index.paths())
        if not links:
            return
        prefixes = tuple(link.encode() + b"/" for link in links)
        for path in [p for p in index.paths() if p.startswith(prefixes)]:
            del index[path]
        index.write()

    def _index_paths(self) -> list[bytes]:
        return list(self.repo.open_index().paths())

    # -- resolving refs ----------------------------------------------------------

    def resolve(self, ref: str) -> Commit:
        """A commit from a sha (full or abbreviated), branch, tag, HEAD, with ``~N`` / ``^`` suffixes."""
        ref = (ref or "HEAD").strip()
        match = _ANCESTRY.match(ref)
        if match is None:
            raise UnknownRevision(f"not a revision: {ref!r}")
        base, steps = match["base"], match["steps"]
        try:
            commit = parse_commit(self.repo, base)
        except (KeyError, ValueError) as err:
            raise UnknownRevision(f"unknown revision {ref!r}") from err
        for step in re.findall(r"~\d*|\^", steps):
            count = 1 if step in ("~", "^") else int(step[1:])
            for _ in range(count):
                if not commit.parents:
                    raise UnknownRevision(f"revision {ref!r} goes past the first commit")
                commit = self.repo[commit.parents[0]]
        return commit

    # -- reading ---------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        self._refuse_links_above(self._index_paths(), "read the working tree")
        if self.head() is None:
            untracked = sorted(_text(p) for p in porcelain.status(self.repo).untracked)
            return {"head": None, "staged": [], "unstaged": [], "untracked": untracked, "clean": not untracked}
        st = porcelain.status(self.repo)
        staged = sorted({_text(p) for paths in st.staged.values() for p in paths})
        unstaged = sorted(_text(p) for p in st.unstaged)
        untracked = sorted(_text(p) for p in st.untracked)
        return {
            "head": _text(self.head() or b""),
            "staged": staged,
            "unstaged": unstaged,
            "untracked": untracked,
            "clean": not (staged or unstaged or untracked),
        }

    def log(self, *, limit: int = 50, ref: str = "HEAD") -> list[dict[str, Any]]:
        if self.head() is None:
            # No commits yet: HEAD's history is empty, but any other revision is unknown (not an empty log).
            if (ref or "HEAD").strip() == "HEAD":
                return []
            raise UnknownRevision(f"unknown revision {ref!r} (the repository has no commits yet)")
        start = self.resolve(ref)
        tags = self._tags_by_commit()
        out: list[dict[str, Any]] = []
        for entry in self.repo.get_walker(include=[start.id], max_entries=max(1, limit)):
            out.append(self._describe(entry.commit, tags))
        return out

    def _describe(self, commit: Commit, tags: dict[bytes, list[str]] | None = None) -> dict[str, Any]:
        message = _text(commit.message)
        return {
            "sha": _text(commit.id),
            "short": _text(commit.id[:8]),
            "summary": message.splitlines()[0] if message else "",
            "message": message,
            "author": _text(commit.author),
            "time": commit.commit_time,
            "parents": [_text(p) for p in commit.parents],
            "tags": (tags or {}).get(commit.id, []),
        }

    def _tags_by_commit(self) -> dict[bytes, list[str]]:
        out: dict[bytes, list[str]] = {}
        for t in self.tags():
            out.setdefault(t["sha"].encode(), []).append(t["name"])
        return out

    def tags(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        refs = self.repo.refs.as_dict(_TAG_PREFIX)
        for name, sha in sorted(refs.items()):
            obj = self.repo[sha]
            message, tagged_at = "", None
            if isinstance(obj, Tag):
                message, tagged_at = _text(obj.message).strip(), obj.tag_time
                obj = self.repo[obj.object[1]]
            rows.append({"name": _text(name), "sha": _text(obj.id), "message": message, "time": tagged_at})
        return rows

    def show(self, ref: str = "HEAD") -> dict[str, Any]:
        commit = self.resolve(ref)
        info = self._describe(commit, self._tags_by_commit())
        parent_tree = self.repo[commit.parents[0]].tree if commit.parents else None
        out = io.BytesIO()
        write_tree_diff(out, self.repo.object_store, parent_tree, commit.tree)
        info["patch"] = out.getvalue().decode("utf-8", "replace")
        return info

    def diff(self, ref: str | None = None, ref2: str | None = None) -> str:
        """``diff()``: working tree against HEAD; ``diff(a)``: working tree against a;
        ``diff(a, b)``: between two commits."""
        if self.head() is None:
            return ""
        out = io.BytesIO()
        first = self.resolve(ref or "HEAD").id
        if not ref2:  # the working tree is read at the paths of the index and of the commit
            paths = [*self._index_paths(), *_tree_files(self.repo, self.repo[first].tree)]
            self._refuse_links_above(paths, "diff the working tree")
        if ref2:
            porcelain.diff(self.repo, commit=first, commit2=self.resolve(ref2).id, outstream=out)
        else:
            porcelain.diff(self.repo, commit=first, outstream=out)
        text = out.getvalue().decode("utf-8", "replace")
        if not ref2:
            # dulwich's working-tree diff leaves out new files; name them so nothing is hidden.
            untracked = porcelain.status(self.repo).untracked
            text += "".join(f"new untracked file: {_text(p)}\n" for p in sorted(untracked))
        return text

    # -- writing ---------------------------------------------------------------

    def commit_all(self, message: str) -> str | None:
        """Stage every change (new, modified, deleted) and commit; None when nothing changed."""
        self._drop_entries_under_links()
        porcelain.add(self.repo)
        head = self.head()
        index = self.repo.open_index()
        if head is None and not len(index):
            return None  # an empty workspace: no commit, and no stray empty tree object
        if head is not None and self.repo[head].tree == index.commit(self.repo.object_store):
            return None
        sha = porcelain.commit(self.repo, message=message.encode(), author=self.author, committer=self.author, no_verify=True)
        return _text(sha)

    def tag(self, name: str, message: str, ref: str = "HEAD") -> str:
        """An annotated tag; raises :class:`GitError` for a bad name, :class:`TagExists` for a taken one."""
        raw = name.encode()
        if not check_ref_format(_TAG_PREFIX + raw):
            raise GitError(f"invalid tag name {name!r}")
        if (_TAG_PREFIX + raw) in self.repo.refs:
            raise TagExists(f"tag {name!r} already exists")
        commit = self.resolve(ref)
        porcelain.tag_create(
            self.repo,
            raw,
            author=self.author,
            message=message.encode(),
            annotated=True,
            objectish=commit.id,
            tag_time=int(time.time()),
        )
        return _text(commit.id)

    def restore(self, ref: str) -> dict[str, Any]:
        """Make the working tree equal to ``ref``'s tree and record that as a new commit.

        History is never rewritten: uncommitted work is committed first, so a
        restore can itself be undone by restoring the commit before it.
        """
        target = self.resolve(ref)
        saved = self.commit_all(f"Save workspace before restoring {ref}")
        head = self.repo[self.head()]
        current_files = set(_tree_files(self.repo, head.tree))
        target_files = set(_tree_files(self.repo, target.tree))
        # A crafted tree (`git update-index`, `commit-tree`) may name .git/hooks/... or ../x: refuse before touching anything.
        bad = sorted(p for p in target_files if not validate_path(p, validate_path_element_default))
        if bad:
            raise GitError(f"cannot restore {ref}: its tree names the path {_text(bad[0])!r}, which git must never write")
        for rel in sorted(current_files - target_files):
            path = self.path / rel.decode()
            if path.is_symlink() or path.is_file():
                path.unlink()
            _prune_empty_dirs(path.parent, self.path)
        # A symlink left where a folder or a file goes would let the writes escape the workspace.
        for link in self._links_above(target_files):
            (self.path / link).unlink()
        for rel in target_files:
            path = self.path / rel.decode()
            if path.is_symlink():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
        self.repo.get_worktree().reset_index(target.tree)
        if self.repo[self.head()].tree == target.tree:
            return {"restored": _text(target.id), "commit": None, "saved": saved}
        sha = porcelain.commit(
            self.repo,
            message=f"Restore workspace to {ref} ({_text(target.id[:8])})".encode(),
            author=self.author,
            committer=self.author,
            no_verify=True,
        )
        return {"restored": _text(target.id), "commit": _text(sha), "saved": saved}

    # -- integrity -------------------------------------------------------------

    def verify(self) -> dict[str, Any]:
        """Check every object's hash and structure, reachability from HEAD and tags,
        and that the working tree matches HEAD's tree."""
        errors: list[str] = []
        checked = 0
        store = self.repo.object_store
        for sha in store:
            checked += 1
            try:
                obj = store[sha]
                obj.check()
                if obj.id != sha:
                    errors.append(f"object {_text(sha)} hashes to {_text(obj.id)}")
            except Exception as err:
                errors.append(f"object {_text(sha)}: {type(err).__name__}: {err}")
        head = self.head()
        reachable = 0
        roots = [head] if head else []
        roots += [sha for sha in self.repo.refs.as_dict(_TAG_PREFIX).values()]
        seen: set[bytes] = set()
        for root in roots:
            reachable += self._walk(root, seen, errors)
        try:
            status = self.status()
            changes = status["staged"] + status["unstaged"] + status["untracked"]
        except Exception as err:  # a corrupt object can make even status unreadable
            errors.append(f"cannot compare the working tree with HEAD: {type(err).__name__}: {err}")
            changes = ["?"]
        tree_matches = not changes  # with no commit yet: only an empty workspace matches
        integrity = not errors
        return {
            "ok": integrity and tree_matches,
            "integrity_ok": integrity,
            "head": _text(head) if head else None,
            "head_tree": _text(self.repo[head].tree) if head else None,
            "tree_matches": tree_matches,
            "uncommitted": changes,
            "objects_checked": checked,
            "objects_reachable": reachable,
            "errors": errors,
        }

    def _walk(self, sha: bytes, seen: set[bytes], errors: list[str]) -> int:
        stack, count = [sha], 0
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            try:
                obj = self.repo.object_store[current]
            except KeyError:
                errors.append(f"missing object {_text(current)}")
                continue
            except Exception as err:
                errors.append(f"object {_text(current)}: {type(err).__name__}: {err}")
                continue
            count += 1
            if isinstance(obj, Commit):
                stack.extend([obj.tree, *obj.parents])
            elif isinstance(obj, Tree):
                for entry in obj.items():
                    if not S_ISGITLINK(entry.mode):
                        stack.append(entry.sha)
            elif isinstance(obj, Tag):
                stack.append(obj.object[1])
            elif not isinstance(obj, Blob):
                errors.append(f"unexpected object type at {_text(current)}")
        return count


def _tree_files(repo: Repo, tree_id: bytes, prefix: bytes = b"") -> list[bytes]:
    out: list[bytes] = []
    for entry in repo[tree_id].items():
        path = prefix + entry.path
        if stat.S_ISDIR(entry.mode):
            out.extend(_tree_files(repo, entry.sha, path + b"/"))
        else:
            out.append(path)
    return out


def _prune_empty_dirs(directory: Path, root: Path) -> None:
    while directory != root and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
