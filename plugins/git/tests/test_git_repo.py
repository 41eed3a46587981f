"""WorkspaceRepo against the real git binary: every repository written here must pass fsck."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from oxios_plugin_git.repo import GitError, WorkspaceRepo


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([require_binary("git"), "-C", str(repo), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout + done.stderr


def fsck(repo: Path) -> None:
    out = git(repo, "fsck", "--full", "--strict")
    assert "error" not in out.lower() and "missing" not in out.lower(), out


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    require_binary("git")
    return tmp_path / "workspace"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_commit_tag_log_readable_by_git(ws: Path) -> None:
    repo = WorkspaceRepo(ws, author="Oxios Test <test@oxios.local>")
    assert repo.commit_all("nothing") is None  # an empty workspace makes no commit
    write(ws / "notes.md", "one\n")
    write(ws / "src" / "app.py", "print('hi')\n")
    first = repo.commit_all("First run\n\nOxios-Agent: a1\n")
    assert first and repo.commit_all("again") is None
    repo.tag("seed-abc-gen1", "Seed abc generation 1\n")
    (ws / "src" / "app.py").unlink()
    write(ws / "notes.md", "two\n")
    second = repo.commit_all("Second run")
    fsck(ws)
    log = git(ws, "log", "--format=%H %s")
    assert f"{second} Second run" in log and f"{first} First run" in log
    assert git(ws, "tag", "--list").split() == ["seed-abc-gen1"]
    assert git(ws, "rev-parse", "seed-abc-gen1^{commit}").strip() == first
    assert git(ws, "status", "--porcelain") == ""
    assert git(ws, "show", f"{second}:notes.md") == "two\n"
    entries = repo.log()
    assert [e["sha"] for e in entries] == [second, first]
    assert entries[1]["tags"] == ["seed-abc-gen1"]
    patch = repo.show("HEAD")["patch"]
    assert "-one" in patch and "+two" in patch and "deleted file" in patch
    assert "+print('hi')" in repo.show(first[:10])["patch"]


def test_restore_to_tag_and_back_keeps_history(ws: Path) -> None:
    repo = WorkspaceRepo(ws)
    write(ws / "a.txt", "v1\n")
    write(ws / "dir" / "b.txt", "b\n")
    v1 = repo.commit_all("v1")
    repo.tag("seed-s-gen1", "gen 1")
    write(ws / "a.txt", "v2\n")
    (ws / "dir" / "b.txt").unlink()
    write(ws / "c.txt", "c\n")
    v2 = repo.commit_all("v2")
    write(ws / "scratch.txt", "uncommitted work\n")  # must not be lost by a restore

    result = repo.restore("seed-s-gen1")
    assert result["restored"] == v1 and result["saved"] and result["commit"]
    assert (ws / "a.txt").read_text() == "v1\n" and (ws / "dir" / "b.txt").read_text() == "b\n"
    assert not (ws / "c.txt").exists() and not (ws / "scratch.txt").exists()
    fsck(ws)
    assert git(ws, "status", "--porcelain") == ""
    assert git(ws, "show", f"{result['saved']}:scratch.txt") == "uncommitted work\n"
    assert git(ws, "rev-parse", "HEAD^{tree}").strip() == git(ws, "rev-parse", f"{v1}^{{tree}}").strip()

    again = repo.restore("HEAD~2")  # HEAD~2 is v2 (restore commit -> save commit -> v2)
    assert again["restored"] == v2 and again["saved"] is None
    assert (ws / "c.txt").read_text() == "c\n" and not (ws / "dir").exists()
    fsck(ws)
    assert git(ws, "status", "--porcelain") == ""
    assert repo.verify()["ok"]


def test_restore_does_not_follow_symlinks_out_of_the_workspace(ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    repo = WorkspaceRepo(ws)
    write(ws / "target.txt", "committed content\n")
    v1 = repo.commit_all("v1")
    (ws / "target.txt").unlink()
    os.symlink(outside, ws / "target.txt")  # an agent swaps the file for a link to a host file
    repo.commit_all("link")
    repo.restore(v1)
    assert outside.read_text() == "precious\n"
    assert not (ws / "target.txt").is_symlink() and (ws / "target.txt").read_text() == "committed content\n"
    fsck(ws)


def test_verify_reports_dirty_tree_and_corrupt_objects(ws: Path) -> None:
    repo = WorkspaceRepo(ws)
    write(ws / "a.txt", "hello\n")
    repo.commit_all("v1")
    report = repo.verify()
    assert report["ok"] and report["tree_matches"] and report["objects_checked"] == report["objects_reachable"] == 3
    write(ws / "a.txt", "changed\n")
    dirty = repo.verify()
    assert not dirty["ok"] and dirty["integrity_ok"] and dirty["uncommitted"] == ["a.txt"]
    write(ws / "a.txt", "hello\n")
    # Corrupt the blob's loose object on disk: verify must notice, like git fsck does.
    blob = git(ws, "rev-parse", "HEAD:a.txt").strip()
    obj = ws / ".git" / "objects" / blob[:2] / blob[2:]
    os.chmod(obj, 0o644)
    import zlib

    obj.write_bytes(zlib.compress(b"blob 6\x00HELLO\n"))
    repo.close()
    broken = WorkspaceRepo(ws).verify()
    assert not broken["ok"] and not broken["integrity_ok"]
    assert any(blob in e for e in broken["errors"])


def test_bad_refs_and_tag_names_are_clear_errors(ws: Path) -> None:
    repo = WorkspaceRepo(ws)
    assert repo.log() == [] and repo.diff() == ""
    write(ws / "a.txt", "x\n")
    repo.commit_all("v1")
    for ref in ("no-such-ref", "HEAD~5", "deadbeef"):
        with pytest.raises(GitError):
            repo.resolve(ref)
    with pytest.raises(GitError):
        repo.restore("no-such-ref")
    for name in ("bad name", "../escape", "a..b", ""):
        with pytest.raises(GitError):
            repo.tag(name, "x")
    repo.tag("ok-tag", "x")
    with pytest.raises(GitError, match="already exists"):
        repo.tag("ok-tag", "again")
    fsck(ws)
