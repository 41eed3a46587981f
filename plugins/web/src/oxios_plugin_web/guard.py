"""Capability checks for operator actions when API auth is on.

With ``security.auth_enabled`` a request carries the role of its API token;
changing config, permissions or the audit log needs the matching capability
of that role (``manage_config`` ...). With auth off the API is trusted
(it listens on 127.0.0.1 by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ApiError

if TYPE_CHECKING:
    from .api import Call


async def require_capability(call: Call, capability: str) -> None:
    role_name = call.role
    if role_name is None:
        return
    rbac = call.kernel.services.get("rbac")
    if rbac is None:
        raise ApiError(403, f"{capability} cannot be checked: the rbac service is not available")
    try:
        role = rbac.role(role_name)
    except LookupError:
        raise ApiError(403, f"token role {role_name!r} does not exist") from None
    if not getattr(role, capability, False):
        raise ApiError(403, f"role {role_name!r} lacks the {capability} capability")
