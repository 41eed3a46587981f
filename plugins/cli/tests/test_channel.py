"""The chat loop driven through a pipe, with a scripted model."""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

from oxios_plugin_cli.channel import CliChannel


class PipeIn:
    """A stdin whose lines a test writes while the loop runs."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.file = os.fdopen(self.read_fd, "r")

    def send(self, text: str) -> None:
        os.write(self.write_fd, text.encode())

    def close(self) -> None:
        os.close(self.write_fd)


async def test_chat_loop_commands_and_turns(scripted_kernel: Any, scripted_provider: Any) -> None:
    scripted_provider.enqueue_text("Hello, Ada.")
    scripted_provider.enqueue_text("You are Ada.")
    scripted_provider.enqueue_text("Fresh start.")
    stdin, out = PipeIn(), io.StringIO()
    channel = CliChannel(scripted_kernel, stdin=stdin.file, stdout=out)
    await channel.start(scripted_kernel.service("gateway"))
    stdin.send("I am Ada\nwho am I?\n/sessions\n/persona Review\n/persona nobody\n/new\nhello\n/bogus\n")
    stdin.close()
    code = await asyncio.wait_for(channel.run(), timeout=20)
    await channel.stop()
    assert code == 0
    text = out.getvalue()
    assert "Hello, Ada." in text and "You are Ada." in text and "Fresh start." in text
    assert "persona: Review" in text and "no persona 'nobody'" in text
    assert "unknown command /bogus" in text
    # the second message continued the first session; /new started another one
    assert [m.text for m in scripted_provider.requests[1].messages] == ["I am Ada", "Hello, Ada.", "who am I?"]
    assert len(scripted_provider.requests[2].messages) == 1
    assert "You are Review" in scripted_provider.requests[2].system
    sessions = scripted_kernel.service("sessions").list()
    assert len(sessions) == 2 and sum(s["message_count"] for s in sessions) == 6


async def test_cancel_command_stops_a_running_turn(scripted_kernel: Any, scripted_provider: Any) -> None:
    scripted_provider.enqueue_hang("thinking ")
    scripted_provider.enqueue_text("Second answer.")
    stdin, out = PipeIn(), io.StringIO()
    channel = CliChannel(scripted_kernel, stdin=stdin.file, stdout=out)
    await channel.start(scripted_kernel.service("gateway"))
    runner = asyncio.create_task(channel.run())
    stdin.send("think forever\n")
    while "thinking" not in out.getvalue():
        await asyncio.sleep(0.01)
    stdin.send("/cancel\nnext question\n")
    stdin.close()
    assert await asyncio.wait_for(runner, timeout=20) == 0
    await channel.stop()
    text = out.getvalue()
    assert "[cancelled]" in text and "Second answer." in text
    assert text.index("[cancelled]") < text.index("Second answer.")
    [agent_killed, agent_done] = sorted(scripted_kernel.service("agents").list(), key=lambda a: a["created"])
    assert agent_killed["status"] == "killed" and agent_done["status"] == "completed"
