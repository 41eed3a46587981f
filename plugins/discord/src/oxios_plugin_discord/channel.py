"""The Discord channel: discord.py gateway client, streamed edits, buttons, files."""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import re
from typing import Any

from oxios import ChatChannel, ChatSettings, Inbound, ReplyStreamer, split_message
from oxios_hookspecs import Attachment

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
# A button carries everything its press needs in its custom_id (Discord allows 100 characters):
# the approval id, or the form, question and choice. Nothing about it is kept in memory.
APPROVAL_BUTTON = re.compile(r"oxios:(?P<verb>approve|reject):(?P<approval_id>[\w-]{1,64})")
QUESTION_BUTTON = re.compile(r"oxios:q:(?P<form_id>[\w-]{1,40}):(?P<index>\d{1,2}):(?P<token>\d{1,3}|done)")


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
    outgoing_file_limit = 10 * 1024 * 1024  # what Discord accepts in a server without boosts

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
            except discord.PrivilegedIntentsRequired:
                self.state, self.detail = (
                    "error",
                    "enable the Message Content intent for this bot in the Discord developer portal",
                )
                log.error("discord: %s", self.detail)
                await self.client.close()
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

        client = discord.Client(
            intents=self._intents,
            guild_ready_timeout=self.settings.guild_ready_timeout_secs,
            # An agent's text never pings @everyone, roles or people, whatever a prompt talked it into.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        client.event(self.on_ready)
        client.event(self.on_interaction)
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
            self.refuse_place(str(message.author.id), str(message.author), f"channel {chat_key}")
            return
        inbound = Inbound(
            chat_key=chat_key,
            user_id=str(message.author.id),
            user_name=str(message.author),
            text=message.content or "",
            chat_id=chat_key,
            thread_id=chat_key if getattr(message.channel, "parent_id", None) else "",
            private=message.guild is None,
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
            await asyncio.to_thread(target.write_bytes, data)
            saved.append(self.attachment(target, item.content_type))
        return saved

    # -- buttons: approvals and interview questions ------------------------------------

    async def on_interaction(self, interaction: Any) -> None:
        """A button press, resolved from its custom_id alone.

        Presses are not routed through discord.py's in-memory view store:
        a button posted before a daemon restart (or pressed on a message whose
        buttons were just removed) is handled the same way as a fresh one.
        """
        import discord

        if interaction.type != discord.InteractionType.component:
            return
        custom_id = str((interaction.data or {}).get("custom_id", ""))
        if match := APPROVAL_BUTTON.fullmatch(custom_id):
            await self._resolve(interaction, match["verb"], match["approval_id"])
        elif match := QUESTION_BUTTON.fullmatch(custom_id):
            await self._on_question(interaction, match["form_id"], int(match["index"]), match["token"])
        elif custom_id.startswith("oxios:"):
            await interaction.response.send_message("Unknown button.", ephemeral=True)

    def _buttons(self, buttons: list[tuple[str, str, Any]]) -> Any:
        """A message's buttons as (label, custom_id, style): layout only, presses go to on_interaction."""
        import discord

        view = _layout_view()(timeout=None)
        for label, custom_id, style in buttons:
            view.add_item(discord.ui.Button(label=label[:80], style=style, custom_id=custom_id))
        return view

    async def offer_approval(self, chat_key: str, approval_id: str, text: str) -> None:
        channel = await self._channel(int(chat_key))
        await channel.send(text, view=self._approval_view(approval_id))

    def _approval_view(self, approval_id: str) -> Any:
        import discord

        return self._buttons(
            [
                ("Approve", f"oxios:approve:{approval_id}", discord.ButtonStyle.success),
                ("Reject", f"oxios:reject:{approval_id}", discord.ButtonStyle.danger),
            ]
        )

    async def _resolve(self, interaction: Any, verb: str, approval_id: str) -> None:
        user = interaction.user
        done, answer = await self.answer_approval(
            str(user.id), str(user), verb, approval_id, chat_key=str(interaction.channel_id)
        )
        if not done:
            await interaction.response.send_message(answer, ephemeral=True)
            return
        await interaction.response.edit_message(content=f"{interaction.message.content}\n\n{answer[:-1]} by {user}", view=None)

    def _question_view(self, form: Any, index: int) -> Any:
        import discord

        _, buttons = form.render(index)
        if not buttons:
            return None
        return self._buttons(
            [
                (
                    label,
                    f"oxios:q:{form.id}:{index}:{token}",
                    discord.ButtonStyle.primary if token == "done" else discord.ButtonStyle.secondary,
                )
                for label, token in buttons
            ]
        )

    async def offer_question(self, form: Any, index: int) -> None:
        channel = await self._channel(int(form.chat_key))
        text, _ = form.render(index)
        view = self._question_view(form, index)
        await (channel.send(text, view=view) if view is not None else channel.send(text))

    async def _on_question(self, interaction: Any, form_id: str, index: int, token: str) -> None:
        user = interaction.user
        press = self.press_question(str(user.id), str(user), str(interaction.channel_id), form_id, index, token)
        if not press.ok or press.form is None:
            await interaction.response.send_message(press.notice, ephemeral=True)
            return
        text, _ = press.form.render(index)
        await interaction.response.edit_message(content=text, view=self._question_view(press.form, index))
        if press.complete:
            await self.send_answers(press.form, str(user.id), str(user))

    # -- outgoing -------------------------------------------------------------

    async def _channel(self, channel_id: int) -> Any:
        return self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)

    def chat_key_for(self, chat_id: str, thread_id: str = "") -> str:
        return str(thread_id or chat_id).strip()  # a thread is a channel of its own

    async def post(self, chat_key: str, text: str, files: list[tuple[str, bytes]]) -> list[int]:
        """Text (split at 2000) then files, to a channel, thread or DM. Raises when delivery failed."""
        import discord

        channel = await self._channel(int(chat_key))
        sent = [(await self._send(channel, chunk)).id for chunk in split_message(text, MESSAGE_LIMIT)]
        for name, data in files:
            sent.append((await channel.send(file=discord.File(io.BytesIO(data), filename=name))).id)
        return sent

    async def _send(self, channel: Any, text: str) -> Any:
        return await channel.send(text[:MESSAGE_LIMIT])

    async def _edit(self, message: Any, text: str) -> Any:
        return await message.edit(content=text[:MESSAGE_LIMIT])


@functools.cache
def _layout_view() -> type:
    import discord

    class LayoutView(discord.ui.View):
        """Buttons to show; not dispatchable, so discord.py keeps no copy in memory and never routes presses to it."""

        def is_dispatchable(self) -> bool:
            return False

    return LayoutView
