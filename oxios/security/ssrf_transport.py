"""httpx transports that put every request, and every redirect hop, through the SSRF guard.

They connect to the address that was checked (no second DNS lookup), keep
the Host header and the TLS server name, and ignore proxy variables. TLS
connections are pooled per server name, never shared by two names that
resolve to one address.
"""

from __future__ import annotations

from collections import OrderedDict
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


class _Pools:
    """Connection pools: one for plain HTTP, one per TLS server name (least recently used dropped past a cap).

    A pool is keyed by the address it connects to, and the pinned URL names
    the address; so two names on one address would share a pool, and a TLS
    connection verified for the first name would carry requests for the
    second without its certificate ever being checked. Hence a pool per name.
    """

    MAX_TLS = 128

    def __init__(self, make: Any) -> None:
        self.make = make
        self.plain = make()
        self.tls: OrderedDict[str, Any] = OrderedDict()

    def for_request(self, request: httpx.Request) -> tuple[Any, Any]:
        """(the pool for this request, a pool evicted to make room or None)."""
        if request.url.scheme != "https":
            return self.plain, None
        name = request.url.host
        pool = self.tls.get(name)
        if pool is not None:
            self.tls.move_to_end(name)
            return pool, None
        pool = self.tls[name] = self.make()
        evicted = self.tls.popitem(last=False)[1] if len(self.tls) > self.MAX_TLS else None
        return pool, evicted

    def all(self) -> list[Any]:
        return [self.plain, *self.tls.values()]


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks every request (and so every redirect hop)."""

    def __init__(self, allowlist: Iterable[str] = (), **transport_kwargs: Any) -> None:
        self.allowlist = list(allowlist)
        self._pools = _Pools(lambda: httpx.AsyncHTTPTransport(**transport_kwargs))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            addresses = await acheck_url(str(request.url), self.allowlist)
        except SSRFError as err:
            raise httpx.ConnectError(f"blocked by the SSRF guard: {err}", request=request) from err
        inner, evicted = self._pools.for_request(request)
        if evicted is not None:
            await evicted.aclose()
        original = request.url
        try:
            for i, ip in enumerate(addresses):
                request.url = original
                _pin(request, ip)
                try:
                    return await inner.handle_async_request(request)
                except httpx.ConnectError:
                    if i == len(addresses) - 1:
                        raise
            raise AssertionError("unreachable")
        finally:
            # The connection is made; give the request its name back, so a relative redirect
            # (and response.url, cookies, credential hooks) see the host, not the pinned address.
            request.url = original

    async def aclose(self) -> None:
        for pool in self._pools.all():
            await pool.aclose()


class GuardedSyncTransport(httpx.BaseTransport):
    """The blocking twin of :class:`GuardedTransport`."""

    def __init__(self, allowlist: Iterable[str] = (), **transport_kwargs: Any) -> None:
        self.allowlist = list(allowlist)
        self._pools = _Pools(lambda: httpx.HTTPTransport(**transport_kwargs))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            addresses = check_url(str(request.url), self.allowlist)
        except SSRFError as err:
            raise httpx.ConnectError(f"blocked by the SSRF guard: {err}", request=request) from err
        inner, evicted = self._pools.for_request(request)
        if evicted is not None:
            evicted.close()
        original = request.url
        try:
            for i, ip in enumerate(addresses):
                request.url = original
                _pin(request, ip)
                try:
                    return inner.handle_request(request)
                except httpx.ConnectError:
                    if i == len(addresses) - 1:
                        raise
            raise AssertionError("unreachable")
        finally:
            request.url = original

    def close(self) -> None:
        for pool in self._pools.all():
            pool.close()


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
