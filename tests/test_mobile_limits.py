"""Limits of the mobile API: oversized photos and request bodies are 413 problems before anything is stored;
failed sign-ins are throttled per account and per client network (429 with Retry-After), in the database,
on SQLite and PostgreSQL; plus the pure rules behind the throttle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mobile_world import JPEG, PASSWORD, MobileWorld, sha256
from sqlalchemy import func, select
from sqlmodel import Session

from mobile_api.api import get_clock
from services.accounts import rules
from services.accounts import service as accounts
from services.accounts.models import SignInFailures
from services.app import create_app
from services.labels.activation import MAX_CHUNK_BYTES, MAX_PHOTO_BYTES, PhotoUpload
from services.settings import Settings

PROBLEM = "application/problem+json"
SIGN_IN = "/mobile/v1/auth/sign-in"
WINDOW = 15 * 60


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def limited_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on SQLite, or on a fresh PostgreSQL schema, with a small network budget to reach in a test."""
    url = f"sqlite:///{tmp_path / 'daodi.db'}"
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
    return Settings(
        database_url=url,
        key_dir=tmp_path / "keys",
        public_base_url="http://testserver",
        background=False,
        sign_in_network_failures=8,
    )


@pytest.fixture
def mw(limited_settings: Settings) -> Iterator[MobileWorld]:
    world = MobileWorld(limited_settings)
    try:
        yield world
    finally:
        world.ctx.stop()
        world.world.engine.dispose()


def attempt(
    client: TestClient, login: str = "grower.one", password: str = "wrong password", install: str = "i"
) -> Any:
    return client.post(SIGN_IN, json={"login": login, "password": password, "install_id": install})


def from_address(mw: MobileWorld, host: str) -> TestClient:
    """A client of the same app calling from `host`."""
    return TestClient(mw.app, client=(host, 50000))


def stored_failures(mw: MobileWorld) -> int:
    with Session(mw.ctx.engine) as s:
        return int(s.execute(select(func.count()).select_from(SignInFailures)).scalar_one())


# -- photos -----------------------------------------------------------------------------------------------


def assert_too_large(response: Any, field: str, rule: str, limit: int) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].endswith("/content-too-large") and body["status"] == 413
    assert (body["field"], body["rule"], body["limit"]) == (field, rule, limit)


def nothing_stored(mw: MobileWorld, headers: dict[str, str], digest: str) -> None:
    status = mw.client.get(f"/mobile/v1/photos/{digest}/status", headers=headers).json()
    assert status == {"sha256": digest, "received": 0, "total": None, "complete": False, "media_type": None}
    with Session(mw.ctx.engine) as s:
        assert s.execute(select(func.count()).select_from(PhotoUpload)).scalar_one() == 0


def test_a_photo_declared_above_the_maximum_is_413_before_any_byte_is_stored(mw: MobileWorld) -> None:
    headers = mw.headers()
    digest = sha256(JPEG)
    refused = mw.client.put(
        f"/mobile/v1/photos/{digest}",
        content=JPEG[:100],
        headers={**headers, "Content-Range": f"bytes 0-99/{MAX_PHOTO_BYTES + 1}"},
    )
    assert_too_large(refused, "Content-Range", "photo.too-large", MAX_PHOTO_BYTES)
    nothing_stored(mw, headers, digest)
    # Exactly the maximum is a photo like any other: its first chunk is taken.
    taken = mw.client.put(
        f"/mobile/v1/photos/{digest}",
        content=JPEG[:100],
        headers={**headers, "Content-Range": f"bytes 0-99/{MAX_PHOTO_BYTES}"},
    )
    assert taken.status_code == 202 and taken.json()["received"] == 100


def test_a_whole_photo_above_the_maximum_is_413_photo_too_large(mw: MobileWorld) -> None:
    headers = mw.headers()
    data = b"\xff" * (MAX_PHOTO_BYTES + 1)
    refused = mw.client.put(f"/mobile/v1/photos/{sha256(data)}", content=data, headers=headers)
    assert_too_large(refused, "Content-Length", "photo.too-large", MAX_PHOTO_BYTES)
    nothing_stored(mw, headers, sha256(data))


def test_a_request_body_above_a_chunk_is_413_whether_declared_or_streamed(mw: MobileWorld) -> None:
    headers = mw.headers()
    data = b"\xff" * (MAX_CHUNK_BYTES + 1)
    declared = mw.client.put(f"/mobile/v1/photos/{sha256(data)}", content=data, headers=headers)
    assert_too_large(declared, "Content-Length", "photo.chunk-size", MAX_CHUNK_BYTES)

    def pieces() -> Iterator[bytes]:  # sent chunked: no Content-Length to go by
        yield data[:MAX_CHUNK_BYTES]
        yield data[MAX_CHUNK_BYTES:]

    streamed = mw.client.put(
        f"/mobile/v1/photos/{sha256(data)}",
        content=pieces(),
        headers={**headers, "Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"},
    )
    assert_too_large(streamed, "body", "photo.chunk-size", MAX_CHUNK_BYTES)
    nothing_stored(mw, headers, sha256(data))


