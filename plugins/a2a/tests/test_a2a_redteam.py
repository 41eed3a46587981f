"""Red-team cases for the A2A client: a remote (or its card) trying to pull credentials or requests elsewhere.

A remote's credentials go to its own origin only: not across a redirect to
another name (even one on the same address), not to a private address a
card points at, and a target URL never reaches a private address unless it
is allowlisted.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from oxios_plugin_a2a.client import A2AFailure, fetch_card, resolve_target, send
from oxios_plugin_a2a.settings import RemoteAgent

TOKEN = "a2a-redteam-token-0123456789"
API_KEY = "a2a-redteam-api-key"


@pytest.fixture
def remote() -> Iterator[tuple[str, list[tuple[str, str, str, str]]]]:
    """A fake remote on 127.0.0.1 that redirects its card elsewhere; records (host, path, authorization, x-api-key)."""
    seen: list[tuple[str, str, str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(
                (
                    self.headers.get("Host", ""),
                    self.path,
                    self.headers.get("Authorization", ""),
                    self.headers.get("X-Api-Key", ""),
                )
            )
            port = self.server.server_address[1]
            targets = {
                "/other-name/.well-known/agent-card.json": f"http://localhost:{port}/.well-known/agent-card.json",
                "/metadata/.well-known/agent-card.json": "http://169.254.169.254/latest/meta-data/",
                "/same/.well-known/agent-card.json": "/.well-known/agent-card.json",
            }
            if self.path in targets:
                self.send_response(302)
                self.send_header("Location", targets[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b'{"name": "not really a card"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _target(base: str, path: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RT_TOKEN", TOKEN)
    monkeypatch.setenv("RT_KEY", API_KEY)
    remotes = {"rt": RemoteAgent(url=base + path, token_env="RT_TOKEN", headers_env={"X-Api-Key": "RT_KEY"})}
    return resolve_target("rt", remotes)


@pytest.mark.parametrize("path", ["/other-name", "/metadata"])
async def test_credentials_never_follow_a_redirect_to_another_origin(
    remote: tuple[str, list[Any]], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    base, seen = remote
    target = _target(base, path, monkeypatch)
    try:
        await fetch_card(target, allowlist=["127.0.0.1", "localhost"])
        failure = ""
    except A2AFailure as err:
        failure = str(err)
    assert TOKEN not in failure and API_KEY not in failure
    first = [s for s in seen if s[1].startswith(path)]
    assert first and first[0][2] == f"Bearer {TOKEN}" and first[0][3] == API_KEY  # the configured origin got them
    elsewhere = [s for s in seen if not s[0].startswith("127.0.0.1")]
    assert all(auth == "" and key == "" for _, _, auth, key in elsewhere), elsewhere
    assert len({s[0] for s in seen}) == (2 if path == "/other-name" else 1)  # the other name was really asked
    if path == "/metadata":
        assert "SSRF" in failure or "169.254.169.254" in failure


async def test_credentials_follow_a_redirect_on_the_same_origin(
    remote: tuple[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the rule: a relative redirect stays on the origin (and is not pinned to a bare address)."""
    base, seen = remote
    target = _target(base, "/same", monkeypatch)
    with contextlib.suppress(A2AFailure):  # whether the body passes for a card does not matter here
        await fetch_card(target, allowlist=["127.0.0.1"])
    hop = [s for s in seen if s[1] == "/.well-known/agent-card.json"]
    assert hop and hop[0][0].startswith("127.0.0.1") and hop[0][2] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://127.0.0.1:4200/",
        "http://[::1]:4200/",
        "http://10.0.0.1/",
        "http://2130706433/",
        "file:///etc/passwd",
        "http://no-such-host.invalid/",
    ],
)
async def test_a_target_on_a_private_address_is_refused(url: str) -> None:
    for attempt in (fetch_card(url, allowlist=[], timeout=5), send(url, "hi", allowlist=[], timeout=5)):
        with pytest.raises(A2AFailure):
            await attempt


def test_credentials_stay_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    target = _target("https://remote.example", "", monkeypatch)
    assert TOKEN not in repr(target) and API_KEY not in repr(target) and TOKEN not in str(target)
    bare = resolve_target("https://remote.example/", {"rt": RemoteAgent(url="https://other.example", token_env="RT_TOKEN")})
    assert bare.headers == {}  # a URL that is not a configured remote gets no credentials


@pytest.mark.parametrize("interface", ["http://169.254.169.254", "http://10.0.0.7:8080", "http://[::1]:9"])
async def test_a_card_pointing_at_a_private_address_is_not_followed(monkeypatch: pytest.MonkeyPatch, interface: str) -> None:
    """The remote is allowlisted; the address its card names for the JSON-RPC interface is not."""
    from a2a_fakes import SECRET, sdk_app, serve

    monkeypatch.setenv("RT_TOKEN", SECRET)
    async with serve(lambda base: sdk_app(base, token=SECRET, interface_base=interface)) as (base, guard):
        target = resolve_target("rt", {"rt": RemoteAgent(url=base, token_env="RT_TOKEN")})
        with pytest.raises(A2AFailure) as failure:
            await send(target, "hi", allowlist=["127.0.0.1"], timeout=10)
        assert "SSRF" in str(failure.value) and SECRET not in str(failure.value)
        assert not [path for _, path, _ in guard.seen if path == "/rpc"]
