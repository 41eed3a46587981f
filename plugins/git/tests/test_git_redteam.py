"""Red-team cases for the git plugin: symlinks and crafted trees must not carry git outside the workspace.

dulwich opens working-tree files by name, so a symbolic link placed where the
repository has a folder (``sub -> ~/.ssh`` after ``sub/id_rsa`` was committed)
would let a commit store, a diff show and a restore overwrite a file outside
the workspace. The agent can make such a link with nothing but allowed git
commands (``git update-index --cacheinfo 120000,...`` and ``git checkout-index``),
so every case here plants one and checks that the secret never leaves its file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from dulwich.objects import Blob, Commit, Tree
from oxios_plugin_git import plugin as git_plugin
from oxios_plugin_git.repo import GitError, WorkspaceRepo

SECRET = b"OUTSIDE SECRET KEY"


def _objects_hold(repo: WorkspaceRepo, needle: bytes) -> bool:
    store = repo.repo.object_store
    return any(needle in store[sha].as_raw_string() for sha in store)


@pytest.fixture
def planted(tmp_path: Path) -> tuple[WorkspaceRepo, Path]:
    """A repository with ``sub/id_rsa`` committed, then ``sub`` replaced by a link to a folder outside."""
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    repo = WorkspaceRepo(ws)
    (ws / "sub").mkdir(parents=True)
    (ws / "sub" / "id_rsa").write_text("placeholder")
    (ws / "notes.txt").write_text("notes")
    assert repo.commit_all("one")
    (outside / "id_rsa").write_bytes(SECRET)
    shutil.rmtree(ws / "sub")
    os.symlink(outside, ws / "sub")
    return repo, outside


def test_commit_through_a_symlinked_folder_records_deletion_not_content(planted: tuple[WorkspaceRepo, Path]) -> None:
    repo, outside = planted
    head = repo.head()
    sha = repo.commit_all("exfiltrate")
    assert sha is not None and sha.encode() != head
    files = repo.show("HEAD")
    assert "deleted file" in files["patch"] and "sub/id_rsa" in files["patch"]
    assert not _objects_hold(repo, SECRET)
    assert (outside / "id_rsa").read_bytes() == SECRET


def test_diff_and_status_through_a_symlinked_folder_are_refused(planted: tuple[WorkspaceRepo, Path]) -> None:
    repo, _ = planted
    with pytest.raises(GitError, match="symbolic link"):
        repo.diff()
    with pytest.raises(GitError, match="symbolic link"):
        repo.diff("HEAD")
    with pytest.raises(GitError, match="symbolic link"):
        repo.status()
    assert "OUTSIDE" not in repo.diff("HEAD", "HEAD")  # between commits: nothing is read from disk


def test_gitignored_symlinked_folder_is_refused_too(planted: tuple[WorkspaceRepo, Path]) -> None:
    repo, _ = planted
    (repo.path / ".gitignore").write_text("sub\n")
    with pytest.raises(GitError):
        repo.diff()
    repo.commit_all("ignored link")
    assert not _objects_hold(repo, SECRET)


def test_restore_never_writes_through_a_symlinked_folder(planted: tuple[WorkspaceRepo, Path]) -> None:
    repo, outside = planted
    first = repo.head().decode()
    (repo.path / ".gitignore").write_text("sub\n")  # ignored: the link itself is never staged
    repo.restore(first)
    assert (outside / "id_rsa").read_bytes() == SECRET
    assert not (repo.path / "sub").is_symlink()
    assert (repo.path / "sub" / "id_rsa").read_text() == "placeholder"
    assert not _objects_hold(repo, SECRET)


def test_restore_target_folder_under_an_untracked_link(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    repo = WorkspaceRepo(ws)
    (ws / "sub").mkdir(parents=True)
    (ws / "sub" / "x.txt").write_text("committed")
    old = repo.commit_all("with sub/x.txt")
    shutil.rmtree(ws / "sub")
    assert repo.commit_all("without sub")
    (ws / ".gitignore").write_text("sub\n")
    os.symlink(outside, ws / "sub")  # ignored, so never staged: the restore would write sub/x.txt through it
    repo.restore(old)
    assert os.listdir(outside) == []
    assert (ws / "sub" / "x.txt").read_text() == "committed" and not (ws / "sub").is_symlink()


def test_tracked_symlink_replaced_by_a_folder_on_restore(tmp_path: Path) -> None:
    """The legitimate case next to the attack: a committed link where the target has a folder is removed first."""
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    repo = WorkspaceRepo(ws)
    (ws / "sub").mkdir(parents=True)
    (ws / "sub" / "x.txt").write_text("committed")
    old = repo.commit_all("folder")
    shutil.rmtree(ws / "sub")
    os.symlink(outside, ws / "sub")
    assert repo.commit_all("the folder became a link")  # its files are recorded as deleted, nothing read
    repo.restore(old)
    assert not (ws / "sub").is_symlink() and (ws / "sub" / "x.txt").read_text() == "committed"
    assert os.listdir(outside) == []


def test_symlinks_are_committed_as_links_not_contents(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "dir" / "inner.txt").write_bytes(SECRET)
    repo = WorkspaceRepo(ws)
    ws.mkdir(exist_ok=True)
    (ws / "a.txt").write_text("a")
    os.symlink(outside / "secret.txt", ws / "leak")
    os.symlink(outside / "dir", ws / "dirleak")
    assert repo.commit_all("links")
    assert not _objects_hold(repo, SECRET)
    assert "OUTSIDE" not in repo.show("HEAD")["patch"]


def test_restore_replaces_a_symlink_at_a_file_position(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    (outside / "bashrc").write_text("victim")
    repo = WorkspaceRepo(ws)
    ws.mkdir(exist_ok=True)
    (ws / "evil").write_text("committed text")
    old = repo.commit_all("file")
    os.unlink(ws / "evil")
    os.symlink(outside / "bashrc", ws / "evil")
    repo.restore(old)
    assert (outside / "bashrc").read_text() == "victim"
    assert not (ws / "evil").is_symlink() and (ws / "evil").read_text() == "committed text"


@pytest.mark.parametrize("names", [[b".git", b"hooks", b"post-commit"], [b"..", b"escaped.txt"], [b".GIT", b"config"]])
def test_restore_of_a_crafted_tree_stays_out_of_git_and_the_parent(tmp_path: Path, names: list[bytes]) -> None:
    """An agent with `git` on the allowlist can build any tree (update-index, write-tree, commit-tree)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    repo = WorkspaceRepo(ws)
    (ws / "a.txt").write_text("a")
    repo.commit_all("base")
    store = repo.repo.object_store
    blob = Blob.from_string(b"#!/bin/sh\ntouch /tmp/oxios-pwned\n")
    store.add_object(blob)
    child_id, mode = blob.id, 0o100755
    for name in reversed(names):
        tree = Tree()
        tree.add(name, mode, child_id)
        store.add_object(tree)
        child_id, mode = tree.id, 0o040000
    commit = Commit()
    commit.tree = child_id
    commit.parents = [repo.head()]
    commit.author = commit.committer = b"Evil <e@x>"
    commit.commit_time = commit.author_time = 0
    commit.commit_timezone = commit.author_timezone = 0
    commit.message = b"crafted"
    store.add_object(commit)
    with pytest.raises(GitError, match="must never write"):
        repo.restore(commit.id.decode())
    assert (ws / "a.txt").read_text() == "a"  # refused before anything was touched
    assert not (ws / ".git" / "hooks" / "post-commit").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert b"crafted" not in (ws / ".git" / "config").read_bytes()


