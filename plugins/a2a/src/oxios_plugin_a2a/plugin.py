"""The A2A plugin's hook implementations (entry point ``a2a`` in group ``oxios``)."""

from __future__ import annotations

from typing import Any

from oxios_hookspecs import hookimpl


@hookimpl
def register_tools(register: Any, kernel: Any) -> None:
    from .tools import a2a_delegate  # imported with the kernel, not with `oxios --help`

    register(a2a_delegate, tier="network")


@hookimpl
async def startup(kernel: Any) -> None:
    from .service import A2AService
    from .settings import A2ASettings

    service = A2AService(kernel, A2ASettings.from_kernel(kernel))
    await service.start()
    kernel.services["a2a"] = service


@hookimpl(optionalhook=True)
def register_routes(register: Any, kernel: Any) -> None:
    """Inside the web plugin: the card and the JSON-RPC endpoint on the gateway's port."""
    from .server import build_routes
    from .settings import A2ASettings

    for route in build_routes(kernel, A2ASettings.from_kernel(kernel)):
        register(route)


@hookimpl
def register_commands(app: Any) -> None:
    from .cli import a2a_app

    app.add_typer(a2a_app, name="a2a")