def test_mismatched_photos_are_still_422_and_discarded(mw: MobileWorld) -> None:
    headers = mw.headers()
    digest = sha256(JPEG)
    mismatched = mw.client.put(f"/mobile/v1/photos/{digest}", content=JPEG + b"!", headers=headers)
    assert mismatched.status_code == 422 and mismatched.json()["rule"] == "photo.hash-mismatch"
    text = b"just some text, not a photo"
    not_image = mw.client.put(f"/mobile/v1/photos/{sha256(text)}", content=text, headers=headers)
    assert not_image.status_code == 422 and not_image.json()["rule"] == "photo.not-an-image"
    nothing_stored(mw, headers, digest)
    assert mw.client.put(f"/mobile/v1/photos/{digest}", content=JPEG, headers=headers).status_code == 200


def test_the_openapi_document_names_413_for_photos_and_429_with_retry_after_for_sign_in(
    mw: MobileWorld,
) -> None:
    paths = mw.client.get("/openapi.json").json()["paths"]
    put_photo = paths["/mobile/v1/photos/{sha256}"]["put"]["responses"]
    assert PROBLEM in put_photo["413"]["content"]
    sign_in = paths[SIGN_IN]["post"]["responses"]
    assert PROBLEM in sign_in["429"]["content"] and "Retry-After" in sign_in["429"]["headers"]
    assert "413" not in paths["/mobile/v1/me"]["get"]["responses"]
    assert "429" not in paths["/mobile/v1/me"]["get"]["responses"]


# -- sign-in throttling -----------------------------------------------------------------------------------


def test_five_failures_lock_the_account_until_the_window_ends(mw: MobileWorld) -> None:
    for _ in range(5):
        assert attempt(mw.client).status_code == 401
    mw.clock.advance(minutes=10)
    locked = attempt(mw.client, password=PASSWORD)  # even the right password waits
    assert locked.status_code == 429
    assert locked.headers["content-type"] == PROBLEM
    assert locked.headers["retry-after"] == str(WINDOW - 600)
    body = locked.json()
    assert (body["rule"], body["field"], body["retry_after"]) == ("account.too-many-failures", "login", 300)
    # The phone number is the same account: no fresh budget there.
    assert attempt(mw.client, login="13800138000", password=PASSWORD).status_code == 429
    # Another account is untouched.
    assert attempt(mw.client, login="outsider", password=PASSWORD).status_code == 200
    mw.clock.advance(minutes=5)
    assert attempt(mw.client, password=PASSWORD).status_code == 200


def test_a_successful_sign_in_resets_the_accounts_count(mw: MobileWorld) -> None:
    field = from_address(mw, "203.0.113.5")
    for _ in range(4):
        assert attempt(field).status_code == 401
    assert attempt(field, password=PASSWORD).status_code == 200
    home = from_address(mw, "198.51.100.5")  # a fresh network budget: only the account's count matters
    for _ in range(5):
        assert attempt(home).status_code == 401
    assert attempt(home).status_code == 429


