"""The terminal channel: a read loop over stdin, streamed replies, slash commands.

Lines are read in a thread (so readline editing works on a terminal and a
pipe works too) and handed to the event loop. While a turn runs, the loop
keeps listening: ``/cancel`` (or Ctrl-C, through a SIGINT handler) cancels
the turn through ``gateway.cancel``; other lines wait their turn. Ctrl-C at
the prompt only reminds how to quit; Ctrl-D or ``/exit`` quits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections import deque
from typing import Any, TextIO

from oxios_hookspecs import IncomingMessage, OutgoingMessage

HELP = """commands:
  /new              start a new session
  /sessions         list recent sessions
  /switch ID        continue session ID (a unique prefix is enough)
  /persona NAME     answer as persona NAME (/persona alone lists them)
  /cancel           cancel the running turn (Ctrl-C does the same)
  /help             this help
  /exit             quit (Ctrl-D too)"""

EOF_MARK = object()


class CliChannel:
    """A Channel (name, supports_streaming, start, stop, send) bound to this terminal."""

    name = "cli"
    supports_streaming = True

    def __init__(
        self,
        kernel: Any,
        *,
        session_id: str | None = None,
        persona: str | None = None,
        model: str | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.kernel = kernel
        self.session_id = session_id
        self.persona = persona
        self.model = model
        self.stdin = stdin or sys.stdin
        self.out = stdout or sys.stdout
        self.gateway: Any = None
        self.interactive = self.stdin.isatty()
        self._lines: asyncio.Queue[Any] = asyncio.Queue()
        self._pending: deque[Any] = deque()
        self._turn: asyncio.Task[Any] | None = None
        self._cancelling: asyncio.Future[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- Channel protocol ------------------------------------------------------

    async def start(self, gateway: Any) -> None:
        self.gateway = gateway
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._read_stdin, name="oxios-chat-stdin", daemon=True).start()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self._loop.add_signal_handler(signal.SIGINT, self._on_interrupt)

    async def stop(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.remove_signal_handler(signal.SIGINT)

    async def send(self, outgoing: OutgoingMessage) -> None:
        """A proactive message (cron delivery, another channel's note): printed between turns."""
        self._print(f"\n[{outgoing.channel or 'oxios'}] {outgoing.content}")

    # -- input -------------------------------------------------------------------

    def _read_stdin(self) -> None:
        assert self._loop is not None
        while True:
            try:
                line = self.stdin.readline()
            except (OSError, ValueError):
                line = ""
            if not line:
                self._loop.call_soon_threadsafe(self._lines.put_nowait, EOF_MARK)
                return
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line.rstrip("\n"))

    def _on_interrupt(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._print("\n^C cancelling the turn ...")
            self._cancelling = asyncio.ensure_future(self._cancel_turn())
        else:
            self._print("\n(^C cancels a running turn; type /exit or press Ctrl-D to quit)")
            self._prompt()

    async def _next_line(self) -> Any:
        if self._pending:
            return self._pending.popleft()
        return await self._lines.get()

    # -- output ------------------------------------------------------------------

    def _print(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def _prompt(self) -> None:
        if self.interactive:
            self.out.write("you> ")
            self.out.flush()

    # -- the loop ----------------------------------------------------------------

    async def run(self, first: str | None = None) -> int:
        sessions = self.kernel.service("sessions")
        if self.session_id:
            self.session_id = self._find_session(self.session_id) or self.session_id
        else:
            # Created up front, so a cancel of the very first turn knows which session to stop.
            self.session_id = sessions.create(channel=self.name, persona=self.persona)["id"]
        if self.interactive:
            self._print("Oxios chat. /help for commands, Ctrl-C cancels a turn, Ctrl-D quits.")
        if first:
            await self._turn_for(first)
        while True:
            self._prompt()
            line = await self._next_line()
            if line is EOF_MARK:
                if self.interactive:
                    self._print()
                return 0
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if await self._command(text) == "exit":
                    return 0
                continue
            await self._turn_for(text)

    async def _turn_for(self, text: str) -> None:
        message = IncomingMessage(
            content=text,
            channel=self.name,
            session_id=self.session_id,
            persona=self.persona,
            interactive=self.interactive,
            metadata={"model": self.model} if self.model else {},
        )
        streamed: list[str] = []

        async def on_token(delta: str) -> None:
            if not streamed:
                self.out.write("oxios> " if self.interactive else "")
            streamed.append(delta)
            self.out.write(delta)
            self.out.flush()

        self._turn = asyncio.create_task(self.gateway.submit(message, on_token))
        try:
            while not self._turn.done():
                reader = asyncio.ensure_future(self._lines.get())
                done, _ = await asyncio.wait({self._turn, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    line = reader.result()
                    if isinstance(line, str) and line.strip() == "/cancel":
                        await self._cancel_turn()
                    else:
                        self._pending.append(line)  # typed ahead: handled after this turn
                else:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
                    # A line that arrived as the reader was cancelled is not lost.
            try:
                result = self._turn.result()
            except asyncio.CancelledError:
                self._print("\n[cancelled]")
                return
        finally:
            self._turn = None
        self.session_id = result.session_id
        if streamed:
            self._print()
        elif result.response:
            self._print(("oxios> " if self.interactive else "") + result.response)
        if result.error == "cancelled" or (result.error or "").startswith("cancel"):
            self._print("[cancelled]")
        elif result.error:
            self._print(f"[error] {result.error}")
        if result.space_tag and self.interactive:
            self._print(f"  {result.space_tag}")

    async def _cancel_turn(self) -> None:
        if self.session_id and not await self.gateway.cancel(self.session_id) and self._turn is not None:
            self._turn.cancel()  # nothing registered under the session yet: stop the submit itself

    # -- slash commands -------------------------------------------------------------

    async def _command(self, text: str) -> str | None:
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        sessions = self.kernel.service("sessions")
        if name in ("/exit", "/quit"):
            return "exit"
        if name == "/help":
            self._print(HELP)
        elif name == "/new":
            self.session_id = sessions.create(channel=self.name, persona=self.persona)["id"]
            self._print(f"new session {self.session_id}")
        elif name == "/sessions":
            rows = sessions.list(limit=20)
            if not rows:
                self._print("(no sessions)")
            for row in rows:
                mark = "*" if row["id"] == self.session_id else " "
                title = (row.get("title") or row.get("first_message") or "")[:50].replace("\n", " ")
                self._print(f"{mark} {row['id']}  {row['message_count']:>3} msgs  {title}")
        elif name == "/switch":
            if not arg:
                self._print("usage: /switch SESSION_ID")
            else:
                found = self._find_session(arg)
                if found is None:
                    self._print(f"no session matches {arg!r} (see /sessions)")
                else:
                    self.session_id = found
                    self._print(f"switched to {found}")
        elif name == "/persona":
            self._persona(arg)
        elif name == "/cancel":
            self._print("nothing is running")
        else:
            self._print(f"unknown command {name}; /help lists them")
        return None

    def _persona(self, arg: str) -> None:
        personas = self.kernel.service("personas")
        if not arg:
            for p in personas.list():
                mark = "*" if p["name"] == self.persona else " "
                self._print(f"{mark} {p['name']:<12} {p['description']}")
            return
        try:
            found = personas.get(arg)
        except LookupError as err:
            self._print(str(err).strip("'\""))
            return
        self.persona = found["name"]
        if self.session_id:
            with contextlib.suppress(LookupError):
                self.kernel.service("sessions").set_persona(self.session_id, self.persona)
        self._print(f"persona: {self.persona}")

    def _find_session(self, prefix: str) -> str | None:
        sessions = self.kernel.service("sessions")
        try:
            return sessions.get(prefix)["id"]
        except LookupError:
            pass
        rows = self.kernel.state.all("SELECT id FROM sessions WHERE id LIKE ? LIMIT 2", (prefix + "%",))
        return rows[0]["id"] if len(rows) == 1 else None
