"""Thin MQTT adapters: shape received messages for the sensor service, and read presence messages.

No business rule lives here: `services.sensors.rules` decides, `services.sensors.service` records.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.sensors.rules import Accepted, Rejected, parse_topic
from services.sensors.service import Message, SensorIngest

log = logging.getLogger(__name__)


def data_message(topic: str, payload: bytes, received: datetime) -> Message:
    """The service's view of a received data message."""
    return Message(topic, payload, received)


def handle_data(ingest: SensorIngest, message: Message) -> Accepted | Rejected:
    """Apply the device protocol to one data message."""
    return ingest.check(message)


def replayed(accepted: Accepted) -> Rejected:
    """The quarantine record of a reading whose (device, boot, seq) is already chained."""
    return Rejected("replayed", f"(device, boot, seq) = {accepted.key} is already recorded", accepted.device)


@dataclass(frozen=True, slots=True)
class Presence:
    """A birth or death message: who, and what it said (boot id, firmware, clock state)."""

    device: str
    kind: str
    info: dict[str, Any]


def handle_presence(topic: str, payload: bytes) -> Presence | None:
    """Parse a birth/death message; None (logged) when it is not one."""
    parsed = parse_topic(topic)
    if parsed is None or parsed.kind not in ("birth", "death"):
        return None
    try:
        info = json.loads(payload) if payload else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        log.warning("unreadable %s message on %s", parsed.kind, topic)
        info = {}
    if not isinstance(info, dict):
        info = {}
    log.info("device %s %s %s", parsed.device, parsed.kind, info)
    return Presence(parsed.device, parsed.kind, info)
