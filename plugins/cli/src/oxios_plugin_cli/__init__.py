"""Oxios CLI channel: `oxios chat` in a terminal (streaming, /new, /sessions, /switch, /persona, /cancel)."""
