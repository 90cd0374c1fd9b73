"""Thin MQTT adapters: shape received messages for the sensor service, and read presence messages.

No business rule lives here: `services.sensors.rules` decides, `services.sensors.service` records.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from services.sensors.rules import Accepted, Rejected
from services.sensors.service import CheckTask, Message, Presence, SensorIngest, replayed

__all__ = ["Presence", "data_message", "handle_data", "handle_presence", "prepare_data", "replayed"]

log = logging.getLogger(__name__)


def data_message(topic: str, payload: bytes, received: datetime) -> Message:
    """The service's view of a received message."""
    return Message(topic, payload, received)


def handle_data(ingest: SensorIngest, message: Message) -> Accepted | Rejected:
    """Apply the device protocol to one data message."""
    return ingest.check(message)


def prepare_data(ingest: SensorIngest, message: Message) -> CheckTask | Accepted | Rejected:
    """Look the device up; a task for a check worker, or the verdict when it is decided here."""
    return ingest.prepare(message)


def handle_presence(ingest: SensorIngest, message: Message) -> Presence | None:
    """Parse a birth/death message of a known device; None (logged) when it is not one."""
    try:
        info = json.loads(message.payload) if message.payload else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        log.warning("unreadable presence message on %s", message.topic)
        info = {}
    if not isinstance(info, dict):
        info = {}
    presence = ingest.presence(message.topic, info, message.received_ms)
    if presence is None:
        log.info("ignored presence message on %s (not a known device's birth or death)", message.topic)
    else:
        log.info("device %s %s %s", presence.device, presence.kind, info)
    return presence
