"""MQTT transport: broker URLs and the paho clients the gateway, the simulator and the benches use.

The only module that imports paho. Clients are paho-mqtt 2.x, callback API v2, MQTT 5. `make_client`
returns a `Client`: stock paho, except that it reads the socket through a buffer and acks in batches.

Stock paho reads every packet with a select() and three to five recv() calls (the fixed header a byte at
a time), and writes every PUBACK with its own send() plus a byte to wake its network thread. At thousands
of small messages a second these system calls are a third of a subscriber's CPU (`bench/edge.py` measures
both clients). `Client` instead reads up to 64 KiB at a time and serves paho's small reads from that buffer,
reporting what is left through `pending()`, the hook paho already polls for TLS sockets, so select() never
waits while whole packets sit in the buffer; and `ack_many` queues the PUBACKs of a batch as one write.
Everything else, sessions, flow control, reconnects, is paho's own.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

__all__ = [
    "BrokerAddress",
    "Client",
    "MQTTMessage",
    "PacketTypes",
    "Properties",
    "SubscribeOptions",
    "make_client",
    "parse_mqtt_url",
]

MQTTMessage = mqtt.MQTTMessage

_READ_SIZE = 65536
_READS_PER_LOOP = 256
"""Packets read from the buffer per network-loop pass before paho gets to write and keep alive."""
_PUBACK = struct.Struct("!BBH")
_PUBACK_HEADER = 0x40
"""PUBACK, remaining length 2: packet id only, reason Success (MQTT 5 section 3.4.2.1)."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> BrokerAddress:
    """mqtt://[user[:password]@]host[:port] (mqtts:// for TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


class _BufferedSocket:
    """A connected socket whose reads come from a buffer refilled 64 KiB at a time.

    `recv` returns at most what paho asks for; `pending` is what the buffer holds (plus what TLS holds),
    which tells paho's loop to read again without waiting in select().
    """

    __slots__ = ("_buffer", "_socket")

    def __init__(self, sock: Any) -> None:
        self._socket = sock
        self._buffer = bytearray()

    def recv(self, size: int) -> bytes:
        buffer = self._buffer
        if not buffer:
            data: bytes = self._socket.recv(max(size, _READ_SIZE))
            if len(data) <= size:
                return data  # everything asked for, or end of stream (b"")
            buffer += data
        out = bytes(buffer[:size])
        del buffer[:size]
        return out

    def pending(self) -> int:
        inner = getattr(self._socket, "pending", None)
        return len(self._buffer) + (inner() if inner is not None else 0)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        sent: int = self._socket.send(data)
        return sent

    def fileno(self) -> int:
        fd: int = self._socket.fileno()
        return fd

    def setblocking(self, flag: bool) -> None:
        self._socket.setblocking(flag)

    def close(self) -> None:
        self._buffer.clear()
        self._socket.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)


class Client(mqtt.Client):
    """paho's client with buffered reads (`_BufferedSocket`) and batched PUBACKs (`ack_many`)."""

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho reads one packet per pass of its loop; go on while whole packets are buffered."""
        rc = super().loop_read(max_packets)
        reads = 1
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and reads < _READS_PER_LOOP:
            sock = self._sock
            if not isinstance(sock, _BufferedSocket) or not sock.pending():
                break
            rc = super().loop_read(max_packets)
            reads += 1
        return rc

    def ack_many(self, mids: Iterable[int]) -> MQTTErrorCode:
        """Acknowledge QoS 1 messages (manual_ack) with one write of their PUBACKs."""
        packet = b"".join([_PUBACK.pack(_PUBACK_HEADER, 2, mid) for mid in mids])
        if not packet:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        # The queue entry is a plain write: paho looks only at PUBLISH and DISCONNECT entries when
        # they are sent, and keeps no state for an outgoing PUBACK.
        rc: MQTTErrorCode = self._packet_queue(PacketTypes.PUBACK << 4, packet, 0, 0)
        return rc


def make_client(
    url: str,
    client_id: str,
    *,
    manual_ack: bool = False,
    session_expiry: int = 0,
    receive_maximum: int = 0,
    stock: bool = False,
) -> tuple[Client, BrokerAddress, Properties]:
    """An MQTT 5 client for `url` (not connected) and its CONNECT properties.

    `stock` gives paho's own client class (`bench/edge.py` measures both)."""
    address = parse_mqtt_url(url)
    factory = mqtt.Client if stock else Client
    client = factory(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if session_expiry:
        props.SessionExpiryInterval = session_expiry
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    client.reconnect_delay_set(1, 2)
    return client, address, props  # type: ignore[return-value]
