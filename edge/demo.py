"""The edge part of `daodi demo`: a broker (DAODI_MQTT_URL, else an embedded Mosquitto), the gateway and
the simulator, all in the demo process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from edge.broker import EmbeddedMosquitto, mosquitto_binary
from edge.simulator import Simulator, load_devices, write_roster
from services.context import Context
from services.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class EdgeDemo:
    """What the demo started, to print and to stop."""

    broker: str
    embedded: EmbeddedMosquitto | None
    roster: Path
    devices: int
    stop: threading.Event

    def shutdown(self) -> None:
        self.stop.set()
        if self.embedded is not None:
            self.embedded.stop()


def start_edge(ctx: Context, *, devices: int = 9, rate: float = 3.0) -> EdgeDemo | None:
    """Start broker, gateway and simulator in the background; None (logged) if no broker is available."""
    from edge.gateway import run_gateway

    settings: Settings = ctx.settings
    var = Path(settings.key_dir).parent
    embedded = None
    if settings.mqtt_url:
        gateway_url = simulator_url = settings.mqtt_url
    elif mosquitto_binary() is not None:
        embedded = EmbeddedMosquitto(var / "mqtt").start()
        gateway_url, simulator_url = embedded.url("gateway"), embedded.url("simulator")
    else:
        log.warning("no mosquitto binary and DAODI_MQTT_URL unset: the demo runs without sensors")
        return None
    roster = settings.device_roster
    sims = load_devices(settings.key_dir, devices, roster=roster)
    write_roster(roster, sims)
    edge_settings = settings.model_copy(
        update={"mqtt_url": gateway_url, "edge_roster": roster, "edge_client_id": "daodi-edge-demo"}
    )
    stop = threading.Event()
    threading.Thread(
        target=run_gateway, args=(edge_settings,), kwargs={"context": ctx, "stop": stop}, daemon=True
    ).start()
    simulator = Simulator(simulator_url, sims, rate, client_id="daodi-sim-demo").start()

    def simulate() -> None:
        simulator.run()

    def halt() -> None:
        stop.wait()
        simulator.stop()

    threading.Thread(target=simulate, name="simulator", daemon=True).start()
    threading.Thread(target=halt, name="simulator-stop", daemon=True).start()
    shown = gateway_url.split("@")[-1]
    return EdgeDemo(
        f"mqtt://{shown}" if embedded is None else f"embedded mosquitto on {shown}",
        embedded,
        roster,
        devices,
        stop,
    )
