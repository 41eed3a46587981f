"""`oxios chat` (the oxios-plugin-cli distribution) in a real pseudo-terminal against the fake OpenAI server."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import tomlkit


def _home(tmp_path: Path, server: Any) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    doc = tomlkit.document()
    for section, values in server.config().items():
        doc[section] = values
    (home / "config.toml").write_text(tomlkit.dumps(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS") and not k.endswith("_API_KEY")}
    env |= {"OXIOS_HOME": str(home), "OXIOS_LOAD_PLUGINS": "cli", "TERM": "dumb"}
    return env


class Terminal:
    """`oxios chat` on the slave side of a pty; the test types on the master side."""

    def __init__(self, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: its controlling terminal is the pty, so ^C becomes SIGINT
            os.execve(sys.executable, [sys.executable, "-m", "oxios", "chat"], env)
        self.output = ""

    def expect(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} never appeared; output so far:\n{self.output}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.output += os.read(self.fd, 4096).decode(errors="replace")
                except OSError:
                    break
        if text not in self.output:
            raise AssertionError(f"{text!r} never appeared; output:\n{self.output}")

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if ready:
                    self.output += os.read(self.fd, 4096).decode(errors="replace")
            except OSError:
                pass
        os.kill(self.pid, 9)
        raise AssertionError(f"oxios chat did not exit; output:\n{self.output}")


def test_chat_in_a_terminal_ctrl_c_cancels_the_turn_not_the_program(fake_openai: Any, tmp_path: Path) -> None:
    env = _home(tmp_path, fake_openai)
    fake_openai.enqueue_text("slow answer", delay=60)
    fake_openai.enqueue_text("Quick answer.")
    term = Terminal(env)
    try:
        term.expect("Oxios chat.")
        term.expect("you> ")
        term.type("take your time\n")
        deadline = time.monotonic() + 30
        while len(fake_openai.requests) < 1 and time.monotonic() < deadline:  # the model call is in flight
            time.sleep(0.02)
        term.type("\x03")  # Ctrl-C
        term.expect("[cancelled]")
        term.type("/sessions\n")
        term.expect("2 msgs")
        term.type("are you there?\n")
        term.expect("Quick answer.")
        term.type("\x04")  # Ctrl-D quits
        assert term.wait() == 0
    finally:
        try:
            os.kill(term.pid, 9)
        except ProcessLookupError:
            pass
    assert len(fake_openai.requests) == 2
    # the cancelled exchange stays in the history the model saw next
    assert "take your time" in str(fake_openai.requests[1]["messages"])


def test_chat_reads_piped_stdin(fake_openai: Any, tmp_path: Path) -> None:
    env = _home(tmp_path, fake_openai)
    fake_openai.enqueue_text("First reply.")
    fake_openai.enqueue_text("Second reply.")
    result = subprocess.run(
        [sys.executable, "-m", "oxios", "chat"], input="hello\n/new\nagain\n", env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "First reply."
    assert "new session" in result.stdout and "Second reply." in result.stdout
    assert len(fake_openai.requests[1]["messages"]) == 2  # system + the new session's single message


@pytest.mark.parametrize("argv", [["chat", "--help"]])
def test_chat_is_registered_by_the_plugin(argv: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS")} | {"OXIOS_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "oxios", *argv], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "/help lists commands" in result.stdout
