"""Pure account rules: which network a client address counts against, how long a throttled caller waits."""

from __future__ import annotations

import hashlib
import ipaddress
import math
from datetime import datetime, timedelta


def client_network(host: str | None, *, v4_prefix: int, v6_prefix: int) -> str:
    """The network of a client address, e.g. `203.0.113.0/24`; a host that is no IP address stands for itself.

    Requires 0 <= v4_prefix <= 32 and 0 <= v6_prefix <= 128. An IPv4-mapped IPv6 address counts as IPv4.
    """
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return host[:200]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Network((int(address), v4_prefix), strict=False))
    return str(ipaddress.IPv6Network((int(address), v6_prefix), strict=False))


def throttle_key(scope: str, name: str) -> str:
    """The stored key of a throttled login or network: SHA-256 hex, so typed logins and addresses stay out."""
    return hashlib.sha256(f"{scope}:{name}".encode()).hexdigest()


def window_open(window_start: datetime, window: timedelta, now: datetime) -> bool:
    """Whether a window of failures that began at `window_start` still runs at `now`."""
    return now < window_start + window


def retry_after(window_start: datetime, window: timedelta, now: datetime) -> int:
    """Whole seconds (at least 1) until a window that began at `window_start` ends."""
    return max(1, math.ceil((window_start + window - now).total_seconds()))
