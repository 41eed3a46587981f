"""Logging: a rotated file under OXIOS_HOME/logs, secrets redacted on the way out."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from pathlib import Path

LOG_FILE = "oxios.log"

# Shapes of credentials that must never reach a log line.
_SECRET_PATTERNS = [
    re.compile(r"sk-(?:ant-)?[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"),
    re.compile(r"\b\d{6,12}:[A-Za-z0-9_\-]{30,}\b"),  # Telegram bot tokens
    re.compile(r"oxt_[A-Za-z0-9_\-]{16,}"),  # Oxios API tokens, wherever they appear
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[REDACTED]", text)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """The rotated log file; when it cannot be written (a full disk), one line on stderr instead of a traceback per record."""

    _warned = False

    def handleError(self, record: logging.LogRecord) -> None:
        if self._warned:
            return
        self._warned = True
        err = sys.exc_info()[1]
        reason = getattr(err, "strerror", None) or err
        try:
            sys.stderr.write(f"oxios: cannot write the log file {self.baseFilename}: {reason}\n")
        except (OSError, ValueError):
            pass


def setup(log_dir: Path, level: str = "info", *, to_stderr: bool = False) -> Path:
    """Send logs to ``log_dir/oxios.log`` (5 MB x 5, rotated) and optionally stderr."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_FILE
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_oxios", False):
            root.removeHandler(handler)
    fmt = RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = LogFileHandler(path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
    file_handler.setFormatter(fmt)
    file_handler._oxios = True  # type: ignore[attr-defined]
    root.addHandler(file_handler)
    if to_stderr:
        stream = logging.StreamHandler()
        stream.setFormatter(fmt)
        stream._oxios = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    set_level(level)
    return path


CHATTY_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "telegram", "discord", "asyncio")


def set_level(level: str) -> None:
    """The root logger's level (``kernel.log_level``); also on a live config reload."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # Chatty libraries stay at warning unless we are debugging.
    chatty = logging.WARNING if root.level > logging.DEBUG else logging.NOTSET
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(chatty)
