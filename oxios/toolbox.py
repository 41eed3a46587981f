"""Tools: turning typed functions into tools, and the registry that holds them.

A tool is a typed function: its JSON schema comes from its type hints via
msgspec, its description from its docstring. Arguments from a model are
validated against the same types, so a bad call becomes a tool error the
model can correct, never a crash. A tool may declare a role capability it
needs (``capability="fork_agents"``); roles without it neither see nor call it.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from oxios_hookspecs import ActionContext, SafetyTier, ToolResult, ToolSpec

from .security.rbac import TOOL_CAPABILITIES

log = logging.getLogger(__name__)

_CONTEXT_PARAM = "context"


class FunctionTool:
    """A tool made from a typed (async or sync) function."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        tier: SafetyTier = "read",
        plugin: str = "",
        capability: str = "",
    ) -> None:
        self.fn = fn
        hints = typing.get_type_hints(fn, include_extras=True)
        sig = inspect.signature(fn)
        fields: list[Any] = []
        self._wants_context = False
        for pname, param in sig.parameters.items():
            if pname == _CONTEXT_PARAM:
                self._wants_context = True
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = hints.get(pname, Any)
            if param.default is inspect.Parameter.empty:
                fields.append((pname, annotation))
            else:
                fields.append((pname, annotation, param.default))
        self._args_type = msgspec.defstruct(f"{fn.__name__}_args", fields, kw_only=True, forbid_unknown_fields=True)
        schema = msgspec.json.schema(self._args_type)
        parameters = _inline_schema(schema)
        parameters.pop("title", None)
        doc = inspect.getdoc(fn) or ""
        self.spec = ToolSpec(
            name=name or fn.__name__,
            description=doc.strip(),
            parameters=parameters,
            tier=tier,
            plugin=plugin,
            capability=capability,
        )

    def parse_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate model-supplied arguments; raises ``msgspec.ValidationError``."""
        value = msgspec.convert(args or {}, self._args_type, strict=False)
        return {f: getattr(value, f) for f in value.__struct_fields__}

    async def call(self, args: dict[str, Any], context: ActionContext) -> ToolResult:
        try:
            kwargs = self.parse_args(args)
        except msgspec.ValidationError as err:
            return ToolResult.error(f"invalid arguments for {self.spec.name}: {err}")
        if self._wants_context:
            kwargs[_CONTEXT_PARAM] = context
        result = self.fn(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, ToolResult):
            return result
        if isinstance(result, str):
            return ToolResult(content=result)
        return ToolResult(content=msgspec.json.encode(result).decode(), data=result)


def _inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec puts the struct under $defs; models want it inline."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node and len(node) == 1:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    root = dict(schema)
    if "$ref" in root:  # msgspec puts the top-level struct itself under $defs too
        root = {**defs[root.pop("$ref").rsplit("/", 1)[-1]], **{k: v for k, v in root.items() if k != "$defs"}}
    return resolve(root)


def as_tool(
    obj: Any, *, name: str | None = None, tier: SafetyTier | None = None, plugin: str = "", capability: str | None = None
) -> Any:
    """Accept a Tool-shaped object or a typed function, return a Tool."""
    if hasattr(obj, "spec") and hasattr(obj, "call"):
        if plugin and not obj.spec.plugin:
            obj.spec = msgspec.structs.replace(obj.spec, plugin=plugin)
        if capability is not None:
            obj.spec = msgspec.structs.replace(obj.spec, capability=capability)
        return obj
    if callable(obj):
        return FunctionTool(
            obj,
            name=name,
            tier=tier or getattr(obj, "_oxios_tier", "read"),
            plugin=plugin,
            capability=capability if capability is not None else getattr(obj, "_oxios_capability", ""),
        )
    raise TypeError(f"not a tool: {obj!r} (expected a typed function or an object with spec and call)")


def tool(
    *, tier: SafetyTier = "read", name: str | None = None, capability: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function's tier (and name, and the role capability it needs) for ``register(fn)``."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn._oxios_tier = tier  # type: ignore[attr-defined]
        if name:
            fn._oxios_name = name  # type: ignore[attr-defined]
        if capability:
            fn._oxios_capability = capability  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass
class ToolRegistry:
    tools: dict[str, Any] = field(default_factory=dict)
    collisions: list[dict[str, str]] = field(default_factory=list)

    def make_register(self, plugin: str) -> Callable[..., None]:
        def register(obj: Any, *, tier: SafetyTier | None = None, name: str | None = None, capability: str | None = None) -> None:
            name = name or getattr(obj, "_oxios_name", None)
            t = as_tool(obj, name=name, tier=tier, plugin=plugin, capability=capability)
            self.add(t)

        return register

    def add(self, t: Any) -> bool:
        """Add a tool (False on a name collision); raises ValueError for a capability roles do not have."""
        capability = getattr(t.spec, "capability", "")
        if capability and capability not in TOOL_CAPABILITIES:
            # A misspelled capability would hide the tool from every role, admin included: say so at once.
            raise ValueError(
                f"tool {t.spec.name} needs unknown capability {capability!r}; capabilities: {', '.join(TOOL_CAPABILITIES)}"
            )
        existing = self.tools.get(t.spec.name)
        if existing is not None:
            self.collisions.append({"tool": t.spec.name, "kept": existing.spec.plugin, "skipped": t.spec.plugin})
            log.warning("tool %s from %s collides with %s's; skipped", t.spec.name, t.spec.plugin, existing.spec.plugin)
            return False
        self.tools[t.spec.name] = t
        return True

    def remove(self, name: str) -> None:
        self.tools.pop(name, None)

    def get(self, name: str) -> Any | None:
        return self.tools.get(name)

    def specs(self, names: list[str] | None = None) -> list[ToolSpec]:
        return [t.spec for n, t in sorted(self.tools.items()) if names is None or n in names]
