"""Whether an address is this machine's: servers bind there by default, and a judge server there
needs no API key."""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlparse


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_local_url(url: str | None) -> bool:
    """Whether ``url`` names a server on this machine."""
    return is_loopback(urlparse(url).hostname) if url else False
