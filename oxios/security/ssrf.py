"""SSRF guard: outbound HTTP only to public addresses, pinned to the address checked.

:func:`check_url` resolves the host and checks *every* address it resolves to;
a DNS failure is a denial. Numeric host forms that the C library accepts
(``2130706433``, ``0x7f.1``, ``017700000001``) are parsed the same way the
connection would parse them. :class:`GuardedTransport` connects to the address
that was checked (no second lookup an attacker could answer differently) and,
because httpx sends each redirect hop through the transport again, every
redirect is checked too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_EXTRA_BLOCKED = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
        "100::/64",
        "2001:db8::/32",
        "2001::/23",
    )
]


class SSRFError(Exception):
    """An outbound URL that must not be fetched, with the reason."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.ip_network("64:ff9b::/96") or ip in ipaddress.ip_network("::ffff:0:0:0/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why an address is not public, or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = blocked_reason(inner)
            return f"embeds {inner}, which {why}" if why else None
    for net in _EXTRA_BLOCKED:
        if ip.version == net.version and ip in net:
            return f"is in the non-public range {net}"
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    ):
        return "is not a public address"
    return None


def parse_numeric_host(host: str) -> IPAddress | None:
    """An IP literal in any form the C resolver accepts (dotted, decimal, octal, hex, short)."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if text and all(c in "0123456789abcdefABCDEFxX." for c in text) and any(c.isdigit() for c in text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _allowlisted_host(host: str, allowlist: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowlist:
        entry = entry.strip().lower()
        if entry and not _is_network(entry) and fnmatchcase(host, entry):
            return True
    return False


def host_allowlisted(host: str, allowlist: Iterable[str]) -> bool:
    """Whether ``host`` is allowlisted by name (then it may resolve anywhere)."""
    return _allowlisted_host(host, allowlist)


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
        return True
    except ValueError:
        return False


def _allowlisted_ip(ip: IPAddress, allowlist: Iterable[str]) -> bool:
    for entry in allowlist:
        if _is_network(entry.strip()):
            net = ipaddress.ip_network(entry.strip(), strict=False)
            if ip.version == net.version and ip in net:
                return True
    return False


def split_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)``; raises :class:`SSRFError` for anything but http(s) with a host."""
    if any(ch in url for ch in "\r\n\x00\t "):
        raise SSRFError("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise SSRFError(f"malformed URL: {err}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise SSRFError(f"only http and https URLs may be fetched, not {scheme or 'a URL without a scheme'}")
    host = parts.hostname or ""
    if not host:
        raise SSRFError("the URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _judge(host: str, addresses: list[IPAddress], allowlist: list[str]) -> list[IPAddress]:
    if not addresses:
        raise SSRFError(f"{host} did not resolve to any address")
    if _allowlisted_host(host, allowlist):
        return addresses
    for ip in addresses:
        why = blocked_reason(ip)
        if why and not _allowlisted_ip(ip, allowlist):
            raise SSRFError(f"{host} resolves to {ip}, which {why}")
    return addresses


def _from_addrinfo(infos: list[Any]) -> list[IPAddress]:
    out: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


def check_url(url: str, allowlist: Iterable[str] = ()) -> list[IPAddress]:
    """The addresses ``url`` may be fetched from, or :class:`SSRFError` (DNS failure included)."""
    allow = list(allowlist)
    _, host, port = split_url(url)
    literal = parse_numeric_host(host)
    if literal is not None:
        return _judge(host, [literal], allow)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise SSRFError(f"cannot resolve {host}: {err}") from None
    return _judge(host, _from_addrinfo(infos), allow)


async def acheck_url(url: str, allowlist: Iterable[str] = ()) -> list[IPAddress]:
    """:func:`check_url` without blocking the event loop."""
    allow = list(allowlist)
    _, host, port = split_url(url)
    literal = parse_numeric_host(host)
    if literal is not None:
        return _judge(host, [literal], allow)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise SSRFError(f"cannot resolve {host}: {err}") from None
    return _judge(host, _from_addrinfo(infos), allow)


async def acheck_host(host: str, allowlist: Iterable[str] = (), *, unresolvable_ok: bool = False) -> list[IPAddress]:
    """:func:`acheck_url` for a bare host (an exec argument such as ``user@host:path``).

    With ``unresolvable_ok`` a name that does not resolve passes with no
    addresses: an argument that merely looks like a host name (``data.json``)
    reaches nothing.
    """
    allow = list(allowlist)
    literal = parse_numeric_host(host)
    if literal is not None:
        return _judge(host, [literal], allow)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        if unresolvable_ok:
            return []
        raise SSRFError(f"cannot resolve {host}: {err}") from None
    return _judge(host, _from_addrinfo(infos), allow)


_TRANSPORT_NAMES = {"GuardedTransport", "GuardedSyncTransport", "guarded_client", "guarded_sync_client", "client_for"}


def __getattr__(name: str) -> Any:
    # The httpx transports live in ssrf_transport so that checking a URL (every policy
    # vote, and `oxios --help`) never pays for importing httpx.
    if name in _TRANSPORT_NAMES:
        from . import ssrf_transport

        return getattr(ssrf_transport, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
