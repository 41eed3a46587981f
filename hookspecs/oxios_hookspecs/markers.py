"""The one name Oxios uses everywhere: hook markers for project ``oxios``."""

from __future__ import annotations

import pluggy

PROJECT = "oxios"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
