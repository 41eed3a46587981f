"""Red-team cases beyond the attack corpus: what a malicious model or web page would try next.

Network clients reaching loopback without a URL (``curl 127.0.0.1:4200/...``,
``git clone 10.0.0.5:repo``) or rerouted by an option (``--resolve``,
``-x``), an agent running Oxios's own CLI to approve itself, DNS rebinding
against the guarded transport, the audit chain cut short at its tail, token
shapes in logs, and provider keys in a command's environment. Each case runs
through the real policy engine, transport, store or tool.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from oxios_hookspecs import Action

ALLOWED = ["curl", "wget", "ssh", "scp", "git", "nc", "socat", "rsync", "oxios", "echo", "grep", "ls"]
STUBS = ("nc", "socat", "rsync", "oxios")  # may be missing here: stand-ins on PATH, never run


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from oxios.config import load
    from oxios.kernel import Kernel

    root = tmp_path_factory.mktemp("redteam")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in STUBS:
        stub = bin_dir / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
        config = load(
            root / "home" / "config.toml",
            environ={},
            overrides={
                "kernel": {"workspace": str(root / "ws")},
                "exec": {"allowed_commands": ALLOWED, "shell_mode": True},
                "security": {"roles": {"offline": {"tools": ["*"], "exec_modes": ["structured"], "network": False}}},
            },
        )
        k = Kernel(config, root / "home")
        k.paths.ensure()
        k.plugins.load(entry_points=False)
        yield k


async def _judge(kernel: Any, action: Action, role: str = "user") -> Any:
    from oxios.security.engine import evaluate

    return await evaluate(kernel, action, kernel.context(role=role, agent_id="attacker"))


# -- network clients without a URL, and options that reroute them ---------------------------------

NET_DENY: list[list[str]] = [
    ["curl", "-X", "POST", "127.0.0.1:4200/api/approvals/abc/approve"],
    ["curl", "localhost:4200/api/config"],
    ["curl", "localhost.:4200/api/config"],
    ["curl", "evil.localhost:4200/api/config"],
    ["curl", "[::1]:4200/api/status"],
    ["curl", "0.0.0.0:4200/"],
    ["curl", "2130706433:4200/"],
    ["curl", "0x7f.1:4200/"],
    ["curl", "127.1/"],
    ["curl", "169.254.169.254/latest/meta-data/"],
    ["curl", "user@10.0.0.1/x"],
    ["curl", "--url=127.0.0.1:4200/api"],
    ["curl", "--resolve", "example.com:443:127.0.0.1", "https://1.1.1.1/"],
    ["curl", "--resolve=example.com:443:127.0.0.1", "https://1.1.1.1/"],
    ["curl", "--connect-to", "::127.0.0.1:4200", "https://1.1.1.1/"],
    ["curl", "-x", "127.0.0.1:4200", "http://1.1.1.1/"],
    ["curl", "-x127.0.0.1:4200", "http://1.1.1.1/"],
    ["curl", "--proxy=http://127.0.0.1:4200", "http://1.1.1.1/"],
    ["curl", "--socks5-hostname", "10.0.0.1:1080", "http://1.1.1.1/"],
    ["curl", "--unix-socket", "oxios.sock", "http://1.1.1.1/"],
    ["curl", "--dns-servers", "10.0.0.1", "http://1.1.1.1/"],
    ["curl", "-K", "curl.cfg"],
    ["curl", "--config", "curl.cfg"],
    ["curl", "http://127.0.0.1:4200/api"],
    ["wget", "-e", "http_proxy=127.0.0.1:4200", "http://1.1.1.1/"],
    ["wget", "--execute=use_proxy=yes", "http://1.1.1.1/"],
    ["wget", "-i", "urls.txt"],
    ["wget", "127.0.0.1:4200/api/status"],
    ["git", "clone", "127.0.0.1:repo"],
    ["git", "ls-remote", "git@10.0.0.5:x.git"],
    ["git", "fetch", "[::1]:repo"],
    ["git", "remote", "add", "o", "169.254.169.254:x"],
    ["git", "clone", "localhost:/srv/repo"],
    ["git", "push", "ssh://127.0.0.1/repo"],
    ["ssh", "127.0.0.1"],
    ["ssh", "root@192.168.1.1"],
    ["ssh", "-L", "8080:127.0.0.1:4200", "1.1.1.1"],
    ["ssh", "-o", "HostName=127.0.0.1", "1.1.1.1"],
    ["ssh", "-oLocalForward=8080 127.0.0.1:4200", "1.1.1.1"],
    ["ssh", "-J", "10.0.0.1", "1.1.1.1"],
    ["scp", "x.txt", "root@192.168.1.1:/tmp/"],
    ["nc", "127.0.0.1", "4200"],
    ["nc", "2130706433", "4200"],
    ["nc", "localhost", "4200"],
    ["socat", "-", "TCP:127.0.0.1:4200"],
    ["socat", "-", "EXEC:sh"],
    ["rsync", "-a", "x.txt", "10.1.2.3::module/"],
]


@pytest.mark.parametrize("argv", NET_DENY, ids=[" ".join(a) for a in NET_DENY])
async def test_network_client_reaching_a_private_host_is_denied(kernel: Any, argv: list[str]) -> None:
    verdict = await _judge(kernel, Action(kind="exec", argv=argv))
    assert verdict.verdict == "deny", (argv, verdict)
    assert "PATH" not in verdict.reason and "allowed_commands" not in verdict.reason, verdict.reason


NET_ALLOW: list[list[str]] = [
    ["curl", "-o", "data.json", "https://1.1.1.1/"],
    ["curl", "-m", "5", "--retry", "3", "https://1.1.1.1/x"],
    ["curl", "1.1.1.1/dns-query"],
    ["curl", "-H", "Accept: application/json", "https://1.1.1.1/"],
    ["wget", "-O", "out.html", "https://1.1.1.1/"],
    ["git", "clone", "1.1.1.1:repo"],
    ["git", "push", "origin", "main"],
    ["git", "fetch", "--all"],
    ["git", "log", "--oneline", "-n", "5"],
    ["ssh", "-o", "StrictHostKeyChecking=no", "1.1.1.1"],
    ["nc", "-w", "5", "1.1.1.1", "443"],
    ["scp", "notes.txt", "me@1.1.1.1:notes.txt"],
]


@pytest.mark.parametrize("argv", NET_ALLOW, ids=[" ".join(a) for a in NET_ALLOW])
async def test_network_client_to_a_public_host_is_allowed(kernel: Any, argv: list[str]) -> None:
    verdict = await _judge(kernel, Action(kind="exec", argv=argv))
    assert verdict.verdict == "allow", (argv, verdict)


SHELL_DENY = [
    "curl -s 127.0.0.1:4200/api/approvals/abc/approve -X POST",
    "echo hi && curl localhost:4200/api/config",
    "git clone 10.0.0.1:x && ls",
    "ls | nc 127.0.0.1 4200",
    "curl http://169.254.169.254/latest/meta-data/",
    "oxios approvals approve abc",
    "echo x; oxios auth token create me --role admin",
]


@pytest.mark.parametrize("command", SHELL_DENY)
async def test_shell_mode_network_and_operator_cli_denied(kernel: Any, command: str) -> None:
    verdict = await _judge(kernel, Action(kind="exec", command=command, mode="shell"), role="admin")
    assert verdict.verdict == "deny", (command, verdict)


async def test_shell_mode_public_fetch_still_allowed(kernel: Any) -> None:
    verdict = await _judge(kernel, Action(kind="exec", command="curl -s https://1.1.1.1/ | grep x", mode="shell"), role="admin")
    assert verdict.verdict == "allow", verdict


async def test_host_arguments_need_the_network_capability(kernel: Any) -> None:
    verdict = await _judge(kernel, Action(kind="exec", argv=["git", "clone", "1.1.1.1:repo"]), role="offline")
    assert verdict.verdict == "deny" and "no network access" in verdict.reason


@pytest.mark.parametrize(
    "argv",
    [
        ["oxios", "approvals", "approve", "abc"],
        ["oxios", "approvals", "approve", "abc", "--scope", "global", "--pattern", "*"],
        ["oxios", "auth", "token", "create", "me", "--role", "admin"],
        ["oxios", "config", "set", "exec.shell_mode", "true"],
        ["oxios", "permissions", "set", "attacker", "--role", "admin"],
        ["oxios", "cron", "list"],
    ],
)
async def test_agent_cannot_run_the_operator_cli(kernel: Any, argv: list[str]) -> None:
    """Even allowlisted, `oxios` would let the agent answer its own approvals (the CLI talks to the daemon)."""
    verdict = await _judge(kernel, Action(kind="exec", argv=argv))
    assert verdict.verdict == "deny" and "operator" in verdict.reason, verdict


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4200/api/approvals/abc/approve",
        "http://localhost:4200/api/approvals/abc/approve",
        "http://[::1]:4200/api/approvals/abc/approve",
        "http://0.0.0.0:4200/api/approvals/abc/approve",
        "http://127.1:4200/api/approvals/abc/approve",
        "http://127.0.0.1.:4200/api/config",
        "HTTP://127.0.0.1:4200/api/config",
        "http://example.com@127.0.0.1:4200/api/config",
        "http://[0:0:0:0:0:0:0:1]:4200/",
        "http://[::ffff:0:7f00:1]:4200/",
        "http://127.000.000.001:4200/",
        "http://①②⑦.0.0.1:4200/",
        "ws://127.0.0.1:4200/api/chat/stream",
        "http://169.254.169.254.nip.io/",
    ],
)
async def test_agent_cannot_reach_the_local_api(kernel: Any, url: str) -> None:
    """The web API on loopback answers approvals; the url policy keeps every tool's fetch away from it."""
    verdict = await _judge(kernel, Action(kind="url", url=url))
    assert verdict.verdict == "deny", (url, verdict)


