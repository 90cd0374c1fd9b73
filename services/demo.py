"""`daodi demo`: the platform on its embedded defaults, with the URLs to open."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from services.app import create_app, serve
from services.demo_data import seed_demo
from services.keys import KeyRing
from services.settings import Settings
from services.witness.app import build_witness, create_witness_app


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on host."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def serve_in_thread(app: object, host: str, port: int) -> uvicorn.Server:
    """Run an ASGI app with uvicorn in a daemon thread; returns once it accepts connections."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started and thread.is_alive():
        started.wait(0.02)
    return server


def run_demo(*, host: str, port: int) -> int:
    """Build the platform from default settings plus one local witness, serve it, print where to look."""
    settings = Settings()
    if settings.public_base_url == Settings.model_fields["public_base_url"].default:
        settings = settings.model_copy(update={"public_base_url": f"http://{host}:{port}"})
    if not settings.witness_urls:
        # One witness, as a regulator would run it: its own key and state, following our log key.
        log_key = KeyRing.load(settings.key_dir, settings.log_origin).log.verifier_key()
        witness = build_witness(
            "witness.daodi.dev/demo-regulator", Path(settings.key_dir).parent / "witness", [log_key]
        )
        witness_port = free_port()
        serve_in_thread(create_witness_app(witness), "127.0.0.1", witness_port)
        settings = settings.model_copy(
            update={
                "witness_urls": [f"http://127.0.0.1:{witness_port}"],
                "witness_vkeys": [witness.signer.verifier_key()],
            }
        )
    app = create_app(settings)
    base = settings.public_base_url
    # Demo data first: it writes the device roster the gateway and the simulator then read.
    demo = seed_demo(app.state.ctx, now=datetime.now(UTC))
    from edge.demo import start_edge  # the composition root may reach the adapters

    edge = start_edge(app.state.ctx)
    sensors = (
        [
            f"  MQTT broker     {edge.broker}",
            f"  sensors         {edge.devices} simulated devices (roster {edge.roster})",
        ]
        if edge is not None
        else ["  sensors         off (no mosquitto binary; set DAODI_MQTT_URL)"]
    )
    print(
        "\n".join(
            [
                "Daodi Trace demo",
                f"  database        {settings.database_url}",
                f"  keys            {settings.key_dir}",
                f"  witness         {settings.witness_urls[0]}",
                f"  API docs        {base}/docs",
                f"  checkpoint      {base}/ledger/checkpoint",
                f"  verifier key    {base}/ledger/vkey",
                f"  public keys     {base}/api/v1/keys",
                f"  audit the log   .venv/bin/daodi ledger verify --url {base}",
                *sensors,
                *demo.summary(),
                "",
                "Label URIs of the demo decoction-piece lots (open one, or `daodi verify-label URI`):",
                *demo.label_uris.values(),
                "",
            ]
        ),
        flush=True,
    )
    try:
        serve(app, host, port, log_level="warning")
    finally:
        if edge is not None:
            edge.shutdown()
    return 0
