"""httpx transports that put every request, and every redirect hop, through the SSRF guard.

They connect to the address that was checked (no second DNS lookup), keep
the Host header and the TLS server name, and ignore proxy variables.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from .ssrf import IPAddress, SSRFError, acheck_url, check_url


def _pin(request: httpx.Request, ip: IPAddress) -> None:
    """Point the request at ``ip`` while keeping Host and TLS name of the original host."""
    host = request.url.host
    request.headers.setdefault("Host", request.url.netloc.decode("ascii"))
    if request.url.scheme == "https":
        request.extensions = {**request.extensions, "sni_hostname": host}
    request.url = request.url.copy_with(host=str(ip))


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks every request (and so every redirect hop)."""

    def __init__(self, allowlist: Iterable[str] = (), **transport_kwargs: Any) -> None:
        self.allowlist = list(allowlist)
        self._inner = httpx.AsyncHTTPTransport(**transport_kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            addresses = await acheck_url(str(request.url), self.allowlist)
        except SSRFError as err:
            raise httpx.ConnectError(f"blocked by the SSRF guard: {err}", request=request) from err
        original = request.url
        for i, ip in enumerate(addresses):
            request.url = original
            _pin(request, ip)
            try:
                return await self._inner.handle_async_request(request)
            except httpx.ConnectError:
                if i == len(addresses) - 1:
                    raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedSyncTransport(httpx.BaseTransport):
    """The blocking twin of :class:`GuardedTransport`."""

    def __init__(self, allowlist: Iterable[str] = (), **transport_kwargs: Any) -> None:
        self.allowlist = list(allowlist)
        self._inner = httpx.HTTPTransport(**transport_kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            addresses = check_url(str(request.url), self.allowlist)
        except SSRFError as err:
            raise httpx.ConnectError(f"blocked by the SSRF guard: {err}", request=request) from err
        original = request.url
        for i, ip in enumerate(addresses):
            request.url = original
            _pin(request, ip)
            try:
                return self._inner.handle_request(request)
            except httpx.ConnectError:
                if i == len(addresses) - 1:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._inner.close()


def guarded_client(
    allowlist: Iterable[str] = (), *, max_redirects: int = 5, verify: Any = True, **kwargs: Any
) -> httpx.AsyncClient:
    """An AsyncClient for tools: SSRF-checked, redirects re-checked, no proxies from the environment.

    ``verify`` (bool, CA path or ``ssl.SSLContext``) goes to the transport, which does the TLS.
    """
    return httpx.AsyncClient(
        transport=GuardedTransport(allowlist, verify=verify),
        follow_redirects=True,
        max_redirects=max_redirects,
        trust_env=False,
        **kwargs,
    )


def guarded_sync_client(
    allowlist: Iterable[str] = (), *, max_redirects: int = 5, verify: Any = True, **kwargs: Any
) -> httpx.Client:
    return httpx.Client(
        transport=GuardedSyncTransport(allowlist, verify=verify),
        follow_redirects=True,
        max_redirects=max_redirects,
        trust_env=False,
        **kwargs,
    )


def client_for(kernel: Any, **kwargs: Any) -> httpx.AsyncClient:
    """A guarded client using the kernel's ``security.ssrf_allowlist``."""
    return guarded_client(kernel.config.security.ssrf_allowlist, **kwargs)
