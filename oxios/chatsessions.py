"""The session of each chat, and the slash commands that move between sessions.

- :class:`ChatSessions`: a chat (or a forum topic / thread) maps to a session;
  ``/new``, ``/sessions``, ``/switch`` move between sessions of that chat.
- :func:`parse_command` and :func:`handle_command`: the shared slash commands.
"""

from __future__ import annotations

import re
import time
from typing import Any

from oxios_hookspecs import new_id

from .plugins import resolve

HELP_TEXT = (
    "/new [name] start a new session\n"
    "/sessions list this chat's sessions\n"
    "/switch ID switch to a session (a prefix of its id is enough)\n"
    "/cancel stop the running answer\n"
    "/status show Oxios's status\n"
    "/persona NAME answer as another persona\n"
    "/help this text"
)


# ---------------------------------------------------------------------------
# sessions per chat
# ---------------------------------------------------------------------------


class ChatSessions:
    """Session of each chat key (``chat`` or ``chat/thread``), persisted in the state store."""

    def __init__(self, kernel: Any, channel: str) -> None:
        self.kernel = kernel
        self.channel = channel
        self.namespace = f"chat.{channel}"

    def _entry(self, chat_key: str) -> dict[str, Any]:
        return self.kernel.state.kv_get(self.namespace, chat_key, {"current": None, "sessions": [], "persona": None})

    def _save(self, chat_key: str, entry: dict[str, Any]) -> None:
        self.kernel.state.kv_set(self.namespace, chat_key, entry)

    def current(self, chat_key: str) -> str | None:
        return self._entry(chat_key)["current"]

    def persona(self, chat_key: str) -> str | None:
        return self._entry(chat_key).get("persona")

    def remember(self, chat_key: str, session_id: str, title: str = "") -> None:
        """Record the session the gateway used (or created) for this chat."""
        entry = self._entry(chat_key)
        if not any(s["id"] == session_id for s in entry["sessions"]):
            entry["sessions"].append({"id": session_id, "title": title, "created": time.time()})
        entry["current"] = session_id
        self._save(chat_key, entry)

    def ensure(self, chat_key: str, first_message: str = "") -> str:
        """The chat's current session id, choosing a new one (titled from /new or the message) if none."""
        current = self.current(chat_key)
        if current is None:
            current = new_id()
            self.remember(chat_key, current, title=self.pending_title(chat_key) or first_message[:40])
        return current

    def new(self, chat_key: str, title: str = "") -> None:
        """Start afresh: the next message creates a new session."""
        entry = self._entry(chat_key)
        entry["current"] = None
        entry["pending_title"] = title
        self._save(chat_key, entry)

    def pending_title(self, chat_key: str) -> str:
        return self._entry(chat_key).get("pending_title", "")

    def sessions(self, chat_key: str) -> list[dict[str, Any]]:
        return list(self._entry(chat_key)["sessions"])

    def switch(self, chat_key: str, prefix: str) -> dict[str, Any]:
        """Switch to the one session of this chat whose id starts with ``prefix``."""
        entry = self._entry(chat_key)
        hits = [s for s in entry["sessions"] if s["id"].startswith(prefix.strip())]
        if not prefix.strip() or not hits:
            raise LookupError(f"no session of this chat starts with {prefix!r}; /sessions lists them")
        if len(hits) > 1:
            raise LookupError(f"{prefix!r} matches {len(hits)} sessions; type more of the id")
        entry["current"] = hits[0]["id"]
        self._save(chat_key, entry)
        return hits[0]

    def set_persona(self, chat_key: str, name: str | None) -> None:
        entry = self._entry(chat_key)
        entry["persona"] = name
        self._save(chat_key, entry)

    def chat_of_session(self, session_id: str) -> str | None:
        """The chat key that owns ``session_id`` (for approvals and proactive messages)."""
        for key, entry in self.kernel.state.kv_items(self.namespace).items():
            if any(s["id"] == session_id for s in entry.get("sessions", [])):
                return key
        return None


def parse_command(text: str, bot_name: str = "") -> tuple[str, str] | None:
    """``/switch@oxios_bot abc`` -> ("switch", "abc"); not a command -> None."""
    match = re.match(r"^/([A-Za-z_]+)(?:@(\w+))?(?:\s+(.*))?$", text.strip(), re.S)
    if not match:
        return None
    if match.group(2) and bot_name and match.group(2).lower() != bot_name.lower():
        return None  # addressed to another bot in a group
    return match.group(1).lower(), (match.group(3) or "").strip()


async def handle_command(kernel: Any, sessions: ChatSessions, chat_key: str, command: str, arg: str) -> str | None:
    """Answer a shared slash command; ``None`` when it is not one of ours."""
    if command in ("help", "start"):
        return HELP_TEXT
    if command == "new":
        sessions.new(chat_key, arg)
        return "New session started" + (f": {arg}" if arg else "") + ". Your next message begins it."
    if command == "sessions":
        items = sessions.sessions(chat_key)
        if not items:
            return "No sessions yet in this chat."
        current = sessions.current(chat_key)
        return "\n".join(f"{'* ' if s['id'] == current else '  '}{s['id'][:8]} {s.get('title') or ''}".rstrip() for s in items)
    if command == "switch":
        try:
            hit = sessions.switch(chat_key, arg)
        except LookupError as err:
            return str(err)
        return f"Switched to session {hit['id'][:8]}."
    if command == "cancel":
        current = sessions.current(chat_key)
        gateway = kernel.services.get("gateway")
        if current and gateway is not None and await resolve(gateway.cancel(current)):
            return "Cancelled."
        return "Nothing is running."
    if command == "status":
        st = kernel.status()
        return f"Oxios {st['version']}: {st['status']}, up {st['uptime']}, plugins: {', '.join(st['plugins']) or 'none'}"
    if command == "persona":
        if not arg:
            return f"Persona: {sessions.persona(chat_key) or 'default'}. Use /persona NAME to change it."
        personas = kernel.services.get("personas")
        if personas is not None:
            names = {p["name"].lower() for p in await resolve(personas.list())}
            if arg.lower() not in names:
                return f"No persona named {arg!r}. Known: {', '.join(sorted(names))}"
        sessions.set_persona(chat_key, arg)
        return f"Persona set to {arg}."
    return None
