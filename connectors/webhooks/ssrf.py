"""Which receivers a webhook may be sent to (pure): no request may reach the hub's own network.

A receiver URL is refused when it is not https, or when any address its host resolves to is loopback,
private (RFC 1918), link-local, shared (CGNAT, RFC 6598), an IPv6 unique local address, multicast,
unspecified or reserved. A deployment may allow plain http and the private ranges (a pilot on one
network, the tests); multicast, unspecified and reserved addresses are never a receiver. The dispatcher
checks the addresses it resolved at send time and connects to exactly those (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from hub.errors import LintasError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_RFC1918: Final = tuple(
    ipaddress.IPv4Network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
_ULA: Final = ipaddress.IPv6Network("fc00::/7")


class UnsafeReceiver(LintasError):
    """A receiver URL the policy refuses; names the URL part and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class AddressClass(StrEnum):
    loopback = "loopback"
    private = "private"
    link_local = "link-local"
    cgnat = "cgnat"
    unique_local = "unique-local"
    multicast = "multicast"
    unspecified = "unspecified"
    reserved = "reserved"


#: What ``allow_private`` lets through; the rest is never a receiver.
PRIVATE_CLASSES: Final = frozenset(
    {
        AddressClass.loopback,
        AddressClass.private,
        AddressClass.link_local,
        AddressClass.cgnat,
        AddressClass.unique_local,
    }
)


@dataclass(frozen=True)
class ReceiverPolicy:
    allow_private: bool = False
    allow_http: bool = False


def address_class(address: IPAddress) -> AddressClass | None:
    """The non-public class of an address; ``None`` for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address written as IPv6 (::ffff:a.b.c.d, 64:ff9b::a.b.c.d) is that address.
        mapped = address.ipv4_mapped or _nat64(address)
        if mapped is not None:
            return address_class(mapped)
    if address.is_unspecified:
        return AddressClass.unspecified
    if address.is_loopback:
        return AddressClass.loopback
    if address.is_multicast:
        return AddressClass.multicast
    if address.is_link_local:
        return AddressClass.link_local
    if isinstance(address, ipaddress.IPv4Address):
        if address in _CGNAT:
            return AddressClass.cgnat
        if any(address in net for net in _RFC1918):
            return AddressClass.private
    elif address in _ULA:
        return AddressClass.unique_local
    if address.is_reserved or address.is_private or not address.is_global:
        return AddressClass.reserved
    return None


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(address.packed[-4:])
    return None


@dataclass(frozen=True)
class Target:
    """A receiver URL taken apart: what to resolve and what to connect to."""

    scheme: str
    host: str
    port: int


def parse_target(url: str, policy: ReceiverPolicy) -> Target:
    """The URL's host and port; refuses other schemes, credentials in the URL, and http unless allowed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeReceiver("url.scheme", f"{scheme or 'none'} is not https")
    if scheme == "http" and not policy.allow_http:
        raise UnsafeReceiver("url.scheme", "http is not allowed: receivers must use https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeReceiver("url.userinfo", "credentials in the URL are not allowed")
    if not parts.hostname:
        raise UnsafeReceiver("url.host", "missing")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeReceiver("url.port", str(exc)) from exc
    return Target(scheme=scheme, host=parts.hostname, port=port)


def literal_address(host: str) -> IPAddress | None:
    """The address a host is when it is written as one (``127.0.0.1``, ``::1``)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_receiver(url: str, addresses: Sequence[IPAddress], policy: ReceiverPolicy) -> Target:
    """The target of ``url`` when the policy allows it and every address it resolved to; raises
    :class:`UnsafeReceiver` naming the reason otherwise."""
    target = parse_target(url, policy)
    if not addresses:
        raise UnsafeReceiver("url.host", f"{target.host} resolves to no address")
    for address in addresses:
        found = address_class(address)
        if found is None or (policy.allow_private and found in PRIVATE_CLASSES):
            continue
        raise UnsafeReceiver("url.host", f"{target.host} resolves to {address}, a {found.value} address")
    return target
