"""Public verification benchmark: the JSON verdict of a lot label vs a trivial FastAPI JSON endpoint, and a
sheet of 1,000 labels.

Run from the project root:

    .venv/bin/python bench/verify.py                         # 3 rounds x 10 s per endpoint, 64 connections
    .venv/bin/python bench/verify.py --seconds 3 --rounds 1  # quicker

Prints one JSON object on stdout; progress goes to stderr.

Method
- Both apps run the way `daodi serve` runs the platform (`services.app.serve`: the start-up heap frozen out
  of the garbage collector) with the same uvicorn settings (`SERVER`: one worker, asyncio loop, h11 parser,
  no access log, lifespan on so the scan writer flushes at shutdown) in subprocesses on 127.0.0.1, both up
  at once, measured by the same client in the same run with 64 keep-alive connections, alternating for
  `--rounds` rounds of `--seconds` each (a 2 s warm-up first): `wrk -t2 -c64 --latency` when installed
  (`apt-get install wrk`), else an asyncio httpx client (which saturates first on a small machine: then both
  apps measure the client). Each figure is the median over the rounds; the ratio is the median of the
  rounds' ratios, so a burst of other load on a shared machine hits both apps alike.
- The verification app holds a demo-like lot (seed lot -> fresh -> dried -> decoction piece, QC passed; the
  tests' `lots_world`) on SQLite, with a signed checkpoint; the request is the lot's signed Digital Link URI
  with `Accept: application/json`, so every request reads the ledger's head, checks the label signature (its
  verdict cached per URI), logs a scan (buffered for the background writer) and returns the full verdict.
  The verdict is cached per (label, ledger size, checkpoint) and served from the event loop.
- The trivial app is one sync FastAPI route returning a two-key JSON object.
- The label sheet: `services.labels.render.sheet_pdf` for 1,000 signed unit URIs at error correction Q.
- The load average and `uptime` before and after are printed: the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
CONNECTIONS = 64
# Serving settings, the same for both apps (uvicorn's defaults where installed extras would change them).
SERVER: dict[str, Any] = {"workers": 1, "loop": "asyncio", "http": "h11", "access_log": False}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(work: Path) -> Any:
    from services.settings import Settings

    return Settings(
        database_url=f"sqlite:///{work / 'daodi.db'}",
        key_dir=work / "keys",
        public_base_url="http://127.0.0.1",
        background=False,
    )


def serve(kind: str, work: Path, port: int) -> None:
    """Run one app (in the subprocess)."""
    from fastapi import FastAPI

    from services.app import serve

    if kind == "trivial":
        app = FastAPI()

        @app.get("/ping")
        def ping() -> dict[str, Any]:
            return {"ok": True, "service": "trivial"}

    else:
        from services.app import create_app

        app = create_app(_settings(work))
        app.state.ctx.checkpointer.sign()
    serve(app, "127.0.0.1", port, log_level="warning", **SERVER)


def prepare(work: Path) -> str:
    """Build the demo-like lots; return the good lot's label path and query."""
    from lots_world import World
    from test_verify_api import GOOD, build_lots, lot_uri, piece_gtin

    settings = _settings(work)
    world = World(settings)
    build_lots(world)
    uri = lot_uri(settings, piece_gtin(world), GOOD)
    return "/" + uri.split("://", 1)[1].split("/", 1)[1]


def _start(kind: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--work", str(work), "--port", str(port)],
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/docs", timeout=1)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} app did not start")


