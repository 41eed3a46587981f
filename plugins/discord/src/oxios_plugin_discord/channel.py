"""The Discord channel: discord.py gateway client, streamed edits, approval buttons, files."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import msgspec

from oxios.chatkit import ChatSessions, ReplyStreamer, authorize, handle_command, parse_command, split_message
from oxios_hookspecs import Action, Attachment, IncomingMessage, OutgoingMessage

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000


class DiscordSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[channels.discord]``."""

    enabled: bool = True
    token: str = ""
    token_env: str = "DISCORD_BOT_TOKEN"
    allowed_users: list[int | str] = []
    allowed_guilds: list[int | str] = []
    allowed_channels: list[int | str] = []
    refusal_message: str = ""
    pairing: bool = False
    # Where Discord is: default Discord itself; set both for a local proxy (or the test fake).
    api_base: str = ""
    gateway_url: str = ""
    max_file_mb: float = 8.0
    edit_interval_secs: float = 1.0
    guild_ready_timeout_secs: float = 2.0


class DiscordChannel:
    name = "discord"
    supports_streaming = True

    def __init__(self, kernel: Any, settings: DiscordSettings, token: str) -> None:
        self.kernel = kernel
        self.settings = settings
        self._token = token
        self.sessions = ChatSessions(kernel, self.name)
        self.client: Any = None
        self.gateway: Any = None
        self.state = "stopped"
        self.detail = ""
        self._tasks: list[asyncio.Task[Any]] = []
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    # -- lifecycle ------------------------------------------------------------

    async def start(self, gateway: Any) -> None:
        import discord

        self.gateway = gateway
        # discord.py keeps its API root and gateway on class attributes (it sets them the same way itself).
        if self.settings.api_base:
            discord.http.Route.BASE = self.settings.api_base.rstrip("/")
        if self.settings.gateway_url:
            import yarl

            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.settings.gateway_url)
        intents = discord.Intents(guilds=True, guild_messages=True, dm_messages=True, message_content=True)
        self._intents = intents
        self.client = self._fresh_client()
        self.state = "connecting"
        self._tasks.append(asyncio.create_task(self._run(), name="discord-client"))
        self._tasks.append(asyncio.create_task(self._watch_approvals(), name="discord-approvals"))

    async def _run(self) -> None:
        import discord

        delay = 1.0
        while True:
            try:
                # discord.py reconnects the gateway itself (with backoff); this loop covers login failures.
                await self.client.start(self._token, reconnect=True)
                return
            except discord.LoginFailure as err:
                self.state, self.detail = "error", f"invalid bot token: {err}"
                log.error("discord: %s", self.detail)
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.state, self.detail = "connecting", f"{type(err).__name__}: {err}"
                log.warning("discord: %s; retrying in %.0fs", self.detail, delay)
                if not self.client.is_closed():
                    await self.client.close()
                self.client = self._fresh_client()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    def _fresh_client(self) -> Any:
        import discord

        client = discord.Client(intents=self._intents, guild_ready_timeout=self.settings.guild_ready_timeout_secs)
        client.event(self.on_ready)
        client.event(self.on_message)
        client.event(self.on_disconnect)
        return client

    async def on_ready(self) -> None:
        self.state, self.detail = "running", str(self.client.user)
        self.kernel.publish("channel.connected", channel=self.name, bot=str(self.client.user))

    async def on_disconnect(self) -> None:
        if self.state == "running":
            self.state, self.detail = "reconnecting", "gateway connection lost"

    async def stop(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self.client is not None and not self.client.is_closed():
            await self.client.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.state = "stopped"

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail}

    # -- incoming -------------------------------------------------------------

    def _place_allowed(self, message: Any) -> bool:
        if message.guild is None:
            return True  # a DM: the sender check decides
        guilds = {str(g) for g in self.settings.allowed_guilds}
        if guilds and str(message.guild.id) not in guilds:
            return False
        channels = {str(c) for c in self.settings.allowed_channels}
        parent = getattr(message.channel, "parent_id", None)
        return not channels or str(message.channel.id) in channels or (parent is not None and str(parent) in channels)

    async def on_message(self, message: Any) -> None:
        if message.author.bot or (self.client.user and message.author.id == self.client.user.id):
            return
        chat_key = str(message.channel.id)  # a thread is a channel of its own: its own session
        if not self._place_allowed(message):
            authorize(self.kernel, self.name, str(message.author.id), [], name=str(message.author), where=f"channel {chat_key}")
            return
        ok, code = authorize(self.kernel, self.name, str(message.author.id), [str(u) for u in self.settings.allowed_users],
                             use_pairing=self.settings.pairing, name=str(message.author), where=chat_key)
        if not ok:
            if code:
                await self._send(message.channel, f"To talk to Oxios, ask its owner to run:\n`oxios pairing approve {code}`")
            elif self.settings.refusal_message:
                await self._send(message.channel, self.settings.refusal_message)
            return
        text = message.content or ""
        command = parse_command(text, self.client.user.name if self.client.user else "")
        if command is not None and command[0] == "cancel" and chat_key in self._inflight:
            self._inflight[chat_key].cancel()
            await self._send(message.channel, "Cancelled.")
            return
        if command is not None:
            reply = await handle_command(self.kernel, self.sessions, chat_key, *command)
            if reply is not None:
                await self._send(message.channel, reply)
                return
        attachments: list[Attachment] = []
        for item in message.attachments:
            saved = await self._save_file(item, chat_key, message.channel)
            if saved is not None:
                attachments.append(saved)
                text = (text + "\n\n" if text else "") + f"[The user sent a file; it is saved in the workspace at {saved.path}]"
        if not text.strip():
            return
        lock = self._chat_locks.setdefault(chat_key, asyncio.Lock())
        async with lock:  # one answer at a time per channel or thread; threads run side by side
            task = asyncio.create_task(self._answer(message, chat_key, text, attachments))
            self._inflight[chat_key] = task
            try:
                await asyncio.wait({task})
            finally:
                self._inflight.pop(chat_key, None)
            if not task.cancelled() and task.exception() is not None:
                log.error("discord: answering failed", exc_info=task.exception())

    async def _answer(self, message: Any, chat_key: str, text: str, attachments: list[Attachment]) -> None:
        channel = message.channel
        streamer = ReplyStreamer(
            send=lambda t: self._send(channel, t),
            edit=self._edit,
            limit=MESSAGE_LIMIT,
            interval=self.settings.edit_interval_secs,
        )
        await streamer.start()
        incoming = IncomingMessage(
            content=text, channel=self.name, user_id=str(message.author.id), chat_id=str(channel.id),
            thread_id=str(channel.id) if getattr(channel, "parent_id", None) else "",
            session_id=self.sessions.ensure(chat_key, text), persona=self.sessions.persona(chat_key), attachments=attachments,
        )
        try:
            result = await self.gateway.submit(incoming, on_token=streamer.on_token)
        except asyncio.CancelledError:
            await asyncio.shield(streamer.finish((streamer.text + "\n\n(cancelled)").strip()))
            raise
        final = result.response or (f"Sorry, that failed: {result.error}" if result.error else "")
        await streamer.finish(final)

    async def _save_file(self, item: Any, chat_key: str, channel: Any) -> Attachment | None:
        limit = int(self.settings.max_file_mb * 1024 * 1024)
        if item.size > limit:
            await self._send(channel, f"Sorry, {item.filename} is too large ({item.size / 1e6:.1f} MB); "
                                      f"the limit is {self.settings.max_file_mb:g} MB.")
            return None
        folder = self.kernel.paths.workspace / "uploads" / "discord" / re.sub(r"[^\w.-]", "_", chat_key)
        safe = re.sub(r"[^\w.-]", "_", Path(item.filename).name).lstrip(".") or "file"
        target = folder / safe
        ctx = self.kernel.context(session_id=self.sessions.current(chat_key) or "")
        verdict = await self.kernel.check_action(Action(kind="path", path=str(target), access="write"), ctx)
        if verdict.verdict != "allow":
            await self._send(channel, f"Sorry, I cannot store that file: {verdict.reason}")
            return None
        folder.mkdir(parents=True, exist_ok=True)
        try:
            data = await item.read()
        except Exception as err:
            log.warning("discord: download failed: %s", err)
            await self._send(channel, f"Sorry, I could not download {item.filename}.")
            return None
        if len(data) > limit:
            await self._send(channel, f"Sorry, {item.filename} is too large.")
            return None
        target.write_bytes(data)
        return Attachment(name=safe, path=str(target.relative_to(self.kernel.paths.workspace)),
                          mime=item.content_type or "application/octet-stream", size=len(data))

    # -- approvals --------------------------------------------------------------

    async def _watch_approvals(self) -> None:
        with self.kernel.subscribe(types={"approval.requested"}, maxsize=256) as sub:
            async for event in sub:
                try:
                    await self._offer_approval(event.data)
                except Exception:
                    log.exception("discord: could not post an approval request")

    async def _offer_approval(self, data: dict[str, Any]) -> None:
        session_id = data.get("session_id") or ""
        chat_key = self.sessions.chat_of_session(session_id) if session_id else None
        if chat_key is None or self.client is None:
            return
        channel = await self._channel(int(chat_key))
        approval_id = data.get("id") or data.get("approval_id")
        text = f"Approval needed: {data.get('tool') or data.get('action', '')} {data.get('resource', '')}".strip()
        if data.get("reason"):
            text += f"\nWhy: {data['reason']}"
        await channel.send(text, view=self._approval_view(str(approval_id)))

    def _approval_view(self, approval_id: str) -> Any:
        import discord

        channel = self

        class Choice(discord.ui.Button):
            def __init__(self, verb: str, style: Any) -> None:
                super().__init__(label=verb.capitalize(), style=style, custom_id=f"oxios:{verb}:{approval_id}")
                self.verb = verb

            async def callback(self, interaction: Any) -> None:
                await channel._resolve(interaction, self.verb, approval_id)

        view = discord.ui.View(timeout=None)
        view.add_item(Choice("approve", discord.ButtonStyle.success))
        view.add_item(Choice("reject", discord.ButtonStyle.danger))
        return view

    async def _resolve(self, interaction: Any, verb: str, approval_id: str) -> None:
        user = interaction.user
        ok, _ = authorize(self.kernel, self.name, str(user.id), [str(u) for u in self.settings.allowed_users],
                          use_pairing=self.settings.pairing, name=str(user), where="approval")
        if not ok:
            await interaction.response.send_message("You are not allowed to answer this.", ephemeral=True)
            return
        approvals = self.kernel.services.get("approvals")
        try:
            if approvals is None:
                raise RuntimeError("approvals are not available")
            result = getattr(approvals, verb)(approval_id, by=f"discord:{user.id}")
            if asyncio.iscoroutine(result):
                await result
        except Exception as err:
            await interaction.response.send_message(f"Could not {verb}: {err}", ephemeral=True)
            return
        done = f"{interaction.message.content}\n\n{'Approved' if verb == 'approve' else 'Rejected'} by {user}"
        await interaction.response.edit_message(content=done, view=None)

    # -- outgoing -------------------------------------------------------------

    async def _channel(self, channel_id: int) -> Any:
        return self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)

    async def send(self, outgoing: OutgoingMessage) -> list[int]:
        """Proactive message (cron, other agents). Raises when delivery failed."""
        if self.client is None or self.state != "running":
            raise RuntimeError(f"discord channel is not connected ({self.state}: {self.detail})")
        if not outgoing.chat_id:
            raise ValueError("discord delivery needs a chat_id (a channel or thread id)")
        channel = await self._channel(int(outgoing.thread_id or outgoing.chat_id))
        sent = [(await self._send(channel, chunk)).id for chunk in split_message(outgoing.content, MESSAGE_LIMIT)]
        for attachment in outgoing.attachments:
            sent.append((await self.send_file(channel, attachment.path)).id)
        return sent

    async def send_file(self, channel: Any, path: str, caption: str = "") -> Any:
        import discord

        target = Path(path)
        if not target.is_absolute():
            target = self.kernel.paths.workspace / target
        verdict = await self.kernel.check_action(Action(kind="path", path=str(target), access="read"), self.kernel.context())
        if verdict.verdict != "allow":
            raise PermissionError(verdict.reason)
        return await channel.send(caption or None, file=discord.File(str(target), filename=target.name))

    async def _send(self, channel: Any, text: str) -> Any:
        return await channel.send(text[:MESSAGE_LIMIT])

    async def _edit(self, message: Any, text: str) -> Any:
        return await message.edit(content=text[:MESSAGE_LIMIT])
