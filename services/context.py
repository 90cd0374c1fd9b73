"""Everything a running platform holds, built from Settings by `build_context` (never at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from ledger.checkpointer import Checkpointer
from ledger.log import Log
from services.db import ledger_store, make_engine
from services.keys import KeyRing
from services.settings import Settings


@dataclass(slots=True)
class Context:
    """The wiring of one process: engines, the log, keys and background workers."""

    settings: Settings
    engine: Engine
    read_engine: Engine
    log: Log
    keys: KeyRing
    checkpointer: Checkpointer
    started: bool = field(default=False)

    def start(self) -> None:
        """Start background workers (checkpointer)."""
        if not self.started:
            self.checkpointer.sign()
            self.checkpointer.start()
            self.started = True

    def stop(self) -> None:
        """Stop workers and release connections."""
        if self.started:
            self.checkpointer.stop()
            self.started = False
        self.engine.dispose()
        self.read_engine.dispose()


def build_context(settings: Settings) -> Context:
    """Open the database, load or create keys, recover the log and check it against its last checkpoint."""
    from services.migrate import upgrade
    from services.recovery import recover

    upgrade(settings)
    engine = make_engine(settings.database_url, immediate=True)
    read_engine = make_engine(settings.database_url, immediate=False)
    keys = KeyRing.load(settings.key_dir, settings.log_origin)
    log = Log(ledger_store(settings.database_url))
    recover(log, keys.log_verifier)
    cosigner = None
    if settings.witness_urls:
        from ledger.note import NoteVerifier
        from services.witness.client import WitnessClient

        if len(settings.witness_vkeys) != len(settings.witness_urls):
            raise ValueError("DAODI_WITNESS_URLS and DAODI_WITNESS_VKEYS must list the same witnesses")
        verifiers = [NoteVerifier.from_vkey(v) for v in settings.witness_vkeys]
        cosigner = WitnessClient(log, list(zip(settings.witness_urls, verifiers, strict=True)))
    checkpointer = Checkpointer(
        log, keys.log, settings.log_origin, interval=settings.checkpoint_interval, cosigner=cosigner
    )
    return Context(settings, engine, read_engine, log, keys, checkpointer)