def test_concurrent_guesses_cannot_outrun_the_accounts_limit(mw: MobileWorld) -> None:
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def guess(n: int) -> None:
        client = from_address(mw, f"198.51.100.{n + 1}")
        barrier.wait(timeout=10)
        statuses.append(attempt(client, password=f"guess number {n}").status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [401] * 5 + [429] * 3


def test_unknown_logins_are_throttled_and_answered_like_known_ones(mw: MobileWorld) -> None:
    known, unknown = [], []
    for _ in range(6):  # from two networks, so that only the accounts' limits are reached
        known.append(attempt(from_address(mw, "203.0.113.5"), login="grower.one"))
        unknown.append(attempt(from_address(mw, "198.51.100.5"), login="nobody.here"))
    for answers in (known, unknown):
        assert [r.status_code for r in answers] == [401] * 5 + [429]
        assert [r.json()["rule"] for r in answers[:5]] == ["account.sign-in"] * 5
    drop = {"instance"}
    assert {k: v for k, v in known[-1].json().items() if k not in drop} == {
        k: v for k, v in unknown[-1].json().items() if k not in drop
    }
    assert known[-1].headers["retry-after"] == unknown[-1].headers["retry-after"]


def test_unknown_logins_cost_one_password_check_like_known_ones(
    mw: MobileWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    hasher = accounts._hasher

    class CountingHasher:
        """The real hasher, noting each hash a password is verified against."""

        def verify(self, stored: str, password: str) -> bool:
            checked.append(stored)
            return hasher.verify(stored, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(hasher, name)

    monkeypatch.setattr(accounts, "_hasher", CountingHasher())
    stranger, grower = from_address(mw, "203.0.113.5"), from_address(mw, "198.51.100.5")
    assert attempt(stranger, login="nobody.here").status_code == 401
    assert attempt(grower, login="grower.one").status_code == 401
    assert len(checked) == 2 and checked[0] == accounts._DUMMY_HASH and checked[1] != accounts._DUMMY_HASH
    for _ in range(4):
        attempt(stranger, login="nobody.here")
        attempt(grower, login="grower.one")
    assert len(checked) == 10
    # Throttled attempts check no password at all, known or not.
    assert attempt(stranger, login="nobody.here").status_code == 429
    assert attempt(grower, login="grower.one").status_code == 429
    assert len(checked) == 10


def test_a_network_has_a_larger_budget_across_logins_and_addresses(mw: MobileWorld) -> None:
    for n in range(8):  # the budget of these settings; each login stays under its own limit
        host = f"203.0.113.{n + 1}"
        assert attempt(from_address(mw, host), login=f"guess.{n}").status_code == 401
    neighbour = attempt(from_address(mw, "203.0.113.200"), login="grower.one", password=PASSWORD)
    assert neighbour.status_code == 429
    assert neighbour.json()["rule"] == "account.network-too-many-failures"
    assert neighbour.headers["retry-after"] == str(WINDOW)
    assert "field" not in neighbour.json()
    elsewhere = attempt(from_address(mw, "198.51.100.7"), login="grower.one", password=PASSWORD)
    assert elsewhere.status_code == 200
    mw.clock.advance(seconds=WINDOW)
    assert attempt(from_address(mw, "203.0.113.9"), password=PASSWORD).status_code == 200


def test_successful_sign_ins_do_not_use_the_networks_budget(mw: MobileWorld) -> None:
    office = from_address(mw, "192.0.2.10")
    for _ in range(12):
        assert attempt(office, password=PASSWORD).status_code == 200
    assert attempt(office).status_code == 401


def test_the_count_is_in_the_database_and_holds_across_workers_and_restarts(mw: MobileWorld) -> None:
    for _ in range(5):
        assert attempt(mw.client).status_code == 401
    assert stored_failures(mw) == 2  # the account's count and the network's
    other = create_app(mw.settings)  # another worker, or this one after a restart
    try:
        other.dependency_overrides[get_clock] = mw.clock
        refused = attempt(TestClient(other), password=PASSWORD)
        assert refused.status_code == 429 and refused.json()["rule"] == "account.too-many-failures"
    finally:
        other.state.ctx.stop()


def test_expired_counts_are_pruned_by_a_later_success(mw: MobileWorld) -> None:
    for n in range(3):
        attempt(mw.client, login=f"guess.{n}")
    assert stored_failures(mw) == 4  # three logins and one network
    mw.clock.advance(seconds=WINDOW)
    assert attempt(mw.client, password=PASSWORD).status_code == 200
    assert stored_failures(mw) == 0


def test_limits_come_from_settings(limited_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    strict = MobileWorld(
        limited_settings.model_copy(update={"sign_in_account_failures": 2, "sign_in_window": 60})
    )
    try:
        assert [attempt(strict.client).status_code for _ in range(3)] == [401, 401, 429]
        assert attempt(strict.client).headers["retry-after"] == "60"
        strict.clock.advance(seconds=60)
        assert attempt(strict.client, password=PASSWORD).status_code == 200
    finally:
        strict.ctx.stop()
        strict.world.engine.dispose()
    monkeypatch.setenv("DAODI_SIGN_IN_ACCOUNT_FAILURES", "3")
    monkeypatch.setenv("DAODI_SIGN_IN_NETWORK_PREFIX_V4", "16")
    env = Settings()
    assert (env.sign_in_account_failures, env.sign_in_network_prefix_v4) == (3, 16)
    assert (env.sign_in_network_failures, env.sign_in_window, env.sign_in_network_prefix_v6) == (100, 900, 64)


def test_refresh_token_reuse_still_revokes_the_family(mw: MobileWorld) -> None:
    attempt(mw.client)  # a failed attempt first: the counts live beside the tokens, not in their way
    first = mw.sign_in()
    second = mw.client.post("/mobile/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    reuse = mw.client.post("/mobile/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and reuse.json()["rule"] == "token.reuse"
    newer = mw.client.post("/mobile/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert newer.status_code == 401 and newer.json()["rule"] == "token.revoked"


# -- pure rules -------------------------------------------------------------------------------------------


def test_client_addresses_group_into_networks() -> None:
    def net(host: str | None) -> str:
        return rules.client_network(host, v4_prefix=24, v6_prefix=64)

    assert net("203.0.113.77") == net("203.0.113.1") == "203.0.113.0/24"
    assert net("::ffff:203.0.113.77") == "203.0.113.0/24"
    assert net("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert net("fe80::1%eth0") == "fe80::/64"
    assert net("::1") == "::/64"
    assert net("testclient") == "testclient" and net(None) == "unknown"
    assert rules.client_network("203.0.113.77", v4_prefix=16, v6_prefix=64) == "203.0.0.0/16"


def test_retry_after_is_whole_seconds_until_the_window_ends() -> None:
    start = datetime(2026, 6, 12, 2, 0, tzinfo=UTC)
    window = timedelta(minutes=15)
    assert rules.retry_after(start, window, start) == 900
    assert rules.retry_after(start, window, start + timedelta(seconds=899.2)) == 1
    assert rules.retry_after(start, window, start + timedelta(seconds=1000)) == 1
    assert rules.window_open(start, window, start + timedelta(seconds=899))
    assert not rules.window_open(start, window, start + window)