async def _load(url: str, headers: dict[str, str], seconds: float, warmup: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
        start = time.perf_counter()
        measure_from = start + warmup
        stop = measure_from + seconds

        async def worker() -> None:
            nonlocal errors
            while True:
                t0 = time.perf_counter()
                if t0 >= stop:
                    return
                response = await client.get(url)
                t1 = time.perf_counter()
                if response.status_code != 200:
                    errors += 1
                elif t0 >= measure_from:
                    latencies.append(t1 - t0)

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / seconds, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def _ms(text: str) -> float:
    value = float(text.rstrip("umsµ"))
    unit = text[len(text.rstrip("umsµ")) :]
    return round(value / 1000 if unit in ("us", "µs") else value * 1000 if unit == "s" else value, 2)


def _wrk(url: str, headers: dict[str, str], seconds: float, warmup: float) -> dict[str, Any]:
    """wrk with 2 threads and CONNECTIONS connections; a warm-up run first."""
    head = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    base = ["wrk", "-t2", f"-c{CONNECTIONS}", "--latency", *head]
    subprocess.run([*base, f"-d{max(1, int(warmup))}s", url], capture_output=True, check=True)
    out = subprocess.run(
        [*base, f"-d{int(seconds)}s", url], capture_output=True, text=True, check=True
    ).stdout
    figures: dict[str, Any] = {"errors": 0}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            figures["rps"] = round(float(words[1]), 1)
        elif len(words) == 2 and words[0] in ("50%", "99%"):
            figures["p50_ms" if words[0] == "50%" else "p99_ms"] = _ms(words[1])
        elif "requests in" in line:
            figures["requests"] = int(words[0])
        elif line.strip().startswith("Non-2xx"):
            figures["errors"] = int(words[-1])
    return figures


def _run(client: str, url: str, headers: dict[str, str], seconds: float, warmup: float) -> dict[str, Any]:
    if client == "wrk":
        return _wrk(url, headers, seconds, warmup=warmup)
    return asyncio.run(_load(url, headers, seconds, warmup=warmup))


def measure(
    work: Path, path: str, seconds: float, client: str, rounds: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Both apps up at once (the idle one costs nothing); the client alternates between them, round after
    round, so that a change in the machine's other load hits both alike."""
    targets = {"trivial": ("/ping", {}), "verify": (path, {"Accept": "application/json"})}
    procs = {kind: _start(kind, work) for kind in targets}
    figures: dict[str, list[dict[str, Any]]] = {kind: [] for kind in targets}
    try:
        for n in range(rounds):
            for kind, (route, headers) in targets.items():
                base = procs[kind][1]
                _log(f"round {n + 1}/{rounds}: {kind} with {client} ({base}{route[:60]}...)")
                figures[kind].append(
                    _run(client, base + route, headers, seconds, warmup=2.0 if n == 0 else 1.0)
                )
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(10)
    return figures["trivial"], figures["verify"]


def _median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: round(statistics.median(r[key] for r in rounds), 2)
        for key in ("rps", "p50_ms", "p99_ms", "requests", "errors")
    }


def sheet(work: Path, count: int = 1000) -> dict[str, Any]:
    from services.keys import KeyRing
    from services.labels import render
    from services.labels.rules import label_path, sign_label
    from services.labels.service import new_serial

    keys = KeyRing.load(work / "keys", "bench")
    signer = keys.label_signer
    labels = [
        render.SheetLabel(
            sign_label("http://127.0.0.1:8000", label_path("06901234000016", serial=s), [], "1", signer.key),
            ("夏枯草 饮片", f"serial {s}"),
        )
        for s in (new_serial() for _ in range(count))
    ]
    t0 = time.perf_counter()
    pdf = render.sheet_pdf(labels, "Q", f"bench · {count}")
    seconds = time.perf_counter() - t0
    return {"labels": count, "seconds": round(seconds, 2), "bytes": len(pdf), "goal_seconds": 10}


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=["trivial", "verify"])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--port", type=int)
    parser.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto")
    args = parser.parse_args()
    client = args.client
    if client == "auto":
        import shutil

        client = "wrk" if shutil.which("wrk") else "httpx"
    if args.serve:
        serve(args.serve, args.work, args.port)
        return
    uptime_before = _uptime()
    with tempfile.TemporaryDirectory(prefix="daodi-bench-verify-") as tmp:
        work = Path(tmp)
        _log("building the demo-like lots")
        path = prepare(work)
        trivial_rounds, verify_rounds = measure(work, path, args.seconds, client, args.rounds)
        _log("rendering a sheet of 1,000 labels")
        labels = sheet(work)
    ratios = [round(v["rps"] / t["rps"], 3) for t, v in zip(trivial_rounds, verify_rounds, strict=True)]
    ratio = round(statistics.median(ratios), 3)
    trivial, verify = _median(trivial_rounds), _median(verify_rounds)
    print(
        json.dumps(
            {
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "client": (
                    f"{client}, {CONNECTIONS} connections, {args.rounds} alternating rounds of"
                    f" {args.seconds:g} s per endpoint (2 s warm-up first)"
                ),
                "server": SERVER,
                "load_average": os.getloadavg(),
                "uptime": [uptime_before, _uptime()],
                "trivial": trivial,
                "verify": verify,
                "rounds": {"trivial": trivial_rounds, "verify": verify_rounds, "throughput_ratio": ratios},
                "throughput_ratio": ratio,
                "goals": {"throughput_ratio_min": 0.5, "p99_ms_max": 100},
                "met": {"throughput_ratio": ratio >= 0.5, "p99": verify["p99_ms"] <= 100},
                "sheet": labels,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
