"""Headless Chromium loads the public page of a demo-like lot: the verdict text for a good lot and for one
grown outside its GI region; screenshots are kept under test-output/."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from lots_world import World
from test_verify_api import BAD, GOOD, build_lots, lot_uri, piece_gtin

from services.app import create_app
from services.settings import Settings

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (CI installs Debian chromium)"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Settings, World]]:
    world = World(settings)
    build_lots(world)
    app = create_app(settings)
    app.state.ctx.checkpointer.sign()
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("the app did not start")
        time.sleep(0.05)
    try:
        yield base, settings, world
    finally:
        srv.should_exit = True
        thread.join(10)


def _chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    command = [
        shutil.which("chromium") or CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _page(base: str, settings: Settings, world: World, lot: str) -> str:
    uri = lot_uri(settings, piece_gtin(world), lot)
    return base + "/" + uri.split("://", 1)[1].split("/", 1)[1]


def test_good_lot_page_shows_a_passing_verdict(server: tuple[str, Settings, World], tmp_path: Path) -> None:
    base, settings, world = server
    url = _page(base, settings, world, GOOD)
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert 'data-status="pass"' in dom or 'data-status="warn"' in dom
    assert "验证通过" in dom or "请注意" in dom
    assert "标签签名有效" in dom and "全部" in dom
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "verify-good-lot.png"
    shot.unlink(missing_ok=True)
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=412,2000", url)
    assert shot.stat().st_size > 10_000


def test_violating_lot_page_says_what_failed(server: tuple[str, Settings, World], tmp_path: Path) -> None:
    base, settings, world = server
    url = _page(base, settings, world, BAD)
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert 'data-status="fail"' in dom and "验证未通过" in dom
    assert "产地不在确山夏枯草地理标志产品保护范围内" in dom
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "verify-violating-lot.png"
    shot.unlink(missing_ok=True)
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=412,2000", url)
    assert shot.stat().st_size > 10_000