# -- DNS rebinding: the guarded transport connects to the address it checked ----------------------


class _Who(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{self.server.server_address[0]} host={self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def two_servers() -> Iterator[int]:
    """One port on 127.0.0.2 (the "public" answer, allowlisted) and on 127.0.0.3 (the internal one)."""
    probe = socket.socket()
    probe.bind(("127.0.0.2", 0))
    port = probe.getsockname()[1]
    probe.close()
    servers = [ThreadingHTTPServer((ip, port), _Who) for ip in ("127.0.0.2", "127.0.0.3")]
    for httpd in servers:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield port
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


async def test_rebinding_name_is_fetched_from_the_checked_address(two_servers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from oxios.security.ssrf import guarded_client

    answers: list[str] = []

    async def rebinding(self: Any, host: str, port: Any, **kwargs: Any) -> list[Any]:
        ip = "127.0.0.2" if not answers else "127.0.0.3"  # public first, internal on every later lookup
        answers.append(ip)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", rebinding)
    async with guarded_client(["127.0.0.2/32"]) as client:
        response = await client.get(f"http://rebind.test:{two_servers}/")
    assert response.text == f"127.0.0.2 host=rebind.test:{two_servers}"
    assert answers == ["127.0.0.2"]  # one lookup, the one that was checked


async def test_rebinding_each_request_is_checked_again(two_servers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from oxios.security.ssrf import guarded_client

    calls = 0

    async def rebinding(self: Any, host: str, port: Any, **kwargs: Any) -> list[Any]:
        nonlocal calls
        calls += 1
        ip = "127.0.0.2" if calls == 1 else "127.0.0.3"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    import httpx

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", rebinding)
    async with guarded_client(["127.0.0.2/32"]) as client:
        assert (await client.get(f"http://rebind.test:{two_servers}/")).text.startswith("127.0.0.2")
        with pytest.raises(httpx.ConnectError, match=r"127\.0\.0\.3"):
            await client.get(f"http://rebind.test:{two_servers}/")


class _Redirector(_Who):
    protocol_version = "HTTP/1.1"  # keep-alive: pooled connections are what the TLS case is about

    def do_GET(self) -> None:
        if self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", "/landed")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


def _certificate_for(name: str, tmp: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    import datetime

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def test_tls_connection_for_one_name_never_carries_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two names on one address: a kept-alive TLS connection verified for the first must not serve the second."""
    import ssl

    import httpx

    from oxios.security.ssrf import guarded_client

    cert_file, key_file = _certificate_for("localhost", tmp_path)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)
    httpd.socket = server_tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    original = asyncio.BaseEventLoop.getaddrinfo

    async def lookup(self: Any, host: Any, port_: Any, **kwargs: Any) -> Any:
        if host == "evil.test":  # an attacker's name (or a poisoned one) on the same address
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_))]
        return await original(self, host, port_, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", lookup)
    try:
        async with guarded_client(["127.0.0.0/8"], verify=ssl.create_default_context(cafile=str(cert_file))) as client:
            assert (await client.get(f"https://localhost:{port}/")).text == f"127.0.0.1 host=localhost:{port}"
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await client.get(f"https://evil.test:{port}/")
            hopped = await client.get(f"https://localhost:{port}/hop")  # a relative redirect keeps the name
            assert hopped.status_code == 200 and str(hopped.url) == f"https://localhost:{port}/landed"
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- the audit chain cut short at its tail --------------------------------------------------------


def _raw(db: Path) -> sqlite3.Connection:
    """An attacker with the database file: every trigger dropped."""
    conn = sqlite3.connect(db, isolation_level=None)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit%'")]
    for name in names:
        conn.execute(f"DROP TRIGGER {name}")
    return conn


@pytest.fixture
def chain(tmp_path: Path) -> Any:
    from oxios.security.audit import AuditLog
    from oxios.state import StateStore

    log = AuditLog(StateStore(tmp_path / "state.db"), checkpoint_every=10)
    for i in range(1, 36):
        log.append("agent-1", "policy.exec", f"cmd {i}", True, f"reason {i}")
    assert log.verify().ok
    return log


def _truncate_consistently(log: Any, keep: int) -> None:
    """Delete the newest entries and rewind everything inside the database to match."""
    conn = _raw(log.state.path)
    conn.execute("DELETE FROM audit_log WHERE seq > ?", (keep,))
    last = conn.execute("SELECT seq, hash, ts FROM audit_log WHERE seq = ?", (keep,)).fetchone()
    conn.execute("UPDATE audit_head SET seq = ?, hash = ?, ts = ? WHERE id = 1", last)
    conn.execute("DELETE FROM audit_checkpoints WHERE tree_size > ?", (keep,))
    conn.close()


def test_truncated_tail_with_rewound_head_and_checkpoints_is_detected(chain: Any) -> None:
    from oxios.security.audit import AuditLog
    from oxios.state import StateStore

    _truncate_consistently(chain, keep=22)
    fresh = AuditLog(StateStore(chain.state.path))  # another process (oxios audit verify) sees it too
    for log in (chain, fresh):
        report = log.verify()
        assert not report.ok and report.problem == "missing" and report.bad_seq == 23, report
        assert "23..35" in report.detail


def test_older_copy_of_the_database_is_detected(chain: Any, tmp_path: Path) -> None:
    """Putting back yesterday's state.db is the same truncation, done with cp."""
    import shutil

    chain.state.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    backup = tmp_path / "backup.db"
    shutil.copy(chain.state.path, backup)
    for i in range(5):
        chain.append("agent-1", "policy.exec", f"later {i}", False, "denied")
    chain.state.close()
    for suffix in ("-wal", "-shm"):
        Path(str(chain.state.path) + suffix).unlink(missing_ok=True)
    shutil.copy(backup, chain.state.path)
    from oxios.security.audit import AuditLog
    from oxios.state import StateStore

    report = AuditLog(StateStore(chain.state.path)).verify()
    assert not report.ok and report.problem == "missing" and report.bad_seq == 36


def test_rewritten_entry_at_the_recorded_head_is_detected(chain: Any) -> None:
    """A tail truncated and refilled with forged entries up to the same seq."""
    from oxios.security.audit import GENESIS, entry_hash

    conn = _raw(chain.state.path)
    conn.execute("DELETE FROM audit_log WHERE seq > 30")
    conn.execute("DELETE FROM audit_checkpoints WHERE tree_size > 30")
    prev = conn.execute("SELECT hash, ts FROM audit_log WHERE seq = 30").fetchone()
    prev_hash, ts = prev[0] or GENESIS, prev[1]
    for seq in range(31, 36):
        digest = entry_hash(seq, ts, "agent-1", "policy.exec", "harmless", True, "forged", "{}", prev_hash)
        conn.execute(
            "INSERT INTO audit_log VALUES (?, ?, 'agent-1', 'policy.exec', 'harmless', 1, 'forged', '{}', ?, ?)",
            (seq, ts, prev_hash, digest),
        )
        prev_hash = digest
    conn.execute("UPDATE audit_head SET seq = 35, hash = ? WHERE id = 1", (prev_hash,))
    conn.close()
    report = chain.verify()
    assert not report.ok and (report.problem, report.bad_seq) == ("link", 35), report


def test_anchor_behind_the_database_is_no_false_alarm(chain: Any) -> None:
    """A crash between the commit and the anchor write leaves the anchor behind: that is not tampering."""
    head = chain.state.one("SELECT seq, hash FROM audit_log WHERE seq = 30")
    chain.anchor_path.write_text(f"{head['seq']} {head['hash']}\n")
    assert chain.verify().ok
    chain.append("agent-1", "policy.exec", "next", True, "ok")
    assert chain.anchor() == (36, chain.head()["hash"])


def test_anchor_never_moves_back_and_is_protected(chain: Any, kernel: Any) -> None:
    from oxios.security.sandbox import Sandbox

    ahead = "9" * 64
    chain.anchor_path.write_text(f"99 {ahead}\n")  # another process got further
    chain.append("agent-1", "policy.exec", "late writer", True, "ok")
    assert chain.anchor() == (99, ahead)
    assert not chain.verify().ok  # ...and this database does not hold entry 99
    chain.anchor_path.write_text("garbage")
    assert chain.verify().problem == "anchor"
    sandbox = Sandbox.build(kernel.paths.workspace, home=kernel.paths.home)
    for access in (sandbox.check, sandbox.check_write):
        ok, reason, _ = access(kernel.paths.home / "audit-head")
        assert not ok and "protected" in reason


def test_cli_verify_reports_the_truncation(oxios_cli: Any, oxios_home: Path) -> None:
    from oxios.security.audit import AuditLog
    from oxios.state import StateStore

    log = AuditLog(StateStore(oxios_home / "state.db"), checkpoint_every=5)
    for i in range(12):
        log.append("agent-1", "policy.exec", f"cmd {i}", True, "ok")
    _truncate_consistently(log, keep=7)
    result = oxios_cli("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at entry 8: missing" in result.output


# -- secrets in logs and in a command's environment ------------------------------------------------


def test_oxios_tokens_are_redacted_from_logs_and_audit(tmp_path: Path) -> None:
    from oxios.logs import redact
    from oxios.security.audit import AuditLog
    from oxios.security.tokens import TokenStore
    from oxios.state import StateStore

    token = TokenStore(tmp_path / "secrets").create("ci")["token"]
    for text in (f"client sent {token}", f"GET /api/events?token={token}", f"Authorization: Bearer {token}", token):
        assert token not in redact(text) and token[4:] not in redact(text), text
    log = AuditLog(StateStore(tmp_path / "state.db"))
    entry = log.append("web", "auth.failure", f"bad {token}", False, f"token {token} refused", {"raw": token, "list": [token]})
    assert token not in str(entry) and token not in (tmp_path / "state.db").read_bytes().decode("latin-1")


async def test_exec_environment_carries_no_secrets(oxios_kernel_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "ANTHROPIC_API_KEY": "sk-ant-redteam-0123456789",
        "OPENAI_API_KEY": "sk-redteam-0123456789",
        "AWS_SECRET_ACCESS_KEY": "aws-redteam-secret",
        "OXIOS_TELEGRAM_TOKEN": "123456:redteam",
        "GITHUB_TOKEN": "ghp_redteam",
        "LD_PRELOAD": "/tmp/evil.so",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    config = {"exec": {"allowed_commands": ["printenv"], "env_passthrough": ["LD_PRELOAD", "GITHUB_TOKEN"]}}
    async with oxios_kernel_factory(config=config) as kernel:
        result = await kernel.tools.get("exec").call({"binary": "printenv"}, kernel.context(agent_id="attacker"))
    assert not result.is_error, result.content
    for name, value in secrets.items():
        if name == "GITHUB_TOKEN":
            assert value in result.content  # passed through only because the operator listed it
        else:
            assert value not in result.content and name not in result.content, name
    assert "TERM=dumb" in result.content


# -- git obeys config and hooks the agent wrote -----------------------------------------------------


@pytest.fixture
def planted_repos(kernel: Any) -> Path:
    """A gitfile pointing at a folder of the agent's, and a bare-repository layout, both with a fsmonitor command."""
    ws: Path = kernel.paths.workspace
    evil = "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch pwned\n"
    for folder in ("evilgit", "bare"):
        (ws / folder / "objects").mkdir(parents=True, exist_ok=True)
        (ws / folder / "refs").mkdir(exist_ok=True)
        (ws / folder / "HEAD").write_text("ref: refs/heads/main\n")
        (ws / folder / "config").write_text(evil)
    (ws / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    (ws / "sub" / ".git").write_text("gitdir: ../evilgit\n")
    return ws


@pytest.mark.parametrize(
    ("argv", "cwd"),
    [
        (["git", "status"], "sub"),
        (["git", "status"], "sub/deeper"),
        (["git", "-C", "sub", "status"], ""),
        (["git", "-C", "sub/deeper", "diff"], ""),
        (["git", "log"], "bare"),
        (["git", "-C", "bare", "log"], ""),
    ],
)
async def test_git_refuses_a_repository_the_agent_could_have_written(
    kernel: Any, planted_repos: Path, argv: list[str], cwd: str
) -> None:
    """A `.git` file or a bare layout makes git obey a config the file tools may write (core.fsmonitor runs a command)."""
    action = Action(kind="exec", argv=argv, cwd=str(planted_repos / cwd) if cwd else "")
    verdict = await _judge(kernel, action)
    assert verdict.verdict == "deny" and ("git" in verdict.reason), (argv, cwd, verdict)


async def test_git_in_the_workspace_repository_is_still_allowed(kernel: Any, planted_repos: Path) -> None:
    (planted_repos / ".git").mkdir(exist_ok=True)
    (planted_repos / "plain" / "deep").mkdir(parents=True, exist_ok=True)
    for argv in (["git", "status"], ["git", "-C", "plain/deep", "status"], ["git", "log", "--oneline"]):
        verdict = await _judge(kernel, Action(kind="exec", argv=argv))
        assert verdict.verdict == "allow", (argv, verdict)


@pytest.mark.parametrize(
    "argv",
    [
        ["git", "checkout-index", "--prefix=.git/hooks/", "pre-commit"],
        ["git", "checkout-index", "--prefix", ".git/hooks/", "pre-commit"],
        ["git", "show", "HEAD:x", "--output=.git/hooks/post-commit"],
        ["git", "diff", "--output=.git/config"],
        ["git", "checkout-index", "--prefix=.git/modules/sub/hooks/", "post-checkout"],
        ["ls", ".git/hooks"],
    ],
)
async def test_exec_arguments_naming_git_hooks_or_config_are_denied(kernel: Any, argv: list[str]) -> None:
    """A command may write what it names: hooks and config run code on the next git (or git plugin) commit."""
    verdict = await _judge(kernel, Action(kind="exec", argv=argv))
    assert verdict.verdict == "deny", (argv, verdict)


@pytest.mark.parametrize(
    "path", ["sub2/.git", ".git/modules/sub/hooks/post-checkout", ".git/modules/sub/config", ".git/worktrees/w/config.worktree"]
)
async def test_file_tools_cannot_write_what_git_obeys(kernel: Any, path: str) -> None:
    verdict = await _judge(kernel, Action(kind="path", path=path, access="write"))
    assert verdict.verdict == "deny", (path, verdict)


async def test_gitfile_attack_end_to_end_with_the_agents_own_tools(oxios_kernel_factory: Any) -> None:
    """Only the write tool and `git` (on the default allowlist): the fsmonitor command must never run."""
    async with oxios_kernel_factory() as kernel:
        ctx = kernel.context(agent_id="attacker", interactive=False)
        write = kernel.tools.get("write")
        files = {
            "evilgit/HEAD": "ref: refs/heads/main\n",
            "evilgit/config": "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch pwned\n",
            "evilgit/objects/.keep": "",
            "evilgit/refs/.keep": "",
            "sub/notes.txt": "notes\n",
        }
        for path, content in files.items():
            assert not (await write.call({"path": path, "content": content}, ctx)).is_error, path
        gitfile = await write.call({"path": "sub/.git", "content": "gitdir: ../evilgit\n"}, ctx)
        assert gitfile.is_error  # the file tools may not write a .git file...
        (kernel.paths.workspace / "sub" / ".git").write_text("gitdir: ../evilgit\n")  # ...an unzip or a git checkout might
        ran = await kernel.tools.get("exec").call({"binary": "git", "args": ["status"], "cwd": "sub"}, ctx)
        assert ran.is_error and "exec denied" in ran.content, ran.content
        assert not (kernel.paths.workspace / "sub" / "pwned").exists()


# -- what a human approves must be what runs ------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["python3", "-c", "print('ok') #\u202e)'lmth.xedni' ,'w'(nepo"],  # right-to-left override
        ["python3", "-c", "x = 1\u2066; import os\u2069"],  # isolates
        ["python3", "-c", "print(1)\u200b"],  # zero width space
        ["echo", "safe\u202eexe.txt"],
        ["echo", "a\u0085b"],  # C1 control (next line)
    ],
)
async def test_invisible_characters_cannot_disguise_an_approval(kernel: Any, argv: list[str]) -> None:
    verdict = await _judge(kernel, Action(kind="exec", argv=argv))
    assert verdict.verdict == "deny", (argv, verdict)
    shell = await _judge(kernel, Action(kind="exec", command=" ".join(argv), mode="shell"), role="admin")
    assert shell.verdict == "deny", (argv, shell)


async def test_plain_unicode_is_fine(kernel: Any) -> None:
    assert (await _judge(kernel, Action(kind="exec", argv=["echo", "héllo wörld 日本 ✓"]))).verdict == "allow"


def _git(*args: str) -> str:
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        if os.environ.get("CI"):
            pytest.fail("git is required in CI")
        pytest.skip("git is not installed")
    return subprocess.run([git, *args], capture_output=True, text=True, check=True).stdout


async def test_git_run_by_an_agent_runs_no_hooks(oxios_kernel_factory: Any) -> None:
    """A hook unpacked into .git/hooks (tar -x, unzip) must not run on the agent's next `git commit`."""
    async with oxios_kernel_factory(config={"exec": {"allowed_commands": ["git"]}}) as kernel:
        ws = kernel.paths.workspace
        repo = ws / "proj"
        repo.mkdir()
        _git("init", "-q", str(repo))
        for key, value in (("user.name", "a"), ("user.email", "a@b")):
            _git("-C", str(repo), "config", key, value)
        marker = ws / "hook-ran"
        hook = repo / ".git" / "hooks" / "pre-commit"
        hook.write_text(f"#!/bin/sh\ntouch {marker}\n")  # as an archive would leave it
        hook.chmod(0o755)
        (repo / "a.txt").write_text("a")
        ctx = kernel.context(agent_id="attacker")
        for args in (["-C", "proj", "add", "a.txt"], ["-C", "proj", "commit", "-qm", "x"]):
            result = await kernel.tools.get("exec").call({"binary": "git", "args": args}, ctx)
            assert not result.is_error, result.content
        assert not marker.exists(), "git ran a hook the agent could have planted"
        assert _git("-C", str(repo), "log", "--oneline").strip().endswith(" x")  # the commit itself went through
