"""Mosquitto credentials and ACLs, rendered from the devices (pure functions, no I/O).

Password lines use Mosquitto 2's PBKDF2-SHA512 format (`$7$<iterations>$<base64 salt>$<base64 hash>`).
ACLs: the gateway account reads every device topic; each device account may write only under its own id
(data, birth, death) and read its own commands.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping

from services.sensors.rules import TOPIC_ROOT, DeviceInfo

_ITERATIONS = 101  # what mosquitto_passwd uses for $7$ hashes


def password_line(username: str, password: str, *, salt: bytes | None = None) -> str:
    """One line of a Mosquitto password file."""
    if ":" in username or "\n" in username:
        raise ValueError(f"invalid broker username {username!r}")
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    b64 = base64.b64encode
    return f"{username}:$7${_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}\n"


def password_file(credentials: Mapping[str, str]) -> str:
    """A Mosquitto password file for username -> password."""
    return "".join(password_line(user, pw) for user, pw in sorted(credentials.items()))


def acl_file(
    devices: Iterable[DeviceInfo], *, gateways: Iterable[str] = ("gateway",), publishers: Iterable[str] = ()
) -> str:
    """A Mosquitto ACL file: gateways read all device topics, each device writes only its own topics.

    `publishers` (the simulator, benches) may write under every device; never give that to a real device.
    """
    lines: list[str] = []
    for user in gateways:
        lines += [f"user {user}", f"topic read {TOPIC_ROOT}/#", f"topic write {TOPIC_ROOT}/+/+/cmd/#", ""]
    for user in publishers:
        lines += [f"user {user}", f"topic readwrite {TOPIC_ROOT}/#", ""]
    for d in sorted(devices, key=lambda d: d.device):
        base = f"{TOPIC_ROOT}/{d.org}/{d.device}"
        lines += [
            f"user {d.device}",
            f"topic write {base}/data",
            f"topic write {base}/birth",
            f"topic write {base}/death",
            f"topic read {base}/cmd/#",
            "",
        ]
    return "\n".join(lines)
