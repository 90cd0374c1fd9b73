"""A newcomer's platform: `daodi demo` started as the README says, in a folder of its own, and the `daodi`
command run beside it. Journeys talk to it only through HTTP and the command line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

DAODI = Path(sys.executable).parent / "daodi"
STARTUP_DEADLINE = 180.0
_KEY_LINE = re.compile(r"^\s{2}(?P<role>[\w-]+) (?:API )?key\s+(?P<key>\S+)$")
_LABEL_LINE = re.compile(r"^\s{2}label (?P<lot>\S+)\s+(?P<uri>\S+)$")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _newcomer_env() -> dict[str, str]:
    """The environment of a newcomer's shell: no DAODI_ settings, so every default applies."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DAODI_")}


@dataclass
class DemoPlatform:
    """A running `daodi demo`: where it listens, what it printed, and its working folder."""

    base: str
    home: Path
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        """Everything the demo printed so far."""
        return "\n".join(self.lines)

    @property
    def keys(self) -> dict[str, str]:
        """Role -> API key, as printed (`admin`, `grower`, `processor`, `lab`, `buyer`, `regulator`)."""
        found = (_KEY_LINE.match(line) for line in self.lines)
        return {m["role"]: m["key"] for m in found if m}

    @property
    def label_uris(self) -> dict[str, str]:
        """Lot code -> label URI of the demo decoction-piece lots, as printed."""
        found = (_LABEL_LINE.match(line) for line in self.lines)
        return {m["lot"]: m["uri"] for m in found if m}

    def client(self, role: str | None = None, **headers: str) -> httpx.Client:
        """An HTTP client on the platform, holding `role`'s printed API key when a role is given."""
        if role is not None:
            headers["Authorization"] = f"Bearer {self.keys[role]}"
        return httpx.Client(base_url=self.base, headers=headers, timeout=30.0)

    def daodi(
        self, *args: str, cwd: Path | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `daodi ARGS` as a newcomer would, by default in the folder the demo runs in."""
        return subprocess.run(
            [str(DAODI), *args],
            cwd=cwd or self.home,
            env=_newcomer_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_demo(home: Path) -> DemoPlatform:
    """Run `daodi demo` in `home` and return once it has printed its instructions and answers /healthz."""
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = subprocess.Popen(
        [str(DAODI), "demo", "--port", str(port)],
        cwd=home,
        env=_newcomer_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    platform = DemoPlatform(f"http://127.0.0.1:{port}", home, process)
    deadline = time.monotonic() + STARTUP_DEADLINE
    assert process.stdout is not None
    printed_labels = False
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            platform.stop()
            pytest.fail(f"daodi demo exited ({process.returncode}) before it was ready:\n{platform.output}")
        platform.lines.append(line.rstrip("\n"))
        if line.startswith("Label URIs of the demo"):
            printed_labels = True
        elif printed_labels and not line.strip():
            break
    _wait_healthy(platform, deadline)

    # Keep draining the demo's output so it never blocks on a full pipe; later lines are kept too.
    def drain() -> None:
        assert process.stdout is not None
        for rest in process.stdout:
            platform.lines.append(rest.rstrip("\n"))

    threading.Thread(target=drain, name="demo-output", daemon=True).start()
    return platform


def _wait_healthy(platform: DemoPlatform, deadline: float) -> None:
    with httpx.Client(base_url=platform.base, timeout=5.0) as http:
        while time.monotonic() < deadline:
            try:
                if http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    platform.stop()
    pytest.fail(f"daodi demo did not answer /healthz within {STARTUP_DEADLINE:.0f} s:\n{platform.output}")
