"""MQTT transport: broker URLs and the paho clients the gateway, the simulator and the benches use.

The only module that imports paho. Clients are paho-mqtt 2.x, callback API v2, MQTT 5. `make_client`
returns a `Client`: stock paho, except that it reads through a buffer, writes what is queued in one send,
and acks in batches.

Stock paho reads every packet with a select() and three to five recv() calls (the fixed header a byte at
a time), and writes every packet with its own send() (on loopback TCP a send also pays for the receiver's
side), plus a byte to wake its network thread when another thread queued it. At thousands of small
messages a second these system calls are a third of a subscriber's CPU (`bench/edge.py` measures both
clients). `Client` instead reads up to 64 KiB at a time and serves paho's small reads from that buffer,
reporting what is left through `pending()`, the hook paho already polls for TLS sockets, so select() never
waits while whole packets sit in the buffer; joins the packets queued since its last write into one send;
and `ack_many` queues the PUBACKs of a batch as one packet. Everything else, sessions, flow control,
keep-alive, reconnects, is paho's own. The overrides touch paho's private `_create_socket`,
`_packet_write` and `_out_packet`, the same in 2.1 and 2.2 (`paho-mqtt>=2.1,<2.3`);
`tests/test_edge_mqtt.py` runs both clients side by side against a real broker.
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
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

__all__ = [
    "BrokerAddress",
    "Client",
    "MQTTMessage",
    "PacketTypes",
    "Properties",
    "SubscribeOptions",
    "disconnect_with_will",
    "make_client",
    "parse_mqtt_url",
]

MQTTMessage = mqtt.MQTTMessage

_READ_SIZE = 65536
_READS_PER_LOOP = 256
"""Packets read from the buffer per network-loop pass before paho gets to write and keep alive."""
_WRITE_SIZE = 65536
"""Queued packets joined into one send, at most (about) this many bytes."""
_PUBLISH = PacketTypes.PUBLISH << 4
_DISCONNECT = PacketTypes.DISCONNECT << 4
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
    """paho's client with buffered reads (`_BufferedSocket`), joined writes (`_packet_write`) and batched
    PUBACKs (`ack_many`)."""

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

    def _packet_write(self) -> MQTTErrorCode:
        """Join the packets queued so far into one send (paho sends each on its own), then write."""
        queued = self._out_packet
        if len(queued) > 1:
            taken: list[Any] = []
            size = 0
            while queued and size < _WRITE_SIZE:
                packet = queued[0]
                if not _plain(packet):
                    break
                taken.append(queued.popleft())
                size += len(packet["packet"])
            if len(taken) > 1:
                joined = b"".join([p["packet"] for p in taken])
                first = taken[0]
                queued.appendleft(
                    {
                        "command": first["command"],
                        "mid": first["mid"],
                        "qos": first["qos"],
                        "pos": 0,
                        "to_process": len(joined),
                        "packet": joined,
                        "info": None,
                    }
                )
            elif taken:
                queued.appendleft(taken[0])
        rc: MQTTErrorCode = super()._packet_write()
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


def disconnect_with_will(client: mqtt.Client) -> MQTTErrorCode:
    """End the connection with reason 0x04 (MQTT 5): the broker publishes the client's will, as it would
    had the connection been lost."""
    rc: MQTTErrorCode = client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=0x04))
    return rc


def _plain(packet: Any) -> bool:
    """Whether paho does nothing after writing this queued packet but drop it (so it may be joined):
    unstarted, and neither a QoS 0 PUBLISH (paho calls on_publish) nor a DISCONNECT (paho closes)."""
    command = packet["command"] & 0xF0
    if packet["pos"] or command == _DISCONNECT:
        return False
    return not (command == _PUBLISH and packet["qos"] == 0)


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
