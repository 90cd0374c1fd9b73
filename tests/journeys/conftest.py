"""Journey fixtures. `demo` is one platform for the whole session: journeys that only read share it. A
journey that changes what others would see (a recall, a hold) asks for `fresh_demo`, a platform of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from newcomer import DemoPlatform, start_demo


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPlatform]:
    """One demo platform for the journeys that only read."""
    platform = start_demo(tmp_path_factory.mktemp("newcomer"))
    try:
        yield platform
    finally:
        platform.stop()


@pytest.fixture
def fresh_demo(tmp_path: Path) -> Iterator[DemoPlatform]:
    """A demo platform of this journey alone, for journeys that change what others would see."""
    platform = start_demo(tmp_path / "newcomer")
    try:
        yield platform
    finally:
        platform.stop()
