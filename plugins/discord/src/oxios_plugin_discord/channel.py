"""The Discord channel: discord.py gateway client, streamed edits, approval buttons, files."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from oxios import ChatChannel, ChatSettings, Inbound, ReplyStreamer, split_message
from oxios import chat_authorize as authorize
from oxios_hookspecs import Attachment, OutgoingMessage

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000


class DiscordSettings(ChatSettings, kw_only=True, forbid_unknown_fields=True):
    """``[channels.discord]`` (the shared chat settings plus these)."""

    token_env: str = "DISCORD_BOT_TOKEN"
    allowed_guilds: list[int | str] = []
    allowed_channels: list[int | str] = []
    # Where Discord is: default Discord itself; set both for a local proxy (or the test fake).
    api_base: str = ""
    gateway_url: str = ""
    max_file_mb: float = 8.0
    guild_ready_timeout_secs: float = 2.0


class DiscordChannel(ChatChannel):
    name = "discord"
    settings: DiscordSettings

    def __init__(self, kernel: Any, settings: DiscordSettings, token: str) -> None:
        super().__init__(kernel, settings, token)
        self.client: Any = None

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
        self._tasks.append(asyncio.create_task(self.watch_approvals(), name="discord-approvals"))

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
        self.cancel_inflight()
        if self.client is not None and not self.client.is_closed():
            await self.client.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.state = "stopped"

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

    @property
    def bot_name(self) -> str:
        return self.client.user.name if self.client is not None and self.client.user else ""

    async def on_message(self, message: Any) -> None:
        if message.author.bot or (self.client.user and message.author.id == self.client.user.id):
            return
        chat_key = str(message.channel.id)  # a thread is a channel of its own: its own session
        if not self._place_allowed(message):
            authorize(self.kernel, self.name, str(message.author.id), [], name=str(message.author), where=f"channel {chat_key}")
            return
        inbound = Inbound(
            chat_key=chat_key,
            user_id=str(message.author.id),
            user_name=str(message.author),
            text=message.content or "",
            chat_id=chat_key,
            thread_id=chat_key if getattr(message.channel, "parent_id", None) else "",
        )

        async def reply(text: str) -> Any:
            return await self._send(message.channel, text)

        files = (lambda: self._save_files(message.attachments, chat_key, reply)) if message.attachments else None
        await self.receive(inbound, reply, files)

    def streamer(self, inbound: Inbound) -> ReplyStreamer:
        channel = self.client.get_channel(int(inbound.chat_key)) or self.client.get_partial_messageable(int(inbound.chat_key))
        return ReplyStreamer(
            send=lambda t: self._send(channel, t), edit=self._edit, limit=MESSAGE_LIMIT, interval=self.settings.edit_interval_secs
        )

    async def _save_files(self, items: list[Any], chat_key: str, reply: Any) -> list[Attachment] | None:
        saved = []
        for item in items:
            if item.size > self.file_limit:
                await reply(
                    f"Sorry, {item.filename} is too large ({item.size / 1e6:.1f} MB); "
                    f"the limit is {self.settings.max_file_mb:g} MB."
                )
                return None
            target, why = await self.upload_target(chat_key, item.filename)
            if target is None:
                await reply(f"Sorry, I cannot store that file: {why}")
                return None
            try:
                data = await item.read()
            except Exception as err:
                log.warning("discord: download failed: %s", err)
                await reply(f"Sorry, I could not download {item.filename}.")
                return None
            if len(data) > self.file_limit:
                await reply(f"Sorry, {item.filename} is too large.")
                return None
            target.write_bytes(data)
            saved.append(self.attachment(target, item.content_type))
        return saved

    # -- approvals --------------------------------------------------------------

    async def offer_approval(self, chat_key: str, approval_id: str, text: str) -> None:
        channel = await self._channel(int(chat_key))
        await channel.send(text, view=self._approval_view(approval_id))

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
        done, answer = await self.answer_approval(str(user.id), str(user), verb, approval_id)
        if not done:
            await interaction.response.send_message(answer, ephemeral=True)
            return
        await interaction.response.edit_message(content=f"{interaction.message.content}\n\n{answer[:-1]} by {user}", view=None)

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

        target = await self.readable(path)
        return await channel.send(caption or None, file=discord.File(str(target), filename=target.name))

    async def _send(self, channel: Any, text: str) -> Any:
        return await channel.send(text[:MESSAGE_LIMIT])

    async def _edit(self, message: Any, text: str) -> Any:
        return await message.edit(content=text[:MESSAGE_LIMIT])
