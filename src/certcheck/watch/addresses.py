"""Where a webhook may point (against SSRF): https to a public address, unless private ones are
allowed, checked at registration and again at every delivery.

A name is resolved here and the request then goes to the address we checked (`Target.pinned`),
with the name in the Host header and in TLS (SNI and certificate check): a name that resolves
to a public address when checked and to a private one a moment later cannot redirect a delivery.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from certcheck.errors import WebhookUrlRefused

MAX_URL_LENGTH = 2_048
_RESOLVE_TIMEOUT = 5.0  # seconds a name may take to resolve
_DEFAULT_PORTS = {"https": 443, "http": 80}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL taken apart: the request goes to `pinned(address)` with `host_header`."""

    parts: SplitResult
    host: str  # lower case, IDNA-encoded; an IP literal without brackets
    port: int

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _DEFAULT_PORTS[self.parts.scheme]
        return host if self.port == default else f"{host}:{self.port}"

    def pinned(self, address: IPAddress) -> str:
        """The URL with `address` in place of the host name."""
        host = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{host}:{self.port}"
        return urlunsplit((self.parts.scheme, netloc, self.parts.path or "/", self.parts.query, ""))


def parse(url: str, *, allow_private: bool) -> Target:
    """The URL's parts, or WebhookUrlRefused saying why it can never be delivered to."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlRefused(f"not a URL: {exc}") from exc
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise WebhookUrlRefused("the URL must be https://" + (" or http://" * allow_private))
    if not parts.hostname:
        raise WebhookUrlRefused("the URL has no host")
    if parts.username is not None or parts.password is not None or parts.fragment:
        # Credentials in a URL end up in logs; the signature is how the receiver trusts us.
        raise WebhookUrlRefused("the URL must carry no user, password or fragment")
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise WebhookUrlRefused("the host is not a valid name") from exc
    return Target(parts, host, port or _DEFAULT_PORTS[parts.scheme])


def is_public(address: IPAddress) -> bool:
    """Reachable on the internet: not loopback, private, link-local, shared, reserved ..."""
    if address.version == 6 and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


async def resolve(target: Target, *, allow_private: bool) -> IPAddress:
    """The address to send to; WebhookUrlRefused if the name does not resolve or any of its
    addresses is not public (an attacker's name may resolve to a public and a private one)."""
    addresses = await _addresses(target)
    if not allow_private:
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise WebhookUrlRefused(
                f"{target.host} resolves to {refused[0]}, which is not a public address "
                "(CERTCHECK_WEBHOOK_ALLOW_PRIVATE=1 allows it, for local trials)"
            )
    return addresses[0]


async def _addresses(target: Target) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(target.host)]
    except ValueError:
        pass  # a name
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT):
            infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise WebhookUrlRefused(f"{target.host} does not resolve") from exc
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise WebhookUrlRefused(f"{target.host} does not resolve")
    return found


async def check(url: str, *, allow_private: bool) -> Target:
    """At registration: the URL is well formed and its host resolves to acceptable addresses."""
    target = parse(url, allow_private=allow_private)
    await resolve(target, allow_private=allow_private)
    return target
