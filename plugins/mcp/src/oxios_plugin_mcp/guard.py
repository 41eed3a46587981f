"""The SSRF guard for the SDK's HTTP client (httpx2, the SDK's own httpx line).

Every request, including the GET event stream and any redirect the SDK
follows, is checked and then sent to the address that was checked, so a
second DNS answer cannot point the connection somewhere private.
"""

from __future__ import annotations

from typing import Any

import httpx2

from oxios.security.ssrf import SSRFError, acheck_url


class GuardedTransport2(httpx2.AsyncBaseTransport):
    def __init__(self, allowlist: list[str]) -> None:
        self.allowlist = list(allowlist)
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            addresses = await acheck_url(str(request.url), self.allowlist)
        except SSRFError as err:
            raise httpx2.ConnectError(f"blocked by the SSRF guard: {err}", request=request) from err
        original = request.url
        request.headers.setdefault("Host", original.netloc.decode("ascii"))
        if original.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": original.host}
        request.url = original.copy_with(host=str(addresses[0]))
        try:
            return await self._inner.handle_async_request(request)
        finally:
            # Connected: the SDK's same-origin redirect rule (and a relative Location) must see the
            # configured name again, not the pinned address (which the allowlist may not name).
            request.url = original

    async def aclose(self) -> None:
        await self._inner.aclose()


def guarded_http_client(allowlist: list[str], *, headers: dict[str, str], timeout: float) -> Any:
    return httpx2.AsyncClient(
        transport=GuardedTransport2(allowlist),
        headers=headers,
        timeout=httpx2.Timeout(timeout, read=max(timeout, 300.0)),
        trust_env=False,
    )
