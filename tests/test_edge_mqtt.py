"""The MQTT transport (`edge.mqtt`): buffered reads, joined writes and batched PUBACKs, alone and against a
real broker."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from edge_support import MqttBroker, forget_session, wait_for

from edge.mqtt import Client, _BufferedSocket, make_client


@pytest.fixture
def pair() -> Iterator[tuple[_BufferedSocket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    buffered = _BufferedSocket(ours)
    try:
        yield buffered, theirs
    finally:
        buffered.close()
        theirs.close()


def test_buffered_socket_serves_small_reads_from_one_receive(
    pair: tuple[_BufferedSocket, socket.socket],
) -> None:
    buffered, peer = pair
    peer.sendall(b"\x30\x05hello\x40\x02\x00\x07")
    assert buffered.recv(1) == b"\x30"
    # The rest is buffered now: paho's loop sees it through pending() and does not wait in select().
    assert buffered.pending() == 10
    assert buffered.recv(1) == b"\x05"
    assert buffered.recv(5) == b"hello"
    assert buffered.recv(100) == b"\x40\x02\x00\x07"
    assert buffered.pending() == 0
    with pytest.raises(BlockingIOError):
        buffered.recv(1)
    peer.close()
    assert buffered.recv(1) == b""  # end of stream, as paho expects it


def test_buffered_socket_returns_a_large_packet_in_pieces(
    pair: tuple[_BufferedSocket, socket.socket],
) -> None:
    buffered, peer = pair
    data = bytes(range(256)) * 1024  # 256 KiB: more than one refill
    threading.Thread(target=peer.sendall, args=(data,), daemon=True).start()
    got = bytearray()

    def read_some() -> bool:
        with contextlib.suppress(BlockingIOError):
            got.extend(buffered.recv(len(data) - len(got)))
        return len(got) >= len(data)

    wait_for(read_some, 10, "the whole packet")
    assert got == data
    assert buffered.pending() == 0


def _subscriber(url: str, client_id: str, topic: str, *, stock: bool) -> tuple[Any, list[Any]]:
    """A subscriber with Receive Maximum 100; the stock one acks in its callback, ours is acked by the
    test, from another thread, as the gateway's recorder does."""
    client, address, props = make_client(
        url, client_id, manual_ack=True, session_expiry=300, receive_maximum=100, stock=stock
    )
    got: list[Any] = []
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        got.append(message)
        if stock:
            client.ack(message.mid, message.qos)

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect(address.host, address.port, clean_start=True, properties=props)
    client.loop_start()
    client.subscribe(topic, qos=1)
    wait_for(subscribed.is_set, 10, "subscription")
    return client, got


@pytest.mark.mqtt
def test_client_receives_what_stock_paho_receives_and_its_batched_acks_stick(
    mqtt_broker: MqttBroker, mqtt_ids: str
) -> None:
    topic = f"daodi/v1/ORG{mqtt_ids}/transport/data"
    ours, got = _subscriber(mqtt_broker.url("gateway"), f"ours-{mqtt_ids}", topic, stock=False)
    stock, stock_got = _subscriber(mqtt_broker.url("gateway"), f"stock-{mqtt_ids}", topic, stock=True)
    assert isinstance(ours, Client) and not isinstance(stock, Client)
    pub, address, props = make_client(mqtt_broker.url("simulator"), f"pub-{mqtt_ids}")
    pub.max_inflight_messages_set(200)
    pub.connect(address.host, address.port, properties=props)
    pub.loop_start()
    # Many small packets (several per read, and per write from the publisher, also our client), and some
    # larger than the 64 KiB read.
    payloads = [f"m{i:05d}".encode() * (1 + (i % 7)) for i in range(3000)]
    for i in (10, 1500, 2999):
        payloads[i] = bytes([i % 251]) * 150_000
    try:
        # In rounds below the broker's default queue limit (1,000 messages), so it drops nothing.
        for first in range(0, len(payloads), 250):
            for payload in payloads[first : first + 250]:
                pub.publish(topic, payload, qos=1)
            published = min(first + 250, len(payloads))
            acked = first
            while acked < published:
                # Receive Maximum 100: nothing more arrives until these are acked.
                wait_for(lambda n=acked: len(got) > n, 30, f"message {acked}")
                batch = got[acked:]
                ours.ack_many(m.mid for m in batch)
                acked += len(batch)
            wait_for(lambda n=published: len(stock_got) >= n, 30, f"the stock subscriber's {published}")
        assert [m.payload for m in got] == payloads
        assert [m.payload for m in stock_got] == payloads

        # Resume the session: had a PUBACK been lost, the broker would send that message again
        # before anything published afterwards. First a round trip (the broker answers a client's packets
        # in order), so the last PUBACKs are in before the DISCONNECT: a DISCONNECT queued right behind
        # PUBACKs lost some of them now and then, with stock paho's per-message acks too; the broker then
        # redelivers them, which the gateway dedupes.
        processed = threading.Event()
        ours.on_unsubscribe = lambda *a: processed.set()
        ours.unsubscribe(f"daodi/v1/ORG{mqtt_ids}/round-trip/data")
        wait_for(processed.is_set, 10, "the broker's answer after the last PUBACKs")
        ours.disconnect()
        ours.loop_stop()
        again, address, props = make_client(
            mqtt_broker.url("gateway"), f"ours-{mqtt_ids}", manual_ack=True, session_expiry=300
        )
        resumed: list[Any] = []
        again.on_message = lambda _c, _u, m: resumed.append(m)
        again.connect(address.host, address.port, clean_start=False, properties=props)
        again.loop_start()
        wait_for(again.is_connected, 10, "reconnection")
        pub.publish(topic, b"after", qos=1)
        wait_for(lambda: any(m.payload == b"after" for m in resumed), 10, "the message after")
        assert [m.payload for m in resumed] == [b"after"]
        again.disconnect()
        again.loop_stop()
    finally:
        pub.disconnect()
        pub.loop_stop()
        stock.disconnect()
        stock.loop_stop()
        for client_id in (f"ours-{mqtt_ids}", f"stock-{mqtt_ids}"):
            forget_session(mqtt_broker.url("gateway"), client_id)
