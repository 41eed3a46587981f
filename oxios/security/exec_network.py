"""Where an exec'd network client would connect: hosts among its arguments, and options that reroute it.

``curl 127.0.0.1:4200/api/...`` has no scheme, ``git clone 10.0.0.5:repo`` is
scp syntax, ``nc localhost 4200`` names a bare host: none of them look like a
URL, yet each reaches a host the SSRF guard would refuse. For the clients
below, every argument (and ``--opt=value`` value) shaped like a host,
``host:port``, ``user@host:path`` or ``host/path`` is returned as a
:class:`HostProbe` for the SSRF guard, and options that send the connection
somewhere other than the named host (``curl --resolve``, ``--connect-to``,
``-x``, ``wget -e http_proxy=``, ``ssh -L``, ``-o HostName=``, URLs read
from a file) are refused outright.

These programs resolve names themselves after the check, so a name that
resolves to a public address now and a private one a moment later (DNS
rebinding) is beyond this rule; the fetch and browser tools connect to the
address they checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .ssrf import parse_numeric_host

NETWORK_CLIENTS = frozenset(
    {
        "curl",
        "wget",
        "wget2",
        "http",
        "https",
        "xh",
        "xhs",
        "aria2c",
        "ssh",
        "scp",
        "sftp",
        "rsync",
        "nc",
        "ncat",
        "netcat",
        "telnet",
        "ftp",
        "lftp",
        "socat",
        "git",
    }
)
# git subcommands that contact a remote named among their arguments.
_GIT_REMOTE = frozenset({"clone", "fetch", "pull", "push", "ls-remote", "archive", "submodule", "remote"})

# Options whose value sends the connection elsewhere than the host the command names.
_REROUTING: dict[str, tuple[str, ...]] = {
    "curl": (
        "--resolve",
        "--connect-to",
        "-x",
        "--proxy",
        "--preproxy",
        "--proxy1.0",
        "--socks4",
        "--socks4a",
        "--socks5",
        "--socks5-hostname",
        "--unix-socket",
        "--abstract-unix-socket",
        "--dns-servers",
        "-K",
        "--config",
    ),
    "wget": ("-e", "--execute", "-i", "--input-file", "-B", "--base", "--config"),
    "aria2c": ("-i", "--input-file", "--all-proxy", "--http-proxy", "--https-proxy", "--ftp-proxy", "--async-dns-server"),
    "ssh": ("-J", "-L", "-R", "-D", "-W", "-w", "-F"),
    "scp": ("-J", "-F", "-S", "-o"),
    "sftp": ("-J", "-F", "-S", "-D", "-o"),
    "http": ("--proxy",),
    "xh": ("--proxy", "--resolve", "--unix-socket"),
}
_REROUTING["wget2"] = _REROUTING["wget"]
_REROUTING["https"] = _REROUTING["http"]
_REROUTING["xhs"] = _REROUTING["xh"]
_SSH_OPTION = re.compile(r"(?i)^\s*(hostname|proxy\w*|\w*forward|tunnel\w*|\w*command)\s*[= ]")
_SOCAT_ADDRESS = re.compile(r"(?i)^(tcp[46]?|tcp[46]?-connect|openssl|openssl-connect|udp[46]?|udp[46]?-sendto|socks4a?|proxy):")
_SOCAT_RUNS = re.compile(r"(?i)^(exec|system):")
_HOST_SPEC = re.compile(
    r"^(?:(?P<user>[^@/\s]+)@)?(?P<host>\[[0-9A-Za-z:.%]+\]|[A-Za-z0-9_][A-Za-z0-9_.-]*)(?::(?P<port>[^/]*))?(?P<rest>/.*)?$"
)
_MAX_PORT = 65535


@dataclass(frozen=True)
class HostProbe:
    """A host an argument names.

    ``strict`` for an IP address or a ``localhost`` name: surely a host, so a
    failed lookup denies. Any other name may be a file name (``data.json``)
    and passes when it resolves nowhere.
    """

    argument: str
    host: str
    strict: bool


def _value(binary: str, arg: str) -> str | None:
    """The part of an argument that may name a host (the value of ``--opt=value``), or None."""
    if arg.startswith("-"):
        return arg.split("=", 1)[1] if "=" in arg else None
    if binary == "socat":
        return _SOCAT_ADDRESS.sub("", arg) if _SOCAT_ADDRESS.match(arg) else None
    return arg


def _probe(arg: str, value: str) -> HostProbe | None:
    if "://" in value:
        return None  # a URL: judged as one by the exec policy
    match = _HOST_SPEC.match(value)
    if match is None:
        return None
    host = match["host"]
    if host.startswith("["):
        return HostProbe(arg, host.strip("[]").split("%", 1)[0], True)
    numeric = parse_numeric_host(host)
    decorated = match["port"] is not None or match["rest"] is not None or match["user"] is not None
    if numeric is not None:
        # A bare small number is a count, a timeout or a port; 2130706433 is 127.0.0.1.
        if "." in host or decorated or (host.isdigit() and int(host) > _MAX_PORT):
            return HostProbe(arg, str(numeric), True)
        return None
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return HostProbe(arg, lowered, True)  # curl answers *.localhost with loopback itself, without DNS
    if "." in lowered:
        return HostProbe(arg, lowered, False)
    return None


def network_targets(argv: list[str]) -> tuple[list[HostProbe], str | None]:
    """The hosts a network client's arguments name, and a reason to refuse it outright (or None).

    Other programs get ``([], None)``: their URL arguments are judged by the exec policy as URLs.
    """
    if not argv or argv[0] not in NETWORK_CLIENTS:
        return [], None
    binary, args = argv[0], argv[1:]
    if binary == "git":
        sub = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
        if sub is None or args[sub] not in _GIT_REMOTE:
            return [], None
        args = args[sub + 1 :]
    rerouting = _REROUTING.get(binary, ())
    probes: list[HostProbe] = []
    for i, arg in enumerate(args):
        for name in rerouting:
            if (
                arg == name
                or (name.startswith("--") and arg.startswith(name + "="))
                or (len(name) == 2 and not arg.startswith("--") and arg.startswith(name))
            ):
                return [], f"{binary} {name} sends the connection somewhere the SSRF guard cannot check"
        if binary == "ssh" and arg.startswith("-o"):
            option = arg[2:] or (args[i + 1] if i + 1 < len(args) else "")
            if _SSH_OPTION.match(option):
                return [], f"ssh -o {option.split('=', 1)[0].strip()} sends the connection elsewhere or runs a command"
        if binary == "socat" and _SOCAT_RUNS.match(arg):
            return [], "socat EXEC:/SYSTEM: runs another program"
        value = _value(binary, arg)
        probe = _probe(arg, value) if value else None
        if probe is not None:
            probes.append(probe)
    return probes, None
