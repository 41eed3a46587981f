"""Stat fingerprints: is a result computed from some files and folders still current?

Discovery and the integrity hash record the stat of every path they looked
at: (device, inode, size, mtime_ns, ctime_ns). While every path stats the
same, the result stands, so a turn costs one ``stat`` per path instead of a
walk, a YAML parse and a blake3 read. Adding or removing an entry changes its
folder's mtime; writing a file changes its mtime, ctime and often size;
``touch -d`` or ``utime`` can put mtime back but not ctime; replacing a file
or a symlinked folder changes the inode.

One gap stat cannot close: a second change within the same timestamp tick,
keeping the size, leaves every field equal. A fingerprint taken while any
of its timestamps is that recent is therefore *racy* (as git calls it) and
never trusted: the next call recomputes (walks, re-parses, re-hashes the
bytes). The window is the filesystem's granularity: 50 ms on filesystems
with sub-second timestamps (Linux updates them once per clock tick, at most
10 ms), 2 s where timestamps fall on whole seconds (FAT, HFS+, ext3, some
network filesystems). So a skill edited in the last moment costs a full
re-check per call for that moment, and is cached after. A filesystem whose
clock runs more than the window behind this machine's (a skewed NFS
server) can hide a same-size same-tick change; that is the residual risk.
"""

from __future__ import annotations

import os
import time

StatKey = tuple[int, int, int, int, int]

RACY_WINDOW_NS = 50_000_000
COARSE_RACY_WINDOW_NS = 2_000_000_000
_SECOND_NS = 1_000_000_000


def stat_key(path: str | os.PathLike[str]) -> StatKey | None:
    """(device, inode, size, mtime_ns, ctime_ns) following symlinks; None if it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return key_of(st)


def key_of(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def is_racy(key: StatKey | None, now_ns: int) -> bool:
    """True when ``key``'s timestamps are too recent to tell a later same-tick change apart."""
    if key is None:
        return False
    newest = max(key[3], key[4])
    window = COARSE_RACY_WINDOW_NS if newest % _SECOND_NS == 0 else RACY_WINDOW_NS
    return now_ns - newest < window


class Fingerprint:
    """The stat keys of the paths one result was computed from.

    Create it *before* looking at the files, so ``started_ns`` is no later
    than any stat taken for it.
    """

    __slots__ = ("entries", "racy", "started_ns")

    def __init__(self) -> None:
        self.started_ns = time.time_ns()
        self.entries: list[tuple[str, StatKey | None]] = []
        self.racy = False

    def add(self, path: str | os.PathLike[str], key: StatKey | None = None, *, stat: bool = True) -> None:
        """Watch ``path`` (stat it now unless ``key`` is given or ``stat`` is False)."""
        if key is None and stat:
            key = stat_key(path)
        if is_racy(key, self.started_ns):
            self.racy = True
        self.entries.append((os.fspath(path), key))

    def still_valid(self) -> bool:
        """Every watched path stats as it did (a racy fingerprint never is)."""
        if self.racy:
            return False
        return all(stat_key(path) == key for path, key in self.entries)