async def test_git_diff_tool_does_not_show_a_file_outside(oxios_kernel_factory: Any, tmp_path: Path) -> None:
    from oxios_plugin_git.tools import git_commit, git_diff, git_status

    async with oxios_kernel_factory(plugins=[git_plugin]) as kernel:
        ws = kernel.paths.workspace
        (ws / "keys").mkdir()
        (ws / "keys" / "id_rsa").write_text("placeholder")
        ctx = kernel.context(agent_id="attacker")
        assert not (await git_commit(ctx, "plant")).is_error
        outside = tmp_path / "home-ssh"
        outside.mkdir()
        (outside / "id_rsa").write_bytes(SECRET)
        shutil.rmtree(ws / "keys")
        os.symlink(outside, ws / "keys")
        for result in (await git_diff(ctx), await git_status(ctx)):
            assert result.is_error and "symbolic link" in result.content
            assert "OUTSIDE" not in result.content
        assert not (await git_commit(ctx, "steal")).is_error
        for shown in (await git_diff(ctx, "HEAD~1", "HEAD"), await git_diff(ctx), await git_diff(ctx, "HEAD~1")):
            assert "OUTSIDE" not in shown.content


def test_oxios_commits_never_run_workspace_hooks(tmp_path: Path) -> None:
    """Hooks an unpacked archive (tar, unzip) dropped into .git/hooks must not run on the auto-commit."""
    ws = tmp_path / "ws"
    ws.mkdir()
    repo = WorkspaceRepo(ws)
    (ws / "a.txt").write_text("a")
    first = repo.commit_all("base")
    hooks = ws / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("pre-commit", "commit-msg", "post-commit"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\ntouch {tmp_path}/ran-{name}\nexit 0\n")
        hook.chmod(0o755)
    repo.close()
    reopened = WorkspaceRepo(ws)
    (ws / "a.txt").write_text("changed")
    assert reopened.commit_all("after the hooks appeared")
    reopened.restore(first)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ran-")) == []
