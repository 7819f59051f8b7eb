"""SSRF guard: refuse outbound requests whose host resolves to a non-public address.

A rule author (or whoever can edit a destination) chooses the URL the worker posts to.
Without this check that is a way to reach the hub's own network: the cloud metadata
service (169.254.169.254), Redis or PostgreSQL on localhost, admin panels on 10.x.
The host is resolved the way the socket layer will resolve it (`getaddrinfo`, which also
reads `2130706433` and `0177.0.0.1` as 127.0.0.1), and every address must be public.

DNS rebinding (a name that answers a public address to the check and a private one to the
connection) is closed by pinning: `pin` returns the checked address, and the request is
sent to that address with the original `Host` header and TLS server name, so the name is
resolved once.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

__all__ = [
    "BlockedTarget",
    "InvalidTarget",
    "Pinned",
    "Resolver",
    "UnresolvedHost",
    "blocked_reason",
    "check_url",
    "pin",
    "system_resolver",
    "usable_url",
]

#: `(host, port) -> IP address strings`; tests pass a dict-backed one instead of DNS.
Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}


class BlockedTarget(Exception):
    """The URL points at an address the destination may not reach; permanent."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host, self.address, self.reason = host, address, reason
        shown = host if host == address else f"{host} ({address})"
        super().__init__(f"{shown} is {reason}")


class InvalidTarget(Exception):
    """The URL cannot be sent to at all: not http(s), no host, a bad port, unparsable.

    Permanent: the same URL fails the same way on every try. The message names the problem,
    never the URL's path or query (they may be the secret).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnresolvedHost(Exception):
    """DNS gave no answer for the host; may be transient."""

    def __init__(self, host: str, detail: str) -> None:
        self.host, self.detail = host, detail
        super().__init__(f"cannot resolve {host}: {detail}")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the OS resolver returns for `host`, as the connection would see them."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvedHost(host, type(exc).__name__) from exc
    return [str(info[4][0]) for info in infos]


def blocked_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public destination, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{reason} (embedded in IPv6)" if reason else None
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (cloud metadata lives here)"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private-network address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


@dataclass(frozen=True, slots=True)
class Pinned:
    """Where to send instead of the URL: its checked address, keeping name-based parts."""

    url: str
    host_header: str
    #: The TLS server name (certificate check, SNI); None for plain http.
    sni_hostname: str | None


def check_url(url: str, *, resolver: Resolver = system_resolver) -> str:
    """Raise BlockedTarget unless every address of the URL's host is public; the first.

    Raises InvalidTarget for a URL that cannot be sent to (judged after the host, so
    `http://0177.0.0.1/`, which httpx refuses, is reported as the loopback address it
    is), and UnresolvedHost when the resolver finds nothing.
    """
    scheme, host, _, _ = _split(url)
    literal = _literal(host) if scheme in _DEFAULT_PORTS and host else None
    if literal is not None:
        _refuse_blocked(host, literal)
    _, host, port = usable_url(url)
    addresses = [_refuse_blocked(host, text) for text in _addresses(host, port, resolver)]
    return addresses[0]


def usable_url(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of a URL that can be sent to; raises InvalidTarget otherwise."""
    scheme, host, port, problem = _split(url)
    if scheme not in _DEFAULT_PORTS:
        shown = f"'{scheme}'" if scheme else "none"
        raise InvalidTarget(f"the url's scheme must be http or https (it is {shown})")
    if problem is not None:
        raise InvalidTarget(f"the url cannot be parsed: {problem}")
    if not host:
        raise InvalidTarget("the url has no host")
    if port is not None and not 0 < port < 65536:
        raise InvalidTarget(f"the url's port {port} is not between 1 and 65535")
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _refuse_blocked(host: str, text: str) -> str:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    reason = blocked_reason(address)
    if reason is not None:
        raise BlockedTarget(host, str(address), reason)
    return str(address)


def pin(url: str, *, resolver: Resolver = system_resolver) -> Pinned:
    """Check the URL and return it aimed at the checked address.

    Raises BlockedTarget / InvalidTarget / UnresolvedHost as `check_url` does.
    """
    address = check_url(url, resolver=resolver)
    parsed = httpx.URL(url)  # check_url refused what httpx cannot parse
    return Pinned(
        url=str(parsed.copy_with(host=address)),
        host_header=parsed.netloc.decode("ascii"),
        sni_hostname=parsed.host if parsed.scheme == "https" else None,
    )


def _split(url: str) -> tuple[str, str, int | None, str | None]:
    """Scheme, host, port, and why httpx refuses the URL (None when it does not).

    A URL httpx refuses (`http://0177.0.0.1/`) is read leniently, so its host is judged
    anyway and the verdict does not depend on one library's parser.
    """
    try:
        parsed = httpx.URL(url)
        scheme, host, port = parsed.scheme, parsed.host, parsed.port
    except (httpx.InvalidURL, ValueError) as exc:  # ValueError: idna's, from .host (xn--)
        problem = str(exc) or type(exc).__name__
        scheme = url.partition(":")[0].strip().lower() if "://" in url else ""
        try:
            loose = urllib.parse.urlsplit(url)
            return loose.scheme.lower(), loose.hostname or "", None, problem
        except ValueError:  # http://[::1 (an unclosed bracket)
            return scheme, "", None, problem
    return scheme, host, port, None


def _addresses(host: str, port: int, resolver: Resolver) -> Sequence[str]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    found = list(resolver(host, port))
    if not found:
        raise UnresolvedHost(host, "no addresses")
    return found


def _literal(host: str) -> str | None:
    """An IP literal as the socket layer reads it, including inet_aton's old forms.

    `inet_aton` accepts `2130706433`, `0x7f.1` and `0177.0.0.1`, and so does getaddrinfo:
    reading them here keeps a test resolver (or a resolver that skips them) from hiding them.
    """
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    if host.isascii() and all(c.isalnum() or c == "." for c in host) and host[:1].isdigit():
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None
