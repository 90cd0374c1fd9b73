"""The HTTP application: `create_app(settings)` wires everything; nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from mobile_api.api import router as mobile_router
from services import problems
from services.audit.api import router as audit_router
from services.catalog.api import router as catalog_router
from services.context import Context, build_context
from services.deps import Ctx
from services.epcis.api import router as epcis_router
from services.heap import freeze_startup_heap
from services.labels.api import router as labels_router
from services.ledger.api import router as ledger_router
from services.lots.api import events_router, lots_router
from services.registry.api import router as registry_router
from services.sensors.api import router as sensors_router
from services.sensors.service import published_device_keys
from services.settings import Settings
from services.verify.api import router as verify_router


class KeysOut(BaseModel):
    log: list[str]
    labels: dict[str, str]
    witnesses: list[str]
    devices: dict[str, str]


def create_app(settings: Settings | None = None, *, context: Context | None = None) -> FastAPI:
    """Build the app for `settings` (or an already built context)."""
    ctx = context or build_context(settings or Settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if ctx.settings.background:
            ctx.start()
        try:
            yield
        finally:
            ctx.stop()

    app = FastAPI(
        title="Daodi Trace",
        version="0.1.0",
        description="Verifiable traceability for daodi medicinal herbs: ledger, lots, labels, audit.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    problems.install(app)
    # The public resolver first: label scans are the hottest requests, and routes are matched in order.
    app.include_router(verify_router)
    app.include_router(ledger_router)
    app.include_router(catalog_router)
    app.include_router(registry_router)
    app.include_router(lots_router)
    app.include_router(events_router)
    app.include_router(epcis_router)
    app.include_router(labels_router)
    app.include_router(mobile_router)
    app.include_router(audit_router)
    app.include_router(sensors_router)

    @app.get("/api/v1/keys", response_model=KeysOut, tags=["keys"])
    def keys(ctx: Ctx) -> KeysOut:
        """Every public key a regulator needs to re-verify the log offline."""
        return KeysOut(
            log=[ctx.keys.log.verifier_key()],
            labels=ctx.keys.label_public_keys(),
            witnesses=ctx.settings.witness_vkeys,
            devices=published_device_keys(ctx.read_engine, ctx.settings.key_dir, ctx.settings.device_roster),
        )

    @app.get("/healthz", tags=["ops"])
    def healthz(ctx: Ctx) -> dict[str, object]:
        """Liveness plus the log size and whether the checkpointer is healthy."""
        failure = ctx.checkpointer.failure
        return {"ok": failure is None, "log_size": ctx.log.size(), "checkpointer": str(failure or "running")}

    return app


def serve(app: Any, host: str, port: int, **options: Any) -> None:
    """Serve `app` with uvicorn in this process until interrupted, the start-up heap frozen (about 200,000
    objects for the platform, whose full collections paused the event loop for up to 110 ms)."""
    import uvicorn

    freeze_startup_heap()
    uvicorn.run(app, host=host, port=port, **options)
