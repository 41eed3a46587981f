"""Shared pieces of the Ouroboros tests: interview replies a scripted model gives."""

from __future__ import annotations

# An interview reply that finds the request clear: no questions, the protocol goes straight on.
CLEAR = {"goal": 0.95, "constraints": 0.9, "criteria": 0.9, "questions": [], "assumptions": []}

# An interview reply that finds it vague: two questions (free text, single choice) and an assumption.
VAGUE = {
    "goal": 0.3,
    "constraints": 0.2,
    "criteria": 0.1,
    "questions": [
        {"text": "Which file name?", "kind": "free"},
        {"text": "Plain text or Markdown?", "kind": "single", "options": ["text", "markdown"]},
    ],
    "assumptions": ["the file is called notes.txt"],
}
