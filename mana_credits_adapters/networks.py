"""Lists of IP networks in settings (`10.0.0.0/8, 192.0.2.7, fd00::/8`)."""

from __future__ import annotations

import functools
import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma- or space-separated addresses and CIDR networks; an address is a network of
    one. Host bits are allowed (`10.1.2.3/8` is `10.0.0.0/8`).

    Raises `ValueError` naming the first entry that is neither."""
    networks = []
    for entry in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


def networks_setting(text: str) -> str:
    """A settings validator: `text` unchanged if `parse_networks` accepts it."""
    parse_networks(text)
    return text
