"""Broker credentials and ACLs: rendered files, and a real Mosquitto enforcing them."""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path

import pytest
from edge_support import wait_for

from services.sensors.broker import acl_file, password_line
from services.sensors.rules import DeviceInfo, data_topic

DEVICE = DeviceInfo("ws-0001", "ORG1", "WS-P01", "notoginseng", "device")


def test_password_line_is_mosquitto_pbkdf2_sha512() -> None:
    salt = bytes(range(12))
    line = password_line("ws-0001", "secret", salt=salt)
    user, _, rest = line.rstrip("\n").partition(":")
    _, kind, iterations, salt_b64, digest_b64 = rest.split("$")
    assert (user, kind, iterations) == ("ws-0001", "7", "101")
    assert base64.b64decode(salt_b64) == salt
    assert base64.b64decode(digest_b64) == hashlib.pbkdf2_hmac("sha512", b"secret", salt, 101)
    with pytest.raises(ValueError):
        password_line("a:b", "x")


def test_acl_lets_a_device_write_only_its_own_topics() -> None:
    acl = acl_file([DEVICE], gateways=["gateway"])
    assert "user ws-0001\ntopic write daodi/v1/ORG1/ws-0001/data\n" in acl
    assert "user gateway\ntopic read daodi/v1/#" in acl
    assert "readwrite" not in acl


@pytest.mark.mqtt
def test_mosquitto_refuses_a_device_publishing_as_another(tmp_path: Path) -> None:
    from edge.broker import EmbeddedMosquitto, mosquitto_binary
    from edge.mqtt import make_client

    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    other = DeviceInfo("ws-0002", "ORG1", "WS-P01", "notoginseng", "device")
    broker = EmbeddedMosquitto(tmp_path, devices=[DEVICE, other]).start()
    try:
        got: list[str] = []
        sub, address, props = make_client(broker.url("gateway"), "acl-sub")
        ready = threading.Event()
        sub.on_message = lambda _c, _u, m: got.append(m.topic)
        sub.on_subscribe = lambda *a: ready.set()
        sub.connect(address.host, address.port, properties=props)
        sub.loop_start()
        sub.subscribe("daodi/v1/#", qos=1)
        wait_for(ready.is_set, 10, "subscription")
        own = data_topic("ORG1", "ws-0001")
        for attempt, topic in enumerate([data_topic("ORG1", "ws-0002"), own]):
            # A fresh connection each time: mosquitto may drop a client whose publish it refused.
            pub, address, props = make_client(broker.url("ws-0001"), f"acl-pub-{attempt}")
            connected = threading.Event()
            pub.on_connect = lambda _c, _u, _f, reason, _p, ev=connected: (
                ev.set() if not reason.is_failure else None
            )
            pub.connect(address.host, address.port, properties=props)
            pub.loop_start()
            wait_for(connected.is_set, 10, "device connection")
            pub.publish(topic, b"reading", qos=1)
            if topic == own:
                wait_for(lambda: own in got, 10, "the device's own message")
            pub.disconnect()
            pub.loop_stop()
        # Messages from one broker arrive in order: had the forged one been let through, it would be first.
        assert got == [own]
        sub.disconnect()
        sub.loop_stop()
    finally:
        broker.stop()
