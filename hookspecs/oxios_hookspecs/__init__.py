"""The Oxios plugin contract.

Plugins import from here and from ``oxios``'s public names only::

    from oxios_hookspecs import hookimpl

    @hookimpl
    def register_tools(register):
        register(my_tool, tier="read")
"""

from __future__ import annotations

from . import channels, lifecycle, memory, policies, providers, schedulers, surfaces, tools
from .markers import PROJECT, hookimpl, hookspec
from .protocols import Channel, Embedder, Gateway, MemoryBackend, Policy, Provider, Scheduler, Tool
from .types import *  # noqa: F403
from .types import __all__ as _types_all

SPEC_MODULES = (channels, tools, providers, memory, schedulers, policies, lifecycle, surfaces)
"""Every module of hook specs, one per area, in the order of the docs."""

__version__ = "0.1.0"

__all__ = [
    "PROJECT",
    "SPEC_MODULES",
    "Channel",
    "Embedder",
    "Gateway",
    "MemoryBackend",
    "Policy",
    "Provider",
    "Scheduler",
    "Tool",
    "hookimpl",
    "hookspec",
    *_types_all,
]
