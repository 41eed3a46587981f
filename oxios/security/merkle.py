"""A Merkle tree over audit entry hashes (RFC 6962 shape, blake3 instead of SHA-256).

Leaves and inner nodes are hashed with different prefixes so a leaf can
never pose as a node. Inclusion proofs are the RFC 6962 audit paths.
"""

from __future__ import annotations

from blake3 import blake3


def leaf_hash(leaf: bytes) -> bytes:
    return blake3(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return blake3(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root(leaves: list[bytes]) -> bytes:
    """The tree root over raw leaves (an empty tree hashes the empty string)."""
    if not leaves:
        return blake3(b"").digest()
    level = [leaf_hash(leaf) for leaf in leaves]
    return _root_of_hashed(level)


def _root_of_hashed(hashed: list[bytes]) -> bytes:
    if len(hashed) == 1:
        return hashed[0]
    k = _split(len(hashed))
    return node_hash(_root_of_hashed(hashed[:k]), _root_of_hashed(hashed[k:]))


def inclusion_path(leaves: list[bytes], index: int) -> list[bytes]:
    """The audit path proving ``leaves[index]`` is in the tree over ``leaves``."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    return _path(index, [leaf_hash(leaf) for leaf in leaves])


def _path(index: int, hashed: list[bytes]) -> list[bytes]:
    if len(hashed) == 1:
        return []
    k = _split(len(hashed))
    if index < k:
        return [*_path(index, hashed[:k]), _root_of_hashed(hashed[k:])]
    return [*_path(index - k, hashed[k:]), _root_of_hashed(hashed[:k])]


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """Recompute the root from a leaf and its audit path (RFC 6962 section 2.1.1)."""
    if not 0 <= index < size:
        raise ValueError("index outside the tree")
    return _fold(leaf_hash(leaf), index, size, list(path))


def _fold(node: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    if size == 1:
        if path:
            raise ValueError("proof is longer than the tree is deep")
        return node
    if not path:
        raise ValueError("proof is too short")
    k = _split(size)
    sibling = path.pop()
    if index < k:
        return node_hash(_fold(node, index, k, path), sibling)
    return node_hash(sibling, _fold(node, index - k, size - k, path))


class Frontier:
    """The right edge of a growing tree: appending a leaf and reading the root cost O(log n).

    Holds the roots of the perfect subtrees that make up the tree (one per set
    bit of its size); folding them right to left gives the RFC 6962 root.
    """

    def __init__(self) -> None:
        self.size = 0
        self._nodes: list[tuple[int, bytes]] = []  # (height, hash), leftmost first

    def push(self, leaf: bytes) -> None:
        node, height = leaf_hash(leaf), 0
        while self._nodes and self._nodes[-1][0] == height:
            _, left = self._nodes.pop()
            node, height = node_hash(left, node), height + 1
        self._nodes.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._nodes:
            return blake3(b"").digest()
        acc = self._nodes[-1][1]
        for _, left in reversed(self._nodes[:-1]):
            acc = node_hash(left, acc)
        return acc
