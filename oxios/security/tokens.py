"""API tokens: created once, stored only as hashes, compared in constant time.

Tokens live in ``OXIOS_HOME/secrets/api_tokens.json`` (mode 0600), written
atomically. A token is ``oxt_`` plus 32 random bytes; only its SHA-256 is
kept (a slow KDF buys nothing for 256 random bits). The web plugin calls
:meth:`TokenStore.verify` when ``security.auth_enabled`` is on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from ..config import write_atomic
from ..kernel import Conflict, Invalid

PREFIX = "oxt_"
FILE_NAME = "api_tokens.json"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenStore:
    """The ``tokens`` service (also used directly by the CLI)."""

    def __init__(self, secrets_dir: Path, *, kernel: Any = None) -> None:
        self.path = Path(secrets_dir) / FILE_NAME
        self.kernel = kernel
        self._cache: tuple[tuple[int, int, int], list[dict[str, Any]]] | None = None

    def _load(self) -> list[dict[str, Any]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        # Another process (the CLI) may replace the file: key the cache on its identity too.
        key = (st.st_mtime_ns, st.st_ino, st.st_size)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        data = json.loads(self.path.read_text(encoding="utf-8") or "[]")
        self._cache = (key, data)
        return data

    def _save(self, tokens: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        write_atomic(self.path, json.dumps(tokens, indent=2), mode=0o600)
        self._cache = None

    def _audit(self, action: str, resource: str, allowed: bool, reason: str, **meta: Any) -> None:
        audit = self.kernel.services.get("audit") if self.kernel is not None else None
        if audit is not None:
            audit.append("api", action, resource, allowed, reason, meta)

    def create(self, name: str, role: str = "user") -> dict[str, Any]:
        """A new token; the returned ``token`` is shown once and never stored."""
        name = name.strip()
        if not name:
            raise Invalid("a token needs a name")
        tokens = self._load()
        if any(t["name"] == name for t in tokens):
            raise Conflict(f"a token named {name!r} already exists; revoke it first")
        token = PREFIX + secrets.token_urlsafe(32)
        record = {"id": uuid.uuid4().hex[:12], "name": name, "role": role, "hash": _digest(token), "created": time.time()}
        self._save([*tokens, record])
        self._audit("auth.token_created", name, True, f"token {name} created for role {role}", role=role)
        return {**_public(record), "token": token}

    def list(self) -> list[dict[str, Any]]:
        return [_public(t) for t in self._load()]

    def revoke(self, name_or_id: str) -> dict[str, Any]:
        tokens = self._load()
        keep = [t for t in tokens if name_or_id not in (t["name"], t["id"])]
        if len(keep) == len(tokens):
            from ..kernel import NotFound

            raise NotFound(f"no token {name_or_id!r}")
        gone = next(t for t in tokens if name_or_id in (t["name"], t["id"]))
        self._save(keep)
        self._audit("auth.token_revoked", gone["name"], True, f"token {gone['name']} revoked")
        return _public(gone)

    def identify(self, token: str | None) -> dict[str, Any] | None:
        """The public record (id, name, role) of a valid token, else None; every failure is audited.

        Servers use it to run a caller's work under the token's role and name it in the audit chain.
        """
        if not token:
            self._audit("auth.failure", "api", False, "no token presented")
            return None
        digest = _digest(token)
        found = None
        for record in self._load():
            # Compare with every record so timing does not reveal which one matched.
            if hmac.compare_digest(digest, record["hash"]):
                found = record
        if found is None:
            self._audit("auth.failure", "api", False, "unknown or revoked token")
            return None
        return _public(found)

    def verify(self, token: str | None) -> str | None:
        """The role of a valid token, else None (see :meth:`identify`)."""
        record = self.identify(token)
        return record["role"] if record is not None else None

    def status(self) -> dict[str, Any]:
        return {"healthy": True, "detail": None, "tokens": len(self._load())}


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "hash"}


def start(kernel: Any) -> TokenStore:
    store = TokenStore(kernel.paths.secrets, kernel=kernel)
    kernel.expose("tokens.list", store.list)
    return store
